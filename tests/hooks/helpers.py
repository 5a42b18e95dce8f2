"""What the hook's tests share: Fuse's URLs below the test connection's base URL, a hook that does
not wait between tries, the ``fuse_default`` connection set through the environment, and raw peers
on loopback."""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import time

import pytest

from airflow_provider_fuse.exceptions import FuseValidationError, nothing_queued
from airflow_provider_fuse.hooks.fuse import FuseHook
from tests.helpers import BASE_URL, DEVELOPER_KEY, EMAIL, connection_json

BULK_URL = f"{BASE_URL}/apps/12/34/bulk_queue"
QUEUE_URL = f"{BASE_URL}/apps/12/34/queue"
STATUS_URL = f"{BASE_URL}/outbound/77"
#: The test connection's credentials as its Authorization header carries them.
TOKEN = base64.b64encode(f"{EMAIL}:{DEVELOPER_KEY}".encode()).decode()


def make_hook(**kwargs: object) -> FuseHook:
    """A hook on ``fuse_default`` that retries without waiting."""
    return FuseHook(retry_backoff=0.0, **kwargs)  # type: ignore[arg-type]


def connection(monkeypatch: pytest.MonkeyPatch, **fields: object) -> None:
    """Set ``fuse_default`` to the test connection with ``fields`` changed."""
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json(**fields))


def settings_error(monkeypatch: pytest.MonkeyPatch, **fields: object) -> FuseValidationError:
    """What reading the settings of ``fuse_default`` with ``fields`` raises; nothing was sent."""
    connection(monkeypatch, **fields)
    with pytest.raises(FuseValidationError) as caught:
        make_hook().settings  # noqa: B018
    assert nothing_queued(caught.value)
    return caught.value


class LoopbackPeer:
    """A peer on a loopback port that takes one connection at a time, in a thread of its own, for at
    most ``serve_seconds``; :meth:`handle` (a subclass's) does what it does with each, within
    ``connection_seconds`` a read or write. :meth:`close` stops it."""

    scheme = "http"

    def __init__(self, *, name: str, serve_seconds: float, connection_seconds: float) -> None:
        self._serve_seconds = serve_seconds
        self._connection_seconds = connection_seconds
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self._listener.getsockname()[1]}/api"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._connection_seconds + 5)
        self._listener.close()

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def _serve(self) -> None:
        deadline = time.monotonic() + self._serve_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            # OSError: the client hung up first (it refused the answer).
            with conn, contextlib.suppress(OSError):
                conn.settimeout(self._connection_seconds)
                self.handle(conn)


#: How long a :class:`RawPeer` serves at most, and waits on one connection.
SERVE_SECONDS = 300
CONNECTION_SECONDS = 10


class RawPeer(LoopbackPeer):
    """A hostile HTTP/1.1 peer on loopback: reads each request (head and Content-Length body), writes
    :attr:`answer` as it is, and closes. One connection at a time; it serves for at most
    :data:`SERVE_SECONDS`."""

    def __init__(self) -> None:
        self.answer = b""
        self.request_lines: list[bytes] = []
        super().__init__(name="raw-peer", serve_seconds=SERVE_SECONDS, connection_seconds=CONNECTION_SECONDS)

    def handle(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 1 << 20:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        self.request_lines.append(head.split(b"\r\n", 1)[0])
        conn.sendall(self.answer)
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(65536):  # until the client closes: no reset under its last read
            pass
