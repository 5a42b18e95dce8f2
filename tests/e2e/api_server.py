"""A real ``airflow api-server`` for end-to-end tests and benchmarks, and a light HTTP load client.

``ApiServer(env)`` starts ``airflow api-server --host 127.0.0.1 --port <free>`` as its own process
group with ``env`` (a migrated ``AIRFLOW_HOME`` and whatever ``AIRFLOW__*`` / ``AIRFLOW_CONN_*`` the
test needs), waits until ``/api/v2/monitor/health`` answers, and captures everything the server
prints (its access log included) in a file, for tests that check what reaches the logs. Leaving the
``with`` block stops the whole group (uvicorn's workers too).

``post_many`` sends many POSTs over a bounded number of keep-alive connections with nothing but
asyncio streams: httpx spends a millisecond or more of CPU a request, which on a small machine
measures the client rather than the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = ["AIRFLOW", "Answer", "ApiServer", "Post", "free_port", "post_many"]

AIRFLOW = str(Path(sys.executable).parent / "airflow")
HEALTH_PATH = "/api/v2/monitor/health"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 a moment ago (the server binds it itself: see ``ApiServer.start``)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ApiServer:
    """``airflow api-server`` on a free loopback port, with ``env``; a context manager.

    :param env: the whole environment of the server (``AIRFLOW_HOME`` must be migrated).
    :param workers: uvicorn workers (``--workers``).
    :param startup_timeout: seconds to wait for the health endpoint.
    :param airflow: the ``airflow`` script to run (default: the one beside this interpreter).
    """

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        workers: int = 1,
        startup_timeout: float = 120.0,
        airflow: str = AIRFLOW,
    ) -> None:
        self.env = dict(env)
        self.workers = workers
        self.startup_timeout = startup_timeout
        self.airflow = airflow
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._logdir = tempfile.TemporaryDirectory(prefix="fuse-api-server-")
        self.log_path = Path(self._logdir.name) / "api-server.log"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ApiServer:
        """Start the server and wait until it is healthy (a port taken meanwhile: another try).

        :raises RuntimeError: it exited or did not become healthy in time (with its output's tail).
        """
        for attempt in range(3):
            self.port = free_port()
            with open(self.log_path, "ab") as log:
                self._process = subprocess.Popen(
                    [
                        *(self.airflow, "api-server", "--host", "127.0.0.1", "--port", str(self.port)),
                        *("--workers", str(self.workers)),
                    ],
                    env=self.env,
                    # Not the checkout: a build's *.egg-info there would list the provider twice.
                    cwd=self.log_path.parent,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            try:
                self._wait_healthy()
                return self
            except RuntimeError:
                output = self.output()
                self.stop()
                if "address already in use" in output.lower() and attempt < 2:
                    continue
                raise RuntimeError(f"the api-server did not start:\n{output[-4000:]}") from None
        raise AssertionError("unreachable")

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError("exited")
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(self.url + HEALTH_PATH, timeout=2) as answer,
            ):
                if answer.status == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError("not healthy in time")

    def output(self) -> str:
        """Everything the server printed so far (stdout and stderr)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the server's process group; SIGKILL what is left after ``timeout`` seconds."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        # Workers that outlived the parent (same group).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)

    def close(self) -> None:
        """Stop the server and remove its captured output."""
        self.stop()
        self._logdir.cleanup()

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class Post:
    """One POST: the path (with any query), the body and its content type."""

    path: str
    body: bytes
    content_type: str = "application/json"


@dataclass(frozen=True)
class Answer:
    """A response: its status and body."""

    status: int
    body: bytes


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, post: Post
) -> tuple[Answer, bool]:
    writer.write(
        f"POST {post.path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {post.content_type}\r\n"
        f"Content-Length: {len(post.body)}\r\n\r\n".encode("latin-1")
        + post.body
    )
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("the server closed the connection")
    status = int(status_line.split()[1])
    length: int | None = None
    close = False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value == "close":
            close = True
        elif name == "transfer-encoding":
            raise ValueError("post_many reads only responses with a Content-Length")
    if length is None:
        body, close = await reader.read(), True
    else:
        body = await reader.readexactly(length) if length else b""
    return Answer(status, body), close


async def post_many_async(
    base_url: str, posts: Sequence[Post], *, concurrency: int = 32, timeout: float = 60.0
) -> list[Answer]:
    """Send ``posts`` over ``concurrency`` keep-alive HTTP/1.1 connections; the answers, in order.

    A connection the server closes (``Connection: close``, or a reset between requests) is reopened.

    :raises TimeoutError: one exchange took longer than ``timeout`` seconds.
    """
    host_port = base_url.split("://", 1)[1].rstrip("/")
    host, _, port = host_port.rpartition(":")
    answers: list[Answer | None] = [None] * len(posts)
    cursor = iter(range(len(posts)))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for index in cursor:
                for attempt in (1, 2):
                    try:
                        answer, close = await asyncio.wait_for(
                            _exchange(reader, writer, host_port, posts[index]), timeout
                        )
                        break
                    except (ConnectionResetError, asyncio.IncompleteReadError, BrokenPipeError):
                        writer.close()
                        if attempt == 2:
                            raise
                        reader, writer = await asyncio.open_connection(host, int(port))
                answers[index] = answer
                if close:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, int(port))
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(min(concurrency, len(posts)) or 1)))
    done = [answer for answer in answers if answer is not None]
    assert len(done) == len(posts), "a request was left unanswered"
    return done


def post_many(
    base_url: str, posts: Sequence[Post], *, concurrency: int = 32, timeout: float = 60.0
) -> list[Answer]:
    """:func:`post_many_async`, run in a new event loop."""
    return asyncio.run(post_many_async(base_url, posts, concurrency=concurrency, timeout=timeout))
