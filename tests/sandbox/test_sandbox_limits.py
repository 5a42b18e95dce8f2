"""What the sandbox reads of a request: credentials first, then at most ``max_upload_bytes``.

Real HTTP over loopback. ``http.client`` sends the requests whose timing matters: headers that
promise a body never sent, or a chunked body without a ``Content-Length``.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from airflow_provider_fuse.sandbox import FuseSandbox, SandboxSettings
from tests.sandbox.conftest import TIME_SCALE, FuseClient, client_of

CAP = 4096
ANSWER_TIMEOUT = 5.0  # seconds: a server waiting for a body it will never get fails the test


@pytest.fixture(scope="module")
def capped_sandbox() -> Iterator[FuseSandbox]:
    with FuseSandbox(time_scale=TIME_SCALE, max_upload_bytes=CAP) as sandbox:
        yield sandbox


@pytest.fixture
def capped(capped_sandbox: FuseSandbox) -> Iterator[FuseClient]:
    capped_sandbox.reset()
    yield from client_of(capped_sandbox)


def multipart(client: FuseClient, csv: bytes, *, authorized: bool = True) -> requests.PreparedRequest:
    """A bulk_queue request as ``requests`` would send it, prepared but not sent."""
    return requests.Request(
        "POST",
        f"{client.url}/apps/101/202/bulk_queue",
        files={"csv": ("contacts.csv", csv, "text/csv")},
        auth=(client.sandbox.email, client.sandbox.developer_key) if authorized else None,
    ).prepare()


def connection(client: FuseClient) -> http.client.HTTPConnection:
    parts = urlsplit(client.url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=ANSWER_TIMEOUT)


def send_headers_only(
    client: FuseClient, prepared: requests.PreparedRequest, length: int
) -> tuple[int, bytes]:
    """Send ``prepared``'s headers promising ``length`` body bytes, send none, and read the answer."""
    conn = connection(client)
    try:
        conn.putrequest("POST", urlsplit(prepared.url).path)
        for name, value in prepared.headers.items():
            if name.lower() != "content-length":
                conn.putheader(name, value)
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def send_chunked(
    client: FuseClient, prepared: requests.PreparedRequest, chunk: int = 1024
) -> tuple[int, bytes]:
    """Send ``prepared``'s body chunked (no ``Content-Length``) and read the answer."""
    body = prepared.body
    assert isinstance(body, bytes)
    headers = {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}
    headers["Transfer-Encoding"] = "chunked"
    conn = connection(client)
    try:
        blocks = (body[start : start + chunk] for start in range(0, len(body), chunk))
        conn.request("POST", urlsplit(prepared.url).path, body=blocks, headers=headers, encode_chunked=True)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def csv_of(size: int) -> bytes:
    """A valid contact CSV of about ``size`` bytes."""
    rows = max(1, size // 11)
    return b"destination\n" + b"6175551234\n" * rows


# --- credentials first --------------------------------------------------------------------------


def test_an_unauthenticated_upload_is_answered_401_and_not_recorded(fuse, sandbox):
    fuse.auth = None
    assert fuse.bulk_queue().status_code == 401
    assert sandbox.uploads() == []
    assert [(r.method, r.status_code) for r in sandbox.requests()] == [("POST", 401)]


def test_an_unauthenticated_upload_is_answered_without_waiting_for_its_body(fuse, sandbox):
    status, body = send_headers_only(fuse, multipart(fuse, b"destination\n", authorized=False), length=CAP)
    assert status == 401
    assert b"Authentication headers invalid" in body
    assert sandbox.uploads() == []


def test_an_unauthenticated_queue_request_is_answered_without_waiting_for_its_body(fuse, sandbox):
    prepared = requests.Request(
        "POST", f"{fuse.url}/apps/101/202/queue", files={"phone_number": (None, "6175551234")}
    ).prepare()
    assert send_headers_only(fuse, prepared, length=CAP)[0] == 401
    assert sandbox.calls() == []


def test_an_unauthenticated_upload_under_a_fault_gets_the_fault_and_is_not_recorded(fuse, sandbox):
    sandbox.inject_fault(status=503, endpoint="bulk_queue")
    fuse.auth = None
    assert fuse.bulk_queue().status_code == 503
    assert sandbox.uploads() == []


# --- the cap ------------------------------------------------------------------------------------


def test_a_declared_body_over_the_cap_is_answered_413_before_it_is_sent(capped):
    status, body = send_headers_only(capped, multipart(capped, b"destination\n"), length=CAP + 1)
    assert status == 413
    assert body == (b'{"error":"The request body is larger than the sandbox accepts (%d bytes)."}' % CAP)
    assert capped.sandbox.uploads() == []
    assert [(r.method, r.status_code) for r in capped.sandbox.requests()] == [("POST", 413)]


def test_a_chunked_body_over_the_cap_is_answered_413_and_not_recorded(capped):
    status, _ = send_chunked(capped, multipart(capped, csv_of(2 * CAP)))
    assert status == 413
    assert capped.sandbox.uploads() == []
    assert capped.sandbox.calls() == []


def test_a_chunked_body_within_the_cap_is_read(capped):
    status, body = send_chunked(capped, multipart(capped, csv_of(CAP // 2)))
    assert (status, body) == (200, b'{"calls_queued":%d}' % (CAP // 2 // 11))


def test_a_body_of_exactly_the_cap_is_read(capped):
    overhead = len(multipart(capped, b"").body or b"")
    csv = b"destination\n" + b"6" * (CAP - overhead - len(b"destination\n"))
    prepared = multipart(capped, csv)
    assert len(prepared.body or b"") == CAP
    with requests.Session() as session:
        session.trust_env = False
        response = session.send(prepared, timeout=ANSWER_TIMEOUT)
    assert response.status_code == 400  # read and checked: one bad row, not refused for its size
    (upload,) = capped.sandbox.uploads()
    assert upload.csv == csv


def test_a_client_that_sends_a_body_over_the_cap_reads_the_413(capped):
    response = capped.bulk_queue(csv_of(16 * CAP))
    assert response.status_code == 413
    assert "larger than the sandbox accepts" in response.json()["error"]
    assert capped.sandbox.uploads() == []


def test_the_413_is_xml_when_asked(capped):
    response = capped.bulk_queue(csv_of(2 * CAP), accept="application/xml")
    assert response.status_code == 413
    assert "<error>The request body is larger than the sandbox accepts" in response.text


def test_the_cap_applies_under_a_fault_and_leaves_the_fault_pending(capped):
    capped.sandbox.inject_fault(status=503, endpoint="bulk_queue")
    status, _ = send_headers_only(capped, multipart(capped, b"destination\n"), length=CAP + 1)
    assert status == 413
    assert capped.bulk_queue().status_code == 503


def test_the_connection_still_serves_after_a_413(capped):
    with requests.Session() as session:
        session.trust_env = False
        client = FuseClient(session, capped.url, capped.auth or ("", ""), capped.sandbox)
        assert client.bulk_queue(csv_of(16 * CAP)).status_code == 413
        assert client.bulk_queue().status_code == 200


@pytest.mark.parametrize("cap", [0, -1, 1.5, True])
def test_the_cap_must_be_a_positive_number_of_bytes(cap):
    with pytest.raises(ValueError, match="max_upload_bytes must be a positive number of bytes"):
        SandboxSettings(max_upload_bytes=cap)
