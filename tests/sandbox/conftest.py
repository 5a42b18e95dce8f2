"""Fixtures for the Fuse sandbox tests: one running sandbox per module, reset before each test."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from airflow_provider_fuse.sandbox import FuseSandbox

TIME_SCALE = 600.0  # a 60 s reattempt_wait passes in 0.1 real seconds
FROZEN = 1e-6  # a sandbox second takes 11 real days: only advance() moves time


@pytest.fixture(scope="module")
def running_sandbox() -> Iterator[FuseSandbox]:
    with FuseSandbox(time_scale=TIME_SCALE, deleted_deployments=[(101, 303)]) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(running_sandbox: FuseSandbox) -> FuseSandbox:
    running_sandbox.reset()
    return running_sandbox


class FuseClient:
    """Calls the sandbox's ``/api`` the way a Fuse client would, with the account's credentials.

    Real HTTP over loopback with ``requests``; returns ``requests.Response`` objects.
    """

    def __init__(self, http: Any, url: str, auth: tuple[str, str], sandbox: FuseSandbox) -> None:
        self.http = http
        self.url = url
        self.auth: tuple[str, str] | None = auth
        self.sandbox = sandbox

    def _headers(self, accept: str | None) -> dict[str, str]:
        return {"Accept": accept} if accept else {}

    def bulk_queue(
        self,
        csv: bytes | str | None = "destination\n6175551234\n",
        *,
        filename: str = "contacts.csv",
        accept: str | None = None,
        app: Any = 101,
        dep: Any = 202,
        **fields: str,
    ) -> Any:
        files: dict[str, Any] = {}
        if csv is not None:
            files["csv"] = (filename, csv.encode() if isinstance(csv, str) else csv, "text/csv")
        else:
            files["placeholder"] = (None, "")  # still multipart/form-data
        return self.http.post(
            f"{self.url}/apps/{app}/{dep}/bulk_queue",
            files=files,
            data=fields,
            headers=self._headers(accept),
            auth=self.auth,
        )

    def queue(self, *, accept: str | None = None, app: Any = 101, dep: Any = 202, **fields: str) -> Any:
        parts = {name: (None, value) for name, value in fields.items()}
        parts.setdefault("placeholder", (None, ""))
        return self.http.post(
            f"{self.url}/apps/{app}/{dep}/queue", files=parts, headers=self._headers(accept), auth=self.auth
        )

    def outbound(self, call_id: str, *, accept: str | None = None) -> Any:
        return self.http.get(f"{self.url}/outbound/{call_id}", headers=self._headers(accept), auth=self.auth)

    def cancel(self, *, accept: str | None = None, app: Any = 101, dep: Any = 202) -> Any:
        return self.http.delete(
            f"{self.url}/apps/{app}/{dep}/cancel", headers=self._headers(accept), auth=self.auth
        )


def client_of(sandbox: FuseSandbox) -> Iterator[FuseClient]:
    with requests.Session() as session:
        session.trust_env = False  # loopback only: never through a proxy from the environment
        yield FuseClient(session, sandbox.url, (sandbox.email, sandbox.developer_key), sandbox)


@pytest.fixture
def fuse(sandbox: FuseSandbox) -> Iterator[FuseClient]:
    """A Fuse client of the module's running sandbox, over real HTTP on loopback."""
    yield from client_of(sandbox)


@pytest.fixture
def client_for() -> Iterator[Callable[[FuseSandbox], FuseClient]]:
    """Make a Fuse client of any running sandbox (sessions closed after the test)."""
    sessions: list[requests.Session] = []

    def build(sandbox: FuseSandbox) -> FuseClient:
        session = requests.Session()
        session.trust_env = False
        sessions.append(session)
        return FuseClient(session, sandbox.url, (sandbox.email, sandbox.developer_key), sandbox)

    yield build
    for session in sessions:
        session.close()


@pytest.fixture(scope="module")
def frozen_sandbox() -> Iterator[FuseSandbox]:
    """A sandbox whose clock barely moves: time passes only through ``advance()``."""
    with FuseSandbox(time_scale=FROZEN) as sandbox:
        yield sandbox


@pytest.fixture
def frozen(frozen_sandbox: FuseSandbox) -> Iterator[FuseClient]:
    """A Fuse client of the frozen-clock sandbox, reset for the test."""
    frozen_sandbox.reset()
    yield from client_of(frozen_sandbox)


@pytest.fixture
def make_client() -> Iterator[Callable[..., FuseClient]]:
    """Start extra sandboxes (``FuseSandbox`` keywords, e.g. ``assumptions=``) for one test."""
    started: list[tuple[FuseSandbox, requests.Session]] = []

    def build(**options: Any) -> FuseClient:
        options.setdefault("time_scale", TIME_SCALE)
        sandbox = FuseSandbox(**options).start()
        session = requests.Session()
        session.trust_env = False
        started.append((sandbox, session))
        return FuseClient(session, sandbox.url, (sandbox.email, sandbox.developer_key), sandbox)

    yield build
    for sandbox, session in started:
        session.close()
        sandbox.stop()


class CallbackReceiver:
    """A loopback HTTP server (stdlib, test-only) that records the requests it receives.

    POST bodies go to ``bodies``, every request's method to ``methods``. With ``redirect_to`` it
    answers each request with that redirect ``(status, location)`` instead.
    """

    def __init__(self, redirect_to: tuple[int, str] | None = None) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.methods: list[str] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                receiver.methods.append("POST")
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.answer()

            def do_GET(self) -> None:
                receiver.methods.append("GET")
                self.answer()

            def answer(self) -> None:
                if redirect_to is not None:
                    self.send_response(redirect_to[0])
                    self.send_header("Location", redirect_to[1])
                    self.send_header("Content-Length", "0")
                else:
                    self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/result"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> CallbackReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    with CallbackReceiver() as running:
        yield running
