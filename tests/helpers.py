"""Constants and helpers shared by the tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from requests_toolbelt.multipart.decoder import MultipartDecoder

EMAIL = "ops@example.com"
DEVELOPER_KEY = "dk-4f1c9e2a7b3d5e6f"
BASE_URL = "https://fuse.example.com/api"


def connection_json(**fields: object) -> str:
    """A ``fuse`` connection in Airflow's JSON environment-variable form."""
    conn: dict[str, object] = {
        "conn_type": "fuse",
        "login": EMAIL,
        "password": DEVELOPER_KEY,
        "host": BASE_URL,
    }
    conn.update(fields)
    return json.dumps({key: value for key, value in conn.items() if value is not None})


def decode_multipart(request: object) -> dict[str, tuple[bytes, dict[str, str]]]:
    """Read the streamed body requests-mock was handed and split it into named parts."""
    body = request.body  # type: ignore[attr-defined]
    raw = body.read() if hasattr(body, "read") else body
    decoder = MultipartDecoder(raw, request.headers["Content-Type"])  # type: ignore[attr-defined]
    parts = {}
    for part in decoder.parts:
        disposition = part.headers[b"Content-Disposition"].decode()
        name = disposition.split('name="')[1].split('"')[0]
        headers = {key.decode(): value.decode() for key, value in part.headers.items()}
        parts[name] = (part.content, headers)
    return parts


class MemoryStore:
    """Stands in for Airflow's ``context["task_state_store"]``: JSON values by key, with a retention."""

    def __init__(self) -> None:
        self.values: dict = {}
        self.retentions: dict = {}

    def get(self, key, default=None):
        return self.values.get(key, default)

    def set(self, key, value, *, retention=None):
        self.values[key] = json.loads(json.dumps(value))  # what a JSON store gives back
        self.retentions[key] = retention


def assert_retryable(error: BaseException) -> None:
    """The task failed in a way its retries apply to: an AirflowException, not AirflowFailException."""
    from airflow_provider_fuse._compat import AirflowException, AirflowFailException

    assert isinstance(error, AirflowException)
    assert not isinstance(error, AirflowFailException)


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run an ASGI ``app`` with uvicorn on a free loopback port, in a thread; yield its base URL.

    Proxies from the environment are the caller's to clear: this binds 127.0.0.1 only.
    """
    import uvicorn

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="error", lifespan="off", timeout_graceful_shutdown=1
    )
    live = uvicorn.Server(config)
    thread = threading.Thread(target=live.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not live.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    port = live.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        live.should_exit = True
        thread.join(10)
