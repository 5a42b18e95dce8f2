"""Processes on loopback for the tests, the scripts and the benchmarks: one harness they share.

Development tooling, not part of the package (the wheel ships ``airflow_provider_fuse`` only).
``python scripts/<name>.py`` finds it beside itself; pytest has ``scripts`` on its ``pythonpath``
(pyproject.toml); a benchmark puts ``scripts`` on ``sys.path`` first. Import it as ``harness``.

- :func:`free_port`: a TCP port free on 127.0.0.1.
- :func:`wait_until`: poll a check until it holds, for a bounded time.
- :class:`Process`: a command in a session of its own, its output in a file; stopped by its PID's
  process group and then everything left in its session, each wait bounded.
- :func:`wait_for_port`: until a process answers on a loopback port (or exits).
- :class:`ApiServer`: ``airflow api-server`` with N workers, the provider's results receiver in
  each, on a loopback port; ready when its health endpoint answers.
- :func:`post_many`: many POSTs over a bounded number of keep-alive connections (asyncio streams
  only: httpx spends a millisecond or more of CPU a request, which on a small machine measures the
  client rather than the server).
- :func:`asgi_post_scope`: the ASGI scope of one POST, to call an app straight, with no server.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from types import TracebackType

__all__ = [
    "AIRFLOW",
    "Answer",
    "ApiServer",
    "Post",
    "Process",
    "ProcessExited",
    "asgi_post_scope",
    "free_port",
    "post_many",
    "post_many_async",
    "wait_for_port",
    "wait_until",
]

AIRFLOW = str(Path(sys.executable).parent / "airflow")
HEALTH_PATH = "/api/v2/monitor/health"
#: No proxy for loopback, whatever the environment says.
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))

T = TypeVar("T")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 a moment ago (whoever binds it next may lose a race: retry)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ProcessExited(RuntimeError):
    """A process that was waited for exited first."""


def wait_until(
    what: str,
    check: Callable[[], T | None],
    timeout: float,
    *,
    interval: float = 0.5,
    alive: Callable[[], None] | None = None,
    retry_on: tuple[type[Exception], ...] = (OSError,),
) -> T:
    """Poll ``check`` until it returns something true, for at most ``timeout`` seconds; that value.

    :param alive: called before each poll; it raises to end the wait at once (a process that died).
    :param retry_on: exceptions of ``check`` that count as "not yet".
    :raises TimeoutError: ``check`` did not hold in time (naming ``what`` and its last error).
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        if alive is not None:
            alive()
        try:
            result = check()
        except retry_on as error:
            last_error, result = error, None
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"timed out after {timeout:.0f} s waiting for {what}"
                + (f" ({last_error})" if last_error else "")
            )
        time.sleep(interval)


def _session_of(pid: int) -> int | None:
    """The session id of a live (not zombie) process, from /proc; None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid pgrp session ...
    return None if fields[0] == "Z" else int(fields[3])


def session_members(sessions: set[int]) -> list[int]:
    """Every live process whose session is one of ``sessions`` (Linux: read from /proc)."""
    if not Path("/proc/self/stat").exists():
        return []
    pids = (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return [pid for pid in pids if _session_of(pid) in sessions]


_PR_SET_PDEATHSIG = 1


@functools.cache
def _prctl() -> Callable[..., int]:
    return ctypes.CDLL(None, use_errno=True).prctl


def _dying_with_this_process(signum: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` giving the child ``signum`` when this process ends, however it ends (Linux's
    parent-death signal); None elsewhere, and off the main thread: Linux sends it when the
    *thread* that started the child ends."""
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    prctl, parent = _prctl(), os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # this process ended before the line above took effect
            os._exit(1)

    return preexec


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


class Process:
    """A command started as the leader of a session of its own, everything it prints in ``log``.

    Started from the main thread on Linux, it gets ``stop_signal`` when this process ends, even
    killed (a server takes the workers it started with it, as ``airflow api-server`` does).

    :param name: what it is, for messages.
    :param argv: the command.
    :param log: the file its stdout and stderr are appended to.
    :param env: its whole environment (default: this process's).
    :param cwd: its working directory (default: the log's folder, not a checkout: a build's
        ``*.egg-info`` there would make Airflow list the provider twice).
    :param user: run it as this user (and group); ``None``: as this process's.
    :param stop_signal: what asks it to stop (SIGTERM; SIGINT is Postgres' fast shutdown).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.name, self.log, self.stop_signal = name, log, stop_signal
        self._stopped: bool | None = None
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                list(argv),
                env=None if env is None else dict(env),
                cwd=cwd if cwd is not None else log.parent,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=user,
                group=user,
                preexec_fn=_dying_with_this_process(stop_signal),
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        """Everything it printed so far."""
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def exit_status(self) -> int | None:
        """Its exit status (negative: the signal that ended it) once it has exited, else None.

        The leader is left unreaped, a zombie, until :meth:`stop`: while it is, its PID cannot be
        reused, so its process group and session id still name only what it started.
        """
        if self.popen.returncode is not None:
            return self.popen.returncode
        try:
            exited = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # reaped by someone else: Popen records that as 0
            return self.popen.poll()
        if exited is None:
            return None
        killed = exited.si_code in (os.CLD_KILLED, os.CLD_DUMPED)
        return -exited.si_status if killed else exited.si_status

    def check_alive(self) -> None:
        """:raises ProcessExited: it has exited (with the tail of its output)."""
        status = self.exit_status()
        if status is not None:
            raise ProcessExited(f"{self.name} exited with {status}:\n{self.output()[-3000:]}")

    def _wait_exit(self, timeout: float) -> bool:
        """Whether it exited within ``timeout`` seconds (without reaping it)."""
        deadline = time.monotonic() + timeout
        while self.exit_status() is None:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self, timeout: float = 20.0) -> bool:
        """Stop it: ``stop_signal`` to its process group, SIGKILL to the group after ``timeout``
        seconds, then SIGKILL to every process left in its session (Airflow's task runners put
        themselves in process groups of their own); only then is the leader reaped. Idempotent.

        Nothing is signalled once the leader has been reaped (by a previous call, or by someone
        else): its PID, and with it the group and session id, may belong to another process by then.

        :returns: whether nothing of its session is left running.
        """
        if self.popen.returncode is not None:
            return self._stopped if self._stopped is not None else not session_members({self.pid})
        if self.exit_status() is None:
            _signal_group(self.pid, self.stop_signal)
            self._wait_exit(timeout)
        if self.popen.returncode is not None:  # reaped by someone else meanwhile
            return not session_members({self.pid})
        # The leader is alive or a zombie: the group and the session are ours. Its workers may
        # still be in the group after it has exited: SIGKILL reaches them.
        _signal_group(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while (left := session_members({self.pid})) and time.monotonic() < deadline:
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        if self._wait_exit(10):
            self.popen.poll()  # reaped: from here on its PID is free for reuse
            self._stopped = not left
        return not left


def wait_for_port(port: int, what: str, timeout: float = 60.0, *, process: Process | None = None) -> None:
    """Until something accepts connections on 127.0.0.1:``port``.

    :raises ProcessExited: ``process`` exited first.
    :raises TimeoutError: nothing answered in time.
    """

    def answering() -> bool:
        with socket.socket() as client:
            client.settimeout(1)
            return client.connect_ex(("127.0.0.1", port)) == 0

    wait_until(
        f"{what} on port {port}",
        answering,
        timeout,
        interval=0.1,
        alive=None if process is None else process.check_alive,
    )


class ApiServer:
    """``airflow api-server`` on a loopback port, with ``env``; a context manager.

    ``with ApiServer(env) as server:`` starts it and waits until ``/api/v2/monitor/health`` answers;
    leaving the block stops its whole process group (uvicorn's workers too). :meth:`launch` and
    :meth:`wait_healthy` do the two halves, for a caller with other work to do meanwhile.

    :param env: the whole environment of the server (``AIRFLOW_HOME`` must be migrated).
    :param workers: uvicorn workers (``--workers``); the provider's receiver runs in each.
    :param startup_timeout: seconds to wait for the health endpoint.
    :param port: the port to bind (the caller's environment may name it); default a free one, and
        another if it is taken meanwhile.
    :param log_path: where its output goes; default a temporary file, removed by :meth:`close`.
    :param airflow: the ``airflow`` script to run (default: the one beside this interpreter).
    """

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        workers: int = 1,
        startup_timeout: float = 120.0,
        port: int | None = None,
        log_path: Path | None = None,
        airflow: str = AIRFLOW,
    ) -> None:
        self.env = dict(env)
        self.workers = workers
        self.startup_timeout = startup_timeout
        self.airflow = airflow
        self.port = port or 0
        self._fixed_port = port is not None
        self._logdir = None if log_path else tempfile.TemporaryDirectory(prefix="fuse-api-server-")
        self.log_path = log_path or Path(self._logdir.name if self._logdir else ".") / "api-server.log"
        self.process: Process | None = None
        self.started = 0.0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> ApiServer:
        """Start the server without waiting for it."""
        if not self._fixed_port:
            self.port = free_port()
        self.started = time.monotonic()
        self.process = Process(
            "api-server",
            [
                *(self.airflow, "api-server", "--host", "127.0.0.1", "--port", str(self.port)),
                *("--workers", str(self.workers)),
            ],
            log=self.log_path,
            env=self.env,
        )
        return self

    def healthy(self) -> bool:
        """Whether the health endpoint answers 200 now.

        :raises OSError: it does not answer (yet).
        """
        with _LOCAL.open(self.url + HEALTH_PATH, timeout=2) as answer:
            return bool(answer.status == 200)

    def worker_pids(self) -> list[int]:
        """The PIDs of its uvicorn workers: the server's children started by multiprocessing's spawn
        (not its resource tracker); none when it is not running (Linux: read from /proc)."""
        if self.process is None:
            return []
        workers = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.process.pid and b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
                workers.append(int(entry.name))
        return sorted(workers)

    def wait_healthy(self) -> float:
        """Seconds from :meth:`launch` until the health endpoint answered 200.

        :raises ProcessExited: the server exited.
        :raises TimeoutError: it did not answer in ``startup_timeout`` seconds.
        """
        process = self.process
        assert process is not None, "launch() first"
        wait_until(
            f"the api-server on {self.url}",
            self.healthy,
            max(0.0, self.started + self.startup_timeout - time.monotonic()),
            interval=0.2,
            alive=process.check_alive,
            retry_on=(OSError, urllib.error.URLError),
        )
        return time.monotonic() - self.started

    def start(self) -> ApiServer:
        """Start the server and wait until it is healthy (a free port taken meanwhile: another try).
        Whatever ends the wait, the server is stopped before it propagates.

        :raises RuntimeError: it exited or did not become healthy in time (with its output's tail).
        """
        for attempt in range(3):
            try:
                self.launch()
                self.wait_healthy()
                return self
            except (ProcessExited, TimeoutError):
                output = self.output()
                self.stop()
                if "address already in use" in output.lower() and not self._fixed_port and attempt < 2:
                    continue
                raise RuntimeError(f"the api-server did not start:\n{output[-4000:]}") from None
            except BaseException:  # KeyboardInterrupt (SIGINT, or SIGTERM in the tests) while waiting
                self.stop()
                raise
        raise AssertionError("unreachable")

    def output(self) -> str:
        """Everything the server printed so far (stdout and stderr)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the server's session (see :meth:`Process.stop`). Idempotent."""
        process, self.process = self.process, None
        if process is not None:
            process.stop(timeout)

    def close(self) -> None:
        """Stop the server and remove its captured output (when it is in a temporary file)."""
        self.stop()
        if self._logdir is not None:
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


def asgi_post_scope(
    path: str, headers: list[tuple[bytes, bytes]], *, client_port: int = 5000
) -> dict[str, Any]:
    """The ASGI scope of an HTTP/1.1 POST to ``path`` with ``headers``, from 127.0.0.1:``client_port``
    to 127.0.0.1:8080: for calling an ASGI app straight, with no server between."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", client_port),
        "server": ("127.0.0.1", 8080),
    }


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

    :raises TimeoutError: connecting or one exchange took longer than ``timeout`` seconds.
    """
    host_port = base_url.split("://", 1)[1].rstrip("/")
    host, _, port = host_port.rpartition(":")
    answers: list[Answer | None] = [None] * len(posts)
    cursor = iter(range(len(posts)))

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)

    async def connection() -> None:
        reader, writer = await connect()
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
                        reader, writer = await connect()
                answers[index] = answer
                if close:
                    writer.close()
                    reader, writer = await connect()
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
