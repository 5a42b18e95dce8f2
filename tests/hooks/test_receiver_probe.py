"""The check of our own results receiver before dialing (:func:`probe_results_receiver`; review r1: D).

It was a bare ``requests.post`` in the bulk operator: 10 s per read (an answer trickling 8 bytes at
4 s each held the task 32 s), the whole body read (a 300 MB answer: +604 MB RSS), and any 403 — a
proxy's too — taken for "the receiver has another signing key", failing the task without retries.
Now it lives in the hook: one overall deadline, at most :data:`PROBE_READ_BYTES` read, no redirect,
and a 403 is a refusal of the token only when it is the receiver's own answer.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from airflow_provider_fuse.hooks.fuse import PROBE_READ_BYTES, ProbeAnswer, probe_results_receiver
from airflow_provider_fuse.results.config import ResultsConfig
from airflow_provider_fuse.results.tokens import UploadPart, new_campaign, sign

TOKEN = "TOKEN-" + "x" * 40
#: How long a test peer serves one connection at most.
PEER_SECONDS = 30


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@contextlib.contextmanager
def raw_peer(handler: Callable[[socket.socket], None]) -> Iterator[tuple[str, dict[str, int]]]:
    """A loopback peer that reads one request and hands the connection to ``handler``; yields its
    result URL (a token in the path, as the operator's) and what it counted (``sent`` bytes)."""
    counts = {"sent": 0}
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(PEER_SECONDS)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn, contextlib.suppress(OSError):
            conn.settimeout(PEER_SECONDS)
            conn.recv(65536)
            handler(_Counting(conn, counts))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/fuse/results/{TOKEN}", counts
    finally:
        listener.close()
        thread.join(PEER_SECONDS + 5)


class _Counting:
    def __init__(self, conn: socket.socket, counts: dict[str, int]) -> None:
        self.conn, self.counts = conn, counts

    def sendall(self, data: bytes) -> None:
        self.conn.sendall(data)
        self.counts["sent"] += len(data)


def answering(raw: bytes) -> Callable[[_Counting], None]:
    return lambda conn: conn.sendall(raw)


def json_answer(status: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
    )


def test_an_answer_trickling_its_body_is_cut_at_the_overall_deadline():
    def trickle(conn: _Counting) -> None:
        conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(40):  # a byte every 0.5 s: each read is quick, the whole answer is not
            conn.sendall(b"x")
            time.sleep(0.5)

    with raw_peer(trickle) as (url, _):
        started = time.monotonic()
        answer = probe_results_receiver(url, deadline=2.0)
        took = time.monotonic() - started
    assert answer == ProbeAnswer(None)
    assert took < 4, f"{took:.1f} s"


def test_an_answer_trickling_its_head_is_cut_at_the_overall_deadline():
    def trickle(conn: _Counting) -> None:
        for byte in b"HTTP/1.1 400 Bad Request\r\n":
            conn.sendall(bytes([byte]))
            time.sleep(0.5)

    with raw_peer(trickle) as (url, _):
        started = time.monotonic()
        assert probe_results_receiver(url, deadline=2.0).status_code is None
        assert time.monotonic() - started < 4


def test_a_huge_answer_is_not_read_past_the_cap():
    def flood(conn: _Counting) -> None:
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n" % (300 << 20))
        chunk = b"x" * (1 << 20)
        for _ in range(300):
            conn.sendall(chunk)

    with raw_peer(flood) as (url, counts):
        started = time.monotonic()
        answer = probe_results_receiver(url)
        took = time.monotonic() - started
    assert answer.status_code == 400
    assert took < 5, f"{took:.1f} s"
    # What the peer got out before the probe hung up: socket buffers, not the 300 MB.
    assert counts["sent"] < 64 << 20, counts
    assert PROBE_READ_BYTES <= 64 * 1024


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        json_answer(b"403 Forbidden", b'{"detail": "Forbidden"}'),
        json_answer(b"403 Forbidden", b'{"detail": "invalid or expired results token", "more": 1}'),
        b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\nContent-Length: 9\r\n\r\n<b>no</b>",
    ],
    ids=["a proxy's bare 403", "another app's JSON 403", "a JSON 403 with more", "an HTML 403"],
)
def test_a_403_that_is_not_the_receivers_own_is_not_a_refused_token(raw):
    with raw_peer(answering(raw)) as (url, _):
        answer = probe_results_receiver(url)
    assert answer == ProbeAnswer(403, refuses_token=False)


def test_a_forward_proxy_answering_403_is_not_a_refused_token(monkeypatch):
    raw = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    with raw_peer(answering(raw)) as (proxy_url, _):
        monkeypatch.setenv("HTTP_PROXY", proxy_url.split("/fuse/")[0])
        answer = probe_results_receiver("http://receiver.invalid:8080/fuse/results/" + TOKEN)
    assert answer == ProbeAnswer(403, refuses_token=False)


def test_a_redirect_is_not_followed():
    raw = b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:9/x\r\nContent-Length: 0\r\n\r\n"
    with raw_peer(answering(raw)) as (url, _):
        assert probe_results_receiver(url) == ProbeAnswer(307)


def closed_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_out_of_reach_is_no_answer_and_the_url_is_never_logged(log_text):
    refused = probe_results_receiver(f"http://127.0.0.1:{closed_port()}/fuse/results/{TOKEN}")
    assert refused == ProbeAnswer(None, connection_refused=True)
    raw = b"HTTP/1.1 400 Bad\r\nX-Debug : " + TOKEN.encode() + b"\r\nContent-Length: 0\r\n\r\n"
    with raw_peer(answering(raw)) as (url, _):
        assert probe_results_receiver(url) == ProbeAnswer(None)  # a head h11 refuses: no answer
    assert TOKEN not in log_text()


@pytest.mark.parametrize("query", ["", "?next=1"])
def test_an_answered_probe_logs_no_token_at_debug_level(log_text, query):
    # urllib3 logs each request line at DEBUG ("POST /fuse/results/<token> HTTP/1.1" 400), and
    # Airflow's DEBUG logging level turns it on.
    raw = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    with raw_peer(answering(raw)) as (url, _):
        assert probe_results_receiver(url + query) == ProbeAnswer(400)
    logs = log_text()
    assert "127.0.0.1" in logs, "the clients' DEBUG lines were not captured"
    assert TOKEN not in logs
    assert TOKEN[:12] not in logs


def test_the_real_receiver_refusing_a_token_is_told_from_one_accepting_it(monkeypatch, tmp_path):
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from airflow_provider_fuse.results.receiver import create_app
    from tests.helpers import serving

    key = secrets.token_urlsafe(36)
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_RESULTS_DEFAULT", f"sqlite://{tmp_path / 'results.db'}")
    config = ResultsConfig(
        base_url="http://127.0.0.1",
        conn_id="fuse_results_default",
        table="fuse_call_results",
        signing_key=key,
    )

    def token(signing_key: str) -> str:
        part = UploadPart(
            dag_id="d",
            run_id="r",
            task_id="t",
            map_index=-1,
            campaign=new_campaign(),
            part=0,
            rows=1,
            expires=int(time.time()) + 600,
        )
        return sign(part, signing_key)

    app = Starlette(routes=[Mount("/fuse", app=create_app(load_config=lambda: config))])
    with serving(monkeypatch, app) as base:
        accepted = probe_results_receiver(f"{base}/fuse/results/{token(key)}")
        refused = probe_results_receiver(f"{base}/fuse/results/{token(secrets.token_urlsafe(36))}")
    assert accepted == ProbeAnswer(400)
    assert refused == ProbeAnswer(403, refuses_token=True)


# --- Answers that say the receiver could store no outcome (issue 18) ----------------------------------


def test_the_real_receivers_not_configured_answer_is_told_from_another_503(monkeypatch):
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from airflow_provider_fuse.results.config import ResultsConfigError
    from airflow_provider_fuse.results.receiver import create_app
    from tests.helpers import serving

    def unset() -> ResultsConfig:
        raise ResultsConfigError("[fuse] results_signing_key is not set")

    app = Starlette(routes=[Mount("/fuse", app=create_app(load_config=unset))])
    with serving(monkeypatch, app) as base:
        answer = probe_results_receiver(f"{base}/fuse/results/{TOKEN}")
        elsewhere = probe_results_receiver(f"{base}/api/fuse/results/{TOKEN}")  # no such path
    assert answer == ProbeAnswer(503, not_configured=True)
    assert not answer.no_receiver
    assert elsewhere.no_receiver
    assert not elsewhere.not_configured


@pytest.mark.parametrize(
    "body",
    [
        b'{"detail": "the outcome could not be stored; retry later"}',  # the receiver's busy database
        b"<html>Service Unavailable</html>",  # a proxy
        b'{"detail": "the results receiver is not configured", "more": 1}',
    ],
)
def test_a_503_that_is_not_the_receivers_not_configured_answer_is_just_a_503(body):
    with raw_peer(answering(json_answer(b"503 Service Unavailable", body))) as (url, _):
        assert probe_results_receiver(url) == ProbeAnswer(503)


@pytest.mark.parametrize(("status", "no_receiver"), [(404, True), (405, True), (410, True), (400, False)])
def test_404_405_and_410_say_nothing_there_is_the_receiver(status, no_receiver):
    raw = json_answer(b"%d Whatever" % status, b'{"detail": "Not Found"}')
    with raw_peer(answering(raw)) as (url, _):
        answer = probe_results_receiver(url)
    assert answer == ProbeAnswer(status)
    assert answer.no_receiver is no_receiver


# --- A refused connection is told from other failures (issue 19) -------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_refused_connection_is_told_from_no_answer(host):
    answer = probe_results_receiver(f"http://{host}:{closed_port()}/fuse/results/{TOKEN}")
    assert answer == ProbeAnswer(None, connection_refused=True)


def test_an_answer_not_whole_within_the_deadline_is_not_a_refused_connection():
    with raw_peer(lambda conn: time.sleep(3)) as (url, _):
        assert probe_results_receiver(url, deadline=1.0) == ProbeAnswer(None, connection_refused=False)


def test_a_proxy_refusing_the_connection_is_not_the_receiver_refusing_it(monkeypatch):
    # The receiver may be up behind it: what refused is the proxy, not the receiver's host.
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    answer = probe_results_receiver("http://receiver.invalid:8080/fuse/results/" + TOKEN)
    assert answer == ProbeAnswer(None, connection_refused=False)


def test_a_name_that_does_not_resolve_is_not_a_refused_connection():
    answer = probe_results_receiver("http://receiver.invalid:8080/fuse/results/" + TOKEN, deadline=5.0)
    assert answer == ProbeAnswer(None, connection_refused=False)
