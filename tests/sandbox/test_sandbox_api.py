"""The sandbox's /api speaks Fuse: auth, JSON and XML answers, and Fuse-shaped errors for everything."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
import requests

XML = "application/xml"
NO_DEPLOYMENT = "No deployment was found by that application id and deployment id."


def xml_error(response: requests.Response) -> str:
    assert response.headers["content-type"].startswith("application/xml")
    assert response.text.startswith('<?xml version="1.0"?>\n<result>\n  <error>')
    return ET.fromstring(response.content).findtext("error") or ""


# -- authentication -------------------------------------------------------------------------------


def test_missing_credentials_are_answered_401_with_fuse_error(fuse):
    fuse.auth = None
    response = fuse.bulk_queue()
    assert response.status_code == 401
    assert "error" in response.json()
    assert response.headers["www-authenticate"].startswith("Basic")


def test_wrong_developer_key_is_answered_401(fuse, sandbox):
    fuse.auth = (sandbox.email, "not-the-key")
    assert fuse.bulk_queue().status_code == 401
    assert fuse.queue(phone_number="6175551234").status_code == 401
    assert fuse.outbound("1").status_code == 401
    assert fuse.cancel().status_code == 401
    assert sandbox.calls() == []


def test_wrong_email_is_answered_401_in_xml_when_asked(fuse, sandbox):
    fuse.auth = ("someone@example.com", sandbox.developer_key)
    response = fuse.bulk_queue(accept=XML)
    assert response.status_code == 401
    assert xml_error(response)


# -- bulk_queue -----------------------------------------------------------------------------------


def test_bulk_queue_answers_calls_queued_in_json(fuse):
    response = fuse.bulk_queue("destination,name\n6175551234,Ann\n16175551235,Bob\n")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.content == b'{"calls_queued":2}'


def test_bulk_queue_answers_calls_queued_in_xml(fuse):
    response = fuse.bulk_queue("destination\ntel:+16175551234;ani=8009957586;postd=2\n", accept=XML)
    assert response.status_code == 200
    assert response.text == '<?xml version="1.0"?>\n<result>\n  <calls_queued>1</calls_queued>\n</result>\n'


def test_accept_header_prefers_the_higher_quality_media_type(fuse):
    response = fuse.bulk_queue(accept="application/xml;q=0.5, application/json")
    assert response.headers["content-type"].startswith("application/json")
    response = fuse.bulk_queue(accept="text/html, application/xml")
    assert response.headers["content-type"].startswith("application/xml")


def test_unknown_accept_gets_json(fuse):
    response = fuse.bulk_queue(accept="text/html")
    assert response.json() == {"calls_queued": 1}


def test_bulk_queue_queues_one_call_per_row_with_other_columns_as_variables(fuse, sandbox):
    fuse.bulk_queue("name,destination,plan\nAnn,6175551234,gold\n", max_attempts="1")
    (call,) = sandbox.calls()
    assert call.destination == "6175551234"
    assert call.variables == {"name": "Ann", "plan": "gold"}
    assert (call.application_id, call.deployment_id, call.upload_id) == (101, 202, 1)


def test_bulk_queue_of_unknown_deployment_is_404_with_documented_message(fuse):
    response = fuse.bulk_queue(app=101, dep=999)
    assert response.status_code == 404
    assert response.json() == {"error": NO_DEPLOYMENT}


def test_bulk_queue_of_deleted_deployment_is_409(fuse):
    response = fuse.bulk_queue(app=101, dep=303)
    assert response.status_code == 409
    assert "deleted" in response.json()["error"]


def test_get_on_bulk_queue_is_405_fuse_shaped(fuse, sandbox):
    response = fuse.http.get(f"{sandbox.url}/apps/101/202/bulk_queue", auth=fuse.auth)
    assert response.status_code == 405
    assert response.json() == {"error": "Invalid HTTP method supplied."}
    assert response.headers["allow"] == "POST"


def test_405_is_xml_when_asked(fuse, sandbox):
    response = fuse.http.put(f"{sandbox.url}/apps/101/202/bulk_queue", headers={"Accept": XML})
    assert response.status_code == 405
    assert xml_error(response) == "Invalid HTTP method supplied."


def test_unknown_path_is_404_fuse_shaped(fuse, sandbox):
    response = fuse.http.get(f"{sandbox.url}/apps/101/202/nothing", auth=fuse.auth)
    assert response.status_code == 404
    assert set(response.json()) == {"error"}


def test_trailing_slash_is_not_redirected(fuse, sandbox):
    response = fuse.http.post(f"{sandbox.url}/apps/101/202/bulk_queue/", allow_redirects=False)
    assert response.status_code == 404
    assert "detail" not in response.json()


def test_non_multipart_body_never_leaks_422(fuse, sandbox):
    response = fuse.http.post(f"{sandbox.url}/apps/101/202/bulk_queue", json={"csv": "x"}, auth=fuse.auth)
    assert response.status_code == 400
    assert set(response.json()) == {"error"}


# -- queue ----------------------------------------------------------------------------------------


def test_queue_answers_call_id_and_link_header(fuse, sandbox):
    response = fuse.queue(phone_number="6175551234", call_parameters='{"name": "Ann"}')
    assert response.status_code == 200
    call_id = response.json()["call_id"]
    assert response.headers["link"] == f"<{sandbox.url}/outbound/{call_id}>"
    (call,) = sandbox.calls()
    assert call.call_id == call_id
    assert call.variables == {"name": "Ann"}
    assert call.upload_id is None


def test_queue_answers_call_id_in_xml(fuse):
    response = fuse.queue(phone_number="6175551234", accept=XML)
    assert re.fullmatch(
        r'<\?xml version="1.0"\?>\n<result>\n  <call_id>\d+</call_id>\n</result>\n', response.text
    )


def test_queue_of_unknown_deployment_is_404(fuse):
    response = fuse.queue(phone_number="6175551234", app=5, dep=6)
    assert response.status_code == 404
    assert response.json() == {"error": NO_DEPLOYMENT}


# -- outbound -------------------------------------------------------------------------------------


def test_outbound_answers_call_details_with_string_numbers_and_quoted_phone(fuse, sandbox):
    start = int(sandbox.now()) + 86400
    fuse.queue(phone_number="6173720293", start_timestamp=str(start), max_attempts="3", reattempt_wait="60")
    response = fuse.outbound("1")
    assert response.status_code == 200
    details = response.json()["call_details"]
    assert details["status"] == "queued"
    assert details["attempts"] == "0"
    assert details["max_attempts"] == "3"
    assert details["reattempt_wait"] == "60"
    assert details["start_timestamp"] == str(start)
    assert details["phone_number"] == "'6173720293'"
    assert details["events"][0]["event"] == "queued"
    assert isinstance(details["events"][0]["timestamp"], str)
    assert set(details) >= {"queued_timestamp", "end_timestamp", "duration"}


def test_outbound_answers_call_details_in_xml(fuse):
    fuse.queue(phone_number="6175551234")
    root = ET.fromstring(fuse.outbound("1", accept=XML).content)
    assert root.tag == "result"
    assert root.findtext("call_details/phone_number") == "'6175551234'"
    assert root.find("call_details/events/event/event") is not None


def test_outbound_of_unknown_call_is_404(fuse):
    response = fuse.outbound("424242")
    assert response.status_code == 404
    assert set(response.json()) == {"error"}
    assert fuse.outbound("not-a-number").status_code == 404


# -- cancel ---------------------------------------------------------------------------------------


def test_cancel_answers_202_with_empty_body(fuse):
    response = fuse.cancel()
    assert response.status_code == 202
    assert response.content == b""


def test_cancel_of_unknown_deployment_is_404_with_documented_message(fuse):
    response = fuse.cancel(dep=999)
    assert response.status_code == 404
    assert response.json() == {"error": NO_DEPLOYMENT}


def test_cancel_of_unknown_deployment_in_xml(fuse):
    assert xml_error(fuse.cancel(dep=999, accept=XML)) == NO_DEPLOYMENT


def test_cancel_of_deleted_deployment_is_409(fuse):
    assert fuse.cancel(dep=303).status_code == 409


@pytest.mark.parametrize("path", ["/apps/abc/202/bulk_queue", "/apps/101/2x/queue", "/apps/-1/202/cancel"])
def test_non_numeric_ids_are_400(fuse, sandbox, path):
    method = "DELETE" if path.endswith("cancel") else "POST"
    response = fuse.http.request(method, f"{sandbox.url}{path}", auth=fuse.auth, files={"x": (None, "")})
    assert response.status_code == 400
    assert response.json() == {"error": "The application_id and deployment_id must be numeric."}


# -- the request log ------------------------------------------------------------------------------


def test_every_api_request_is_logged_with_its_status(fuse, sandbox):
    fuse.bulk_queue()
    fuse.outbound("999")
    fuse.http.get(f"{sandbox.url}/apps/101/202/bulk_queue")
    requests_made = [(r.method, r.path, r.status_code) for r in sandbox.requests()]
    assert requests_made == [
        ("POST", "/api/apps/101/202/bulk_queue", 200),
        ("GET", "/api/outbound/999", 404),
        ("GET", "/api/apps/101/202/bulk_queue", 405),
    ]


def test_inspection_requests_are_not_logged(fuse, sandbox):
    fuse.http.get(f"{sandbox.root_url}/_sandbox/uploads")
    assert sandbox.requests() == []
