"""Injected faults: chosen statuses and bodies, slow answers, dropped connections, "queued then lost"."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import pytest
import requests

from airflow_provider_fuse.sandbox import Fault

BROKEN = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)


def test_status_fault_with_html_proxy_page(fuse, sandbox):
    sandbox.inject_fault(status=502, body="html", endpoint="bulk_queue")
    response = fuse.bulk_queue("destination\n6175551234\n")
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>502 Bad Gateway</title>" in response.text
    assert sandbox.calls() == []


def test_status_fault_still_records_the_upload_it_read(fuse, sandbox):
    data = b"destination\n6175551234\n"
    sandbox.inject_fault(status=502, body="html")
    fuse.bulk_queue(data, max_attempts="1")
    (upload,) = sandbox.uploads()
    assert upload.csv == data
    assert upload.fields == {"max_attempts": "1"}
    assert (upload.status_code, upload.calls_queued, upload.fault) == (502, None, "status")


def test_status_fault_with_fuse_json_error(fuse, sandbox):
    sandbox.inject_fault(status=500)
    response = fuse.bulk_queue()
    assert response.status_code == 500
    assert response.json() == {"error": "A database error occurred."}


def test_status_fault_with_fuse_xml_error_and_custom_message(fuse, sandbox):
    sandbox.inject_fault(status=503, body="xml", message="Maintenance.")
    response = fuse.bulk_queue()
    assert response.status_code == 503
    assert ET.fromstring(response.content).findtext("error") == "Maintenance."


def test_status_fault_with_empty_body(fuse, sandbox):
    sandbox.inject_fault(status=504, body="empty")
    response = fuse.bulk_queue()
    assert response.status_code == 504
    assert response.content == b""


def test_status_fault_with_raw_bytes(fuse, sandbox):
    sandbox.inject_fault(status=200, body="raw", raw=b"\x00not json", content_type="text/plain")
    response = fuse.bulk_queue()
    assert response.status_code == 200
    assert response.content == b"\x00not json"
    assert response.headers["content-type"] == "text/plain"
    assert sandbox.calls() == []


def test_fault_answers_count_requests_then_normal_service_resumes(fuse, sandbox):
    sandbox.inject_fault(status=503, count=2)
    statuses = [fuse.bulk_queue().status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert len(sandbox.calls()) == 1


def test_skip_lets_matching_requests_through_before_the_fault(fuse, sandbox):
    sandbox.inject_fault(status=429, skip=2, endpoint="bulk_queue")
    statuses = [fuse.bulk_queue().status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 200]
    assert len(sandbox.calls()) == 3


def test_fault_only_hits_its_endpoint(fuse, sandbox):
    sandbox.inject_fault(status=500, endpoint="queue")
    assert fuse.bulk_queue().status_code == 200
    assert fuse.queue(phone_number="6175551234").status_code == 500
    assert len(sandbox.calls()) == 1


def test_fault_only_hits_its_method(fuse, sandbox):
    sandbox.inject_fault(status=500, method="get")
    assert fuse.bulk_queue().status_code == 200
    assert fuse.outbound("1").status_code == 500


def test_fault_without_endpoint_hits_unknown_paths_too(fuse, sandbox):
    sandbox.inject_fault(status=502, body="html")
    assert fuse.http.get(f"{sandbox.url}/nowhere").status_code == 502


def test_delay_makes_the_client_time_out_but_the_request_arrives(fuse, sandbox):
    sandbox.inject_fault(delay=0.5)
    with pytest.raises(requests.exceptions.ReadTimeout):
        fuse.http.post(
            f"{sandbox.url}/apps/101/202/bulk_queue",
            files={"csv": ("c.csv", b"destination\n6175551234\n")},
            auth=fuse.auth,
            timeout=0.1,
        )
    assert [r.method for r in sandbox.requests()] == ["POST"]
    # A delay alone answers normally once it is over: the calls are queued.
    assert len(sandbox.calls()) == 1


def test_delay_with_status_answers_that_status_late(fuse, sandbox):
    sandbox.inject_fault(status=429, delay=0.2)
    started = time.monotonic()
    response = fuse.bulk_queue()
    assert response.status_code == 429
    assert time.monotonic() - started >= 0.2
    assert sandbox.calls() == []


def test_drop_breaks_the_connection_mid_response(fuse, sandbox):
    sandbox.inject_fault(drop=True, endpoint="bulk_queue")
    with pytest.raises(BROKEN):
        fuse.bulk_queue("destination\n6175551234\n")
    (upload,) = sandbox.uploads()
    assert (upload.status_code, upload.fault, upload.calls_queued) == (None, "drop", None)
    assert upload.rows == 1
    assert sandbox.calls() == []
    (request,) = sandbox.requests()
    assert (request.status_code, request.fault) == (None, "drop")


def test_drop_on_other_endpoints(fuse, sandbox):
    sandbox.inject_fault(drop=True, count=3)
    with pytest.raises(BROKEN):
        fuse.queue(phone_number="6175551234")
    with pytest.raises(BROKEN):
        fuse.outbound("1")
    with pytest.raises(BROKEN):
        fuse.cancel()
    assert sandbox.calls() == []
    assert fuse.bulk_queue().status_code == 200


def test_after_queue_status_fault_queues_the_calls_then_fails(fuse, sandbox):
    sandbox.inject_fault(status=500, after_queue=True)
    response = fuse.bulk_queue("destination\n6175551234\n6175551235\n")
    assert response.status_code == 500
    assert len(sandbox.calls()) == 2
    (upload,) = sandbox.uploads()
    assert (upload.calls_queued, upload.status_code, upload.fault) == (2, 500, "status")


def test_after_queue_drop_queues_the_calls_and_loses_the_answer(fuse, sandbox):
    sandbox.inject_fault(drop=True, after_queue=True)
    with pytest.raises(BROKEN):
        fuse.bulk_queue("destination\n6175551234\n")
    assert len(sandbox.calls()) == 1
    assert sandbox.uploads()[0].calls_queued == 1


def test_after_queue_on_queue_endpoint(fuse, sandbox):
    sandbox.inject_fault(status=502, body="html", after_queue=True, endpoint="queue")
    assert fuse.queue(phone_number="6175551234").status_code == 502
    assert len(sandbox.calls()) == 1


def test_faults_are_injected_over_http(fuse, sandbox):
    inject = requests.post(
        f"{sandbox.root_url}/_sandbox/faults",
        json={"status": 502, "body": "html", "count": 2, "endpoint": "bulk_queue"},
        timeout=5,
    )
    assert inject.status_code == 201
    pending = requests.get(f"{sandbox.root_url}/_sandbox/faults", timeout=5).json()
    assert [(f["status"], f["remaining"]) for f in pending] == [(502, 2)]
    assert fuse.bulk_queue().status_code == 502
    assert requests.delete(f"{sandbox.root_url}/_sandbox/faults", timeout=5).status_code == 204
    assert fuse.bulk_queue().status_code == 200


def test_invalid_fault_over_http_is_400(sandbox):
    response = requests.post(f"{sandbox.root_url}/_sandbox/faults", json={"colour": "red"}, timeout=5)
    assert response.status_code == 400


@pytest.mark.parametrize(
    "options",
    [{}, {"status": 42}, {"status": 500, "count": 0}, {"delay": -1}, {"drop": True, "endpoint": "bulkqueue"}],
)
def test_fault_that_changes_nothing_or_is_out_of_range_is_refused(options):
    with pytest.raises(ValueError, match="Fault"):
        Fault(**options)
