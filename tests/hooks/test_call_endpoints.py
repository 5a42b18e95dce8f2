"""FuseHook's single-call endpoints against requests-mock: queue, outbound status, cancel."""

from __future__ import annotations

import json

import pytest
import requests

from airflow_provider_fuse.calls import CallDetails, CallEvent, CallStatus
from airflow_provider_fuse.exceptions import (
    FuseAuthenticationError,
    FuseBadRequestError,
    FuseConnectionLostError,
    FuseDeletedError,
    FuseInvalidResponseError,
    FuseMethodNotAllowedError,
    FuseNotFoundError,
    FusePermissionError,
    FuseServerError,
    FuseTooManyRequestsError,
    FuseValidationError,
    Outcome,
)
from airflow_provider_fuse.hooks.fuse import FuseHook
from tests.helpers import BASE_URL, decode_multipart
from tests.hooks.helpers import QUEUE_URL, STATUS_URL

CANCEL_URL = f"{BASE_URL}/apps/12/34/cancel"

#: The documented sample: numbers as strings, the phone number in its own quotes.
DOCUMENTED_DETAILS = {
    "call_details": {
        "status": "completed",
        "attempts": "1",
        "max_attempts": "3",
        "queued_timestamp": "1764115200",
        "start_timestamp": "1764115200",
        "end_timestamp": "",
        "reattempt_wait": "600",
        "events": [
            {"event": "queued", "timestamp": "1764115200"},
            {"event": "dialing", "timestamp": "1764115201"},
            {"event": "connected", "timestamp": "1764115206"},
            {"event": "disconnected", "timestamp": "1764115236"},
        ],
        "duration": "30",
        "phone_number": "'6173720293'",
    }
}

XML_DETAILS = b"""<?xml version="1.0"?>
<result>
  <call_details>
    <status>failed</status>
    <attempts>2</attempts>
    <max_attempts>2</max_attempts>
    <queued_timestamp>1764115200</queued_timestamp>
    <start_timestamp>1764115200</start_timestamp>
    <end_timestamp/>
    <reattempt_wait>60</reattempt_wait>
    <events>
      <event><event>queued</event><timestamp>1764115200</timestamp></event>
      <event><event>no_answer</event><timestamp>1764115230</timestamp></event>
    </events>
    <duration/>
    <phone_number>'6175551239'</phone_number>
  </call_details>
</result>
"""


@pytest.fixture
def hook(fuse_connection) -> FuseHook:
    return FuseHook(retry_backoff=0.0)


# --- queue_call -------------------------------------------------------------------------------------


def test_queue_call_sends_the_documented_form_and_returns_the_call_id(hook, requests_mock):
    seen = {}
    requests_mock.post(
        QUEUE_URL, json=lambda request, context: seen.update(decode_multipart(request)) or {"call_id": "77"}
    )
    call_id = hook.queue_call(
        12,
        "34",
        "tel:+16175551234;ani=8009957586",
        call_parameters={"first_name": "Zoë", "balance": 12.5, "vip": True, "note": None},
        start_timestamp=1795651200,
        max_attempts=2,
        reattempt_wait=60,
        result_url="https://example.com/results",
        is_pci=True,
    )
    assert call_id == "77"
    assert {name: value for name, (value, _) in seen.items()} == {
        "phone_number": b"tel:+16175551234;ani=8009957586",
        "call_parameters": json.dumps(
            {"first_name": "Zoë", "balance": 12.5, "vip": True, "note": None},
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode(),
        "start_timestamp": b"1795651200",
        "max_attempts": b"2",
        "reattempt_wait": b"60",
        "result_url": b"https://example.com/results",
        "is_pci": b"1",
    }
    assert requests_mock.last_request.headers["Content-Type"].startswith("multipart/form-data")


def test_queue_call_sends_only_the_phone_number_when_nothing_else_is_given(hook, requests_mock):
    seen = {}
    requests_mock.post(
        QUEUE_URL, json=lambda request, context: seen.update(decode_multipart(request)) or {"call_id": 5}
    )
    assert hook.queue_call(12, 34, 6175551234) == "5"
    assert set(seen) == {"phone_number"}


def test_queue_call_reads_the_call_id_from_an_xml_answer(hook, requests_mock):
    requests_mock.post(QUEUE_URL, content=b'<?xml version="1.0"?><result><call_id>88</call_id></result>')
    assert hook.queue_call(12, 34, "6175551234") == "88"


@pytest.mark.parametrize(
    "link",
    [
        f"<{BASE_URL}/outbound/91>",
        f'<{BASE_URL}/outbound/91>; rel="status"',
        f"{BASE_URL}/outbound/91/",
        "</api/outbound/91>",
    ],
)
def test_queue_call_falls_back_to_the_link_headers_last_segment(hook, requests_mock, link):
    requests_mock.post(QUEUE_URL, json={"calls_queued": 1}, headers={"Link": link})
    assert hook.queue_call(12, 34, "6175551234") == "91"


def test_queue_call_prefers_the_body_over_the_link(hook, requests_mock):
    requests_mock.post(QUEUE_URL, json={"call_id": "7"}, headers={"Link": f"<{BASE_URL}/outbound/8>"})
    assert hook.queue_call(12, 34, "6175551234") == "7"


def test_a_200_without_call_id_or_link_is_an_unknown_outcome(hook, requests_mock):
    requests_mock.post(QUEUE_URL, json={"calls_queued": 1})
    with pytest.raises(FuseInvalidResponseError, match="names no call_id") as caught:
        hook.queue_call(12, 34, "6175551234")
    assert caught.value.outcome is Outcome.UNKNOWN


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"phone_number": "617-555-1234"}, "phone_number"),
        ({"phone_number": "+16175551234"}, "phone_number"),
        ({"phone_number": ""}, "phone_number"),
        ({"phone_number": None}, "phone_number"),
        ({"call_parameters": ["a"]}, "call_parameters"),
        ({"call_parameters": "not json"}, "call_parameters"),
        ({"call_parameters": {"nested": {"a": 1}}}, "call_parameters.nested"),
        ({"call_parameters": {"x": float("nan")}}, "call_parameters.x"),
        ({"call_parameters": {1: "a"}}, "call_parameters"),
        ({"application_id": 0}, "application_id"),
        ({"max_attempts": 3}, "reattempt_wait"),
        ({"result_url": "ftp://x"}, "result_url"),
    ],
)
def test_queue_call_validates_before_any_request(hook, requests_mock, kwargs, parameter):
    arguments = {"application_id": 12, "deployment_id": 34, "phone_number": "6175551234", **kwargs}
    with pytest.raises(FuseValidationError) as caught:
        hook.queue_call(
            arguments.pop("application_id"),
            arguments.pop("deployment_id"),
            arguments.pop("phone_number"),
            **arguments,
        )
    assert caught.value.parameter == parameter
    assert "617-555-1234" not in str(caught.value)
    assert not requests_mock.called


def test_call_parameters_may_be_a_json_object_string(hook, requests_mock):
    seen = {}
    requests_mock.post(
        QUEUE_URL, json=lambda request, context: seen.update(decode_multipart(request)) or {"call_id": "1"}
    )
    hook.queue_call(12, 34, "6175551234", call_parameters='{"name": "Ada"}')
    assert seen["call_parameters"][0] == b'{"name":"Ada"}'


STATUS_ERRORS = [
    (400, FuseBadRequestError),
    (401, FuseAuthenticationError),
    (403, FusePermissionError),
    (404, FuseNotFoundError),
    (405, FuseMethodNotAllowedError),
    (409, FuseDeletedError),
    (429, FuseTooManyRequestsError),
    (500, FuseServerError),
    (503, FuseServerError),
]


@pytest.mark.parametrize(("status", "error_type"), STATUS_ERRORS)
def test_queue_call_maps_each_status_like_bulk_queue_and_is_not_resent(
    hook, requests_mock, status, error_type
):
    requests_mock.post(QUEUE_URL, status_code=status, json={"error": "Sandbox says no."})
    with pytest.raises(error_type, match=f"Fuse API answered {status}: Sandbox says no."):
        hook.queue_call(12, 34, "6175551234")
    assert requests_mock.call_count == 1


def test_queue_call_is_not_resent_after_a_lost_connection(hook, requests_mock):
    requests_mock.post(QUEUE_URL, exc=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(FuseConnectionLostError):
        hook.queue_call(12, 34, "6175551234")
    assert requests_mock.call_count == 1


def test_fuses_error_text_is_redacted(hook, requests_mock):
    requests_mock.post(QUEUE_URL, status_code=400, json={"error": "Number 6175551234 is blocked."})
    with pytest.raises(FuseBadRequestError) as caught:
        hook.queue_call(12, 34, "6175551234")
    assert "6175551234" not in str(caught.value)


# --- get_call_status --------------------------------------------------------------------------------


def test_get_call_status_coerces_the_documented_strings_and_unquotes_the_number(hook, requests_mock):
    requests_mock.get(STATUS_URL, json=DOCUMENTED_DETAILS)
    details = hook.get_call_status("77")
    assert details == CallDetails(
        status=CallStatus.COMPLETED,
        attempts=1,
        max_attempts=3,
        reattempt_wait=600,
        queued_timestamp=1764115200,
        start_timestamp=1764115200,
        end_timestamp=None,
        duration=30,
        events=(
            CallEvent("queued", 1764115200),
            CallEvent("dialing", 1764115201),
            CallEvent("connected", 1764115206),
            CallEvent("disconnected", 1764115236),
        ),
        phone_number="6173720293",
        call_id="77",
    )
    assert details.is_terminal


def test_get_call_status_reads_native_json_types(hook, requests_mock):
    native = {
        "call_details": {"status": "dialing", "attempts": 1, "duration": None, "phone_number": 6175551234}
    }
    requests_mock.get(STATUS_URL, json=native)
    details = hook.get_call_status(77)
    assert (details.status, details.attempts, details.duration, details.phone_number) == (
        CallStatus.DIALING,
        1,
        None,
        "6175551234",
    )
    assert not details.is_terminal


def test_get_call_status_reads_xml_call_details(hook, requests_mock):
    requests_mock.get(STATUS_URL, content=XML_DETAILS, headers={"Content-Type": "application/xml"})
    details = hook.get_call_status("77")
    assert details.status is CallStatus.FAILED
    assert (details.attempts, details.max_attempts, details.reattempt_wait) == (2, 2, 60)
    assert (details.end_timestamp, details.duration) == (None, None)
    assert details.events == (CallEvent("queued", 1764115200), CallEvent("no_answer", 1764115230))
    assert details.phone_number == "6175551239"


def test_xml_with_a_single_event_is_a_tuple_of_one(hook, requests_mock):
    xml = b"<result><call_details><status>queued</status><events><event><event>queued</event>"
    xml += b"<timestamp>5</timestamp></event></events></call_details></result>"
    requests_mock.get(STATUS_URL, content=xml)
    assert hook.get_call_status("77").events == (CallEvent("queued", 5),)


def test_the_xcom_dict_is_plain_json_without_the_phone_number(hook, requests_mock):
    requests_mock.get(STATUS_URL, json=DOCUMENTED_DETAILS)
    details = hook.get_call_status("77")
    value = details.to_xcom()
    assert "phone_number" not in value
    assert "6173720293" not in json.dumps(value)
    assert value["status"] == "completed"
    assert value["events"][0] == {"event": "queued", "timestamp": 1764115200}
    assert details.as_dict(include_phone_number=True)["phone_number"] == "6173720293"


@pytest.mark.parametrize(
    ("status", "terminal"),
    [
        ("queued", False),
        ("dialing", False),
        ("connected", False),
        ("completed", True),
        ("failed", True),
        ("canceled", True),
        ("cancelled", True),
        ("rejected", True),
        ("Completed", True),
        ("ringing", False),
    ],
)
def test_terminal_statuses(status, terminal):
    assert CallStatus(status).is_terminal is terminal


def test_an_unknown_status_is_kept_not_refused(hook, requests_mock):
    requests_mock.get(STATUS_URL, json={"call_details": {"status": "ringing"}})
    details = hook.get_call_status("77")
    assert details.status == "ringing"
    assert details.to_xcom()["status"] == "ringing"


@pytest.mark.parametrize(
    "body",
    [
        {"calls_queued": 1},
        {"call_details": {"attempts": "1"}},
        {"call_details": {"status": "x", "attempts": "one"}},
    ],
)
def test_a_200_that_is_not_call_details_is_an_invalid_answer(hook, requests_mock, body):
    requests_mock.get(STATUS_URL, json=body)
    with pytest.raises(FuseInvalidResponseError):
        hook.get_call_status("77")


@pytest.mark.parametrize(("status", "error_type"), [item for item in STATUS_ERRORS if item[0] < 500])
def test_get_call_status_rejections_are_raised_at_once(hook, requests_mock, status, error_type):
    requests_mock.get(STATUS_URL, status_code=status, json={"error": "No outbound call was found."})
    with pytest.raises(error_type):
        hook.get_call_status("77")
    assert requests_mock.call_count == 1


def test_get_call_status_is_asked_again_after_a_5xx(hook, requests_mock):
    requests_mock.get(
        STATUS_URL,
        [
            {"status_code": 502, "text": "<html>Bad Gateway</html>"},
            {"exc": requests.exceptions.ReadTimeout("slow")},
            {"json": DOCUMENTED_DETAILS},
        ],
    )
    assert hook.get_call_status("77").status is CallStatus.COMPLETED
    assert requests_mock.call_count == 3


def test_get_call_status_gives_up_after_its_retries(hook, requests_mock):
    requests_mock.get(STATUS_URL, status_code=500, json={"error": "Database error."})
    with pytest.raises(FuseServerError):
        hook.get_call_status("77")
    assert requests_mock.call_count == hook.connect_retries + 1


def test_queue_call_post_is_not_retried_on_a_5xx(hook, requests_mock):
    requests_mock.post(QUEUE_URL, status_code=502, text="<html>Bad Gateway</html>")
    with pytest.raises(FuseServerError):
        hook.queue_call(12, 34, "6175551234")
    assert requests_mock.call_count == 1


def test_the_call_id_is_quoted_into_the_path(hook, requests_mock):
    requests_mock.get(f"{BASE_URL}/outbound/a%2Fb", json=DOCUMENTED_DETAILS)
    assert hook.get_call_status("a/b").call_id == "a/b"


@pytest.mark.parametrize("call_id", ["", "  ", None, "None"])
def test_an_empty_call_id_is_refused_before_any_request(hook, requests_mock, call_id):
    with pytest.raises(FuseValidationError, match="call_id"):
        hook.get_call_status(call_id)
    assert not requests_mock.called


# --- cancel_calls -----------------------------------------------------------------------------------


def test_cancel_calls_sends_a_delete_and_a_202_is_done(hook, requests_mock):
    requests_mock.delete(CANCEL_URL, status_code=202, content=b"")
    assert hook.cancel_calls("12", 34) is None
    assert requests_mock.last_request.method == "DELETE"
    assert not requests_mock.last_request.body


@pytest.mark.parametrize(("status", "error_type"), STATUS_ERRORS)
def test_cancel_calls_maps_each_status_and_is_not_resent(hook, requests_mock, status, error_type):
    requests_mock.delete(CANCEL_URL, status_code=status, json={"error": "No deployment was found."})
    with pytest.raises(error_type):
        hook.cancel_calls(12, 34)
    assert requests_mock.call_count == 1


def test_cancel_calls_validates_the_ids_first(hook, requests_mock):
    with pytest.raises(FuseValidationError, match="deployment_id"):
        hook.cancel_calls(12, "x")
    assert not requests_mock.called
