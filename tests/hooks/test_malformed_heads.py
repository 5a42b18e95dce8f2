"""Answers whose head is malformed, and failures after the request left (issue 18, review r1: A, B, C).

* A: whatever a client raises once a connection was made for the request, the request may have
  reached Fuse: an unknown outcome, never "not sent" (two different Content-Length headers made
  urllib3 raise ``InvalidHeader`` while reading the answer, which was taken for a request never made:
  the ledger cleared the intent and a clear dialed the list again).
* B: no answer text reaches a log through urllib3's own warning about a head it could not parse.
* C: the sync path refuses exactly the heads the async one (httpx's h11) refuses, with the same
  classification.
* D (review r3): a peer hanging up during the TLS handshake is a request not sent on both paths: the
  connection was never made, so nothing of the request left.

Against a raw loopback peer (:class:`tests.hooks.helpers.RawPeer`), through the
hook's real clients.
"""

from __future__ import annotations

import logging
import socket
import struct

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_fuse._compat import AirflowFailException
from airflow_provider_fuse.exceptions import (
    FuseConnectionLostError,
    FuseError,
    FuseNotSentError,
    FuseRequestError,
    FuseUnknownOutcomeError,
    nothing_queued,
)
from airflow_provider_fuse.hooks.fuse import classify_network_error
from airflow_provider_fuse.operators.fuse import FuseBulkQueueOperator
from tests.helpers import DEVELOPER_KEY, MemoryStore, connection_json
from tests.hooks.helpers import LoopbackPeer, RawPeer
from tests.hooks.test_same_answers_both_paths import (
    DETAILS,
    QUEUED,
    make_hook,
    read_async,
    read_sync,
    same,
)

NUMBER = "6175550100"


def head(*lines: bytes, body: bytes = DETAILS, status: bytes = b"200 OK") -> bytes:
    """An answer whose head is the status line and ``lines`` as given (each without its line end)."""
    return b"HTTP/1.1 " + status + b"\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n" + body


def usual_fields(body: bytes = DETAILS) -> list[bytes]:
    return [b"Content-Type: application/json", b"Content-Length: %d" % len(body), b"Connection: close"]


# --- A: a failure after the request left is an unknown outcome, whatever the client calls it ------------

TWO_LENGTHS = head(
    b"Content-Type: application/json",
    b"Content-Length: %d" % len(QUEUED),
    b"Content-Length: 5",
    b"Connection: close",
    body=QUEUED,
)


def test_two_different_content_lengths_are_an_unknown_outcome_on_both_paths(peer, contacts_csv):
    peer.answer = TWO_LENGTHS
    error = same(read_sync(), read_async())
    assert isinstance(error, FuseUnknownOutcomeError)
    with pytest.raises(FuseUnknownOutcomeError) as caught:
        make_hook(connect_retries=2).bulk_queue(12, 34, contacts_csv)
    assert not nothing_queued(caught.value)
    assert len(peer.request_lines) == 3  # two reads, one POST: never sent again


def test_a_bulk_queue_answered_with_two_content_lengths_is_never_sent_again_by_a_clear(peer, contacts_csv):
    peer.answer = TWO_LENGTHS
    store = MemoryStore()

    def try_once() -> AirflowFailException:
        operator = FuseBulkQueueOperator(
            task_id="queue_calls", application_id=12, deployment_id=34, csv_path=str(contacts_csv)
        )
        with pytest.raises(AirflowFailException) as caught:
            operator.execute({"task_state_store": store})
        return caught.value

    first = try_once()
    assert "Unknown outcome" in str(first)
    assert store.values, "the intent to send was kept in the ledger"
    second = try_once()  # a retry, or a clear of the task instance
    assert "outcome of an earlier try is unknown" in str(second)
    posts = [line for line in peer.request_lines if line.startswith(b"POST ")]
    assert len(posts) == 1


def test_a_not_sent_class_raised_after_connecting_is_an_unknown_outcome():
    # What urllib3 raises while reading an answer, wrapped by requests in a class that also means
    # "the request could not be made" when requests raises it before sending.
    from urllib3.exceptions import InvalidHeader

    read_failure = requests.exceptions.InvalidHeader(InvalidHeader("multiple Content-Length values"))
    assert isinstance(classify_network_error(read_failure), FuseConnectionLostError)
    for before_sending in (
        requests.exceptions.InvalidHeader("Invalid leading whitespace in header value"),
        requests.exceptions.InvalidURL("no host"),
        requests.exceptions.ConnectTimeout("slow"),
    ):
        assert isinstance(classify_network_error(before_sending), FuseNotSentError)
        after = classify_network_error(before_sending, connected=True)
        assert isinstance(after, FuseUnknownOutcomeError), before_sending
        assert not nothing_queued(after)
    unmade = classify_network_error(requests.exceptions.InvalidURL("x"), connected=False)
    assert isinstance(unmade, FuseRequestError)


# --- C: the sync path refuses the heads the async one refuses ---------------------------------------------

DEFECTS = {
    "a line without a colon": [*usual_fields(), b"Garbage line"],
    "a space before the colon": [b"Content-Type : application/json", *usual_fields()[1:]],
    "a NUL in a value": [*usual_fields(), b"X-N: a\x00b"],
    "a control character in a name": [*usual_fields(), b"X\x01N: b"],
    "a folded line first": [b" X-Folded: a", *usual_fields()],
    "a Content-Length that is not a number": [b"Content-Type: application/json", b"Content-Length: 5x"],
}


@pytest.mark.parametrize("lines", DEFECTS.values(), ids=DEFECTS.keys())
def test_a_malformed_head_is_the_same_unknown_outcome_on_both_paths(peer, lines, contacts_csv):
    peer.answer = head(*lines)
    error = same(read_sync(), read_async())
    assert isinstance(error, FuseConnectionLostError)
    assert error.status_code is None
    lines = [line.replace(b"%d" % len(DETAILS), b"%d" % len(QUEUED)) for line in lines]
    peer.answer = head(*lines, body=QUEUED)
    with pytest.raises(FuseConnectionLostError) as caught:
        make_hook(connect_retries=2).bulk_queue(12, 34, contacts_csv)
    assert not nothing_queued(caught.value)
    assert len(peer.request_lines) == 3


ACCEPTED = {
    "a folded value": [*usual_fields(), b"X-A: a", b"  continued"],
    "tabs around a value": [*usual_fields(), b"X-A:\ta\t"],
    "a Latin-1 byte in a value": [*usual_fields(), b"X-A: caf\xe9"],
    "an empty value": [*usual_fields(), b"X-A:"],
}


@pytest.mark.parametrize("lines", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_heads_both_parsers_accept_are_read_by_both_paths(peer, lines):
    peer.answer = head(*lines)
    assert same(read_sync(), read_async()) == "completed"


#: Both clients ask in HTTP/1.1: an answer may say HTTP/1.1, or HTTP/1.0 from an older server.
HTTP_VERSIONS = st.sampled_from([b"1.0", b"1.1", b"2.0", b"0.9", b"1.2", b"2"]) | st.from_regex(
    rb"\A[0-9](\.[0-9])?\Z"
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(version=HTTP_VERSIONS)
def test_an_answer_in_another_http_version_is_the_same_unknown_outcome_on_both_paths(peer, version):
    # The status line alone differs: HTTP/2.0 was read as a 200 by the async path only.
    peer.answer = b"HTTP/" + version + b" 200 OK\r\n" + b"".join(line + b"\r\n" for line in usual_fields())
    peer.answer += b"\r\n" + DETAILS
    result = same(read_sync(), read_async())
    if version in (b"1.0", b"1.1"):
        assert result == "completed"
    else:
        assert isinstance(result, FuseConnectionLostError)
        assert result.status_code is None


def test_a_bulk_queue_answered_in_http_2_is_an_unknown_outcome_sent_once(peer, contacts_csv):
    peer.answer = b"HTTP/2.0 200 OK\r\n" + b"".join(line + b"\r\n" for line in usual_fields(QUEUED))
    peer.answer += b"\r\n" + QUEUED
    with pytest.raises(FuseConnectionLostError) as caught:
        make_hook(connect_retries=2).bulk_queue(12, 34, contacts_csv)
    assert not nothing_queued(caught.value)
    assert len(peer.request_lines) == 1


NAMES = st.sampled_from([b"X-A", b"x_b", b"X A", b"", b"X\x00", b"\xc4", b"X(", b"X-Ok", b"Content-Type"])
SEPARATORS = st.sampled_from([b": ", b":", b" : ", b"\t:", b" ", b":\t", b"::"])
VALUE_BYTES = st.sampled_from(
    [b"a", b"6", b" ", b"\t", b"\x00", b"\x01", b"\x7f", b"\x80", b"\xff", b"\r", b":"]
)
LINE = st.tuples(
    st.sampled_from([b"", b"", b"", b" ", b"\t"]),  # a leading space or tab folds the line
    NAMES,
    SEPARATORS,
    st.lists(VALUE_BYTES, max_size=6).map(b"".join),
).map(b"".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINE, min_size=1, max_size=4), first=st.booleans(), bare_lf=st.booleans())
def test_both_paths_classify_every_head_the_same_way(peer, lines, first, bare_lf):
    fields = [*lines, *usual_fields()] if first else [*usual_fields(), *lines]
    end = b"\n" if bare_lf else b"\r\n"
    peer.answer = b"HTTP/1.1 200 OK" + end + b"".join(line + end for line in fields) + end + DETAILS
    result = same(read_sync(), read_async())
    assert result == "completed" or isinstance(result, FuseError)


# --- B: no answer text in a log -----------------------------------------------------------------------


def test_a_malformed_header_line_quoting_a_number_reaches_no_log(peer, contacts_csv, log_text):
    from airflow.sdk.log import mask_secret

    mask_secret(DEVELOPER_KEY)  # Airflow's masking on: it hides secrets, not numbers
    peer.answer = head(
        b"Content-Type: application/json",
        f"X-Debug : caller {NUMBER}".encode(),
        b"Content-Length: %d" % len(QUEUED),
        b"Connection: close",
        body=QUEUED,
    )
    with pytest.raises(FuseError):
        make_hook().bulk_queue(12, 34, contacts_csv)
    with pytest.raises(FuseError):
        make_hook().get_call_status(77)
    logs = log_text()
    assert NUMBER not in logs
    assert "Traceback" not in logs


def test_urllib3s_warning_about_a_head_carries_no_answer_text_once_a_hook_is_used(fuse_connection, log_text):
    from urllib3.exceptions import HeaderParsingError

    make_hook().session  # noqa: B018 - building the session installs the filter
    error = HeaderParsingError(defects=[], unparsed_data=f"X-Debug : caller {NUMBER}\r\n")
    try:
        raise error
    except HeaderParsingError:
        # As urllib3 logs a head it could not parse (its words are not what is tested).
        logging.getLogger("urllib3.connection").warning(
            "Failed to parse headers (url=%s): %s",
            "https://fuse.example.com/api/results/SECRET-PATH",
            error,
            exc_info=True,
        )
    logs = log_text()
    assert NUMBER not in logs
    assert "SECRET-PATH" not in logs
    assert "HeaderParsingError" in logs


@pytest.mark.parametrize(
    "raw",
    [
        # httpx logs the reason phrase at INFO; httpcore, at DEBUG, each head and each failure's text.
        head(*usual_fields(), status=f"200 OK {NUMBER}".encode()),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz"
        + NUMBER.encode()
        + b"\r\n",
        head(*usual_fields(), f"X-Debug : caller {NUMBER}".encode()),
    ],
    ids=["a reason phrase", "a chunk-size line", "a malformed header line"],
)
def test_the_async_clients_logs_carry_no_answer_text(peer, raw, log_text):
    peer.answer = raw
    read_async()
    assert NUMBER not in log_text()


def test_neither_clients_debug_lines_carry_answer_text(peer, log_text):
    # log_text is at DEBUG: urllib3 logs each request line and httpcore each head.
    body = f'{{"error": "no call {NUMBER}"}}'.encode()
    peer.answer = head(
        *usual_fields(body), f"X-Debug: caller {NUMBER}".encode(), status=f"404 {NUMBER}".encode(), body=body
    )
    assert isinstance(same(read_sync(), read_async()), FuseError)
    logs = log_text()
    assert "127.0.0.1" in logs
    assert NUMBER not in logs


def test_a_proxy_refusing_the_tunnel_is_not_sent_on_both_paths(monkeypatch):
    # The CONNECT to the proxy is a request of its own (httpx traces it as the request's): nothing
    # reached Fuse. What is connected-for-the-request is the tunnel, not the proxy.
    proxy = RawPeer()
    proxy.answer = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    extra = {"proxies": {"https": proxy.url.removesuffix("/api")}}
    monkeypatch.setenv(
        "AIRFLOW_CONN_FUSE_DEFAULT", connection_json(host="https://fuse.example.com/api", extra=extra)
    )
    try:
        results = [read_sync(), read_async()]
    finally:
        proxy.close()
    for error in results:  # the messages name each client's own exception types
        assert type(error) is FuseNotSentError, error
    assert [line.split(b" ")[0] for line in proxy.request_lines] == [b"CONNECT", b"CONNECT"]


# --- D: a TLS handshake that fails is a request not sent, on both paths ----------------------------------


class HandshakeHangUp(LoopbackPeer):
    """A loopback peer that accepts TCP, reads the start of the TLS ClientHello and hangs up (with a
    reset when ``reset``, else a plain close) before the handshake ends; counts the connections."""

    scheme = "https"

    def __init__(self, *, reset: bool) -> None:
        self.reset = reset
        self.accepted = 0
        super().__init__(name="tls-hang-up", serve_seconds=60, connection_seconds=5)

    def handle(self, conn: socket.socket) -> None:
        self.accepted += 1
        conn.recv(10)
        if self.reset:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@pytest.mark.parametrize("reset", [True, False], ids=["reset", "closed"])
def test_a_peer_hanging_up_during_the_tls_handshake_is_not_sent_on_both_paths(
    monkeypatch, contacts_csv, reset
):
    # The sync path took it for a connection lost after sending: an unknown outcome, never tried
    # again, and the ledger blocked every later try. Nothing of the request can have left.
    peer = HandshakeHangUp(reset=reset)
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json(host=peer.url))
    try:
        for error in (read_sync(), read_async()):  # the messages name each client's own types
            assert type(error) is FuseNotSentError, error
        peer.accepted = 0
        with pytest.raises(FuseNotSentError) as caught:
            make_hook(connect_retries=2).bulk_queue(12, 34, contacts_csv)
        assert nothing_queued(caught.value)
        assert peer.accepted == 3  # connect retries apply
    finally:
        peer.close()


def test_a_failure_once_connected_stays_an_unknown_outcome_whatever_else_is_said():
    from urllib3.exceptions import ProtocolError

    reset = requests.exceptions.ConnectionError(ProtocolError("aborted", ConnectionResetError(104, "reset")))
    assert isinstance(classify_network_error(reset, connect_failed=True), FuseNotSentError)
    assert isinstance(classify_network_error(reset), FuseConnectionLostError)
    for error in (reset, requests.exceptions.InvalidHeader("x"), requests.exceptions.ConnectTimeout("x")):
        after = classify_network_error(error, connected=True, connect_failed=True)
        assert isinstance(after, FuseUnknownOutcomeError)
    # What could not be made stays so: trying again cannot help.
    unmade = classify_network_error(requests.exceptions.InvalidURL("x"), connect_failed=True)
    assert isinstance(unmade, FuseRequestError)
