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
- :class:`AirflowServices`: ``airflow scheduler``, ``triggerer`` and ``dag-processor`` beside an
  :class:`ApiServer`, LocalExecutor on the home's own database: runs triggered through the REST API.
- :class:`AirflowApi`: Airflow's REST API as a user logged in with a password (``POST /auth/token``),
  and the human-in-the-loop questions through it: wait for a task's question, answer it, the
  Required Actions page's address.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from types import TracebackType

__all__ = [
    "AIRFLOW",
    "AirflowApi",
    "AirflowServices",
    "Answer",
    "ApiRefused",
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


class AirflowServices:
    """The components that run DAGs by themselves: ``airflow scheduler`` (LocalExecutor),
    ``triggerer`` and ``dag-processor``, each a :class:`Process` logging to ``logs/<name>.log``;
    a context manager that stops them all.

    With an :class:`ApiServer` on the same home, a run triggered through the REST API is scheduled,
    run, deferred to the triggerer and resumed as in a deployment, on one machine. The caller's
    ``env`` must name the api-server's execution API
    (``AIRFLOW__CORE__EXECUTION_API_SERVER_URL``) and the JWT secret the api-server checks
    (``AIRFLOW__API_AUTH__JWT_SECRET``); :meth:`environment` adds them.

    :param env: the whole environment of every component (``AIRFLOW_HOME`` migrated, not shared
        with another Airflow that runs DAGs: a scheduler takes every running run of its database).
    :param logs: the folder the logs go to.
    """

    COMPONENTS = ("scheduler", "triggerer", "dag-processor")

    def __init__(self, env: Mapping[str, str], logs: Path, *, airflow: str = AIRFLOW) -> None:
        self.env, self.logs, self.airflow = dict(env), logs, airflow
        self.processes: list[Process] = []

    @staticmethod
    def environment(env: Mapping[str, str], api_port: int, jwt_secret: str) -> dict[str, str]:
        """``env`` with what the components need to run tasks through the api-server on
        ``api_port``: LocalExecutor, the execution API's address, one JWT secret for every
        component, DAGs not paused, and a question's deadline checked every second."""
        return {
            **env,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "1",
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        }

    def start(self) -> AirflowServices:
        """Start every component (without waiting: the REST API tells when a DAG is parsed)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        for name in self.COMPONENTS:
            self.processes.append(
                Process(name, [self.airflow, name], log=self.logs / f"{name}.log", env=self.env)
            )
        return self

    def check_alive(self) -> None:
        """:raises ProcessExited: a component has exited."""
        for process in self.processes:
            process.check_alive()

    def stop(self) -> bool:
        """Stop every component (see :meth:`Process.stop`); whether nothing of them is left."""
        stopped = [process.stop() for process in self.processes]
        self.processes = []
        return all(stopped)

    def __enter__(self) -> AirflowServices:
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


class ApiRefused(RuntimeError):
    """Airflow's REST API answered a request with an error status (kept in :attr:`status`)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _quoted(value: str) -> str:
    return urllib.parse.quote(value, safe="")


class AirflowApi:
    """Airflow's REST API (``/api/v2``) as ``username``, logged in with a password: JSON in and out.

    :meth:`login` asks ``POST /auth/token`` for a token (the simple auth manager's users, and any
    auth manager that serves that route), sent with every later request. The human-in-the-loop
    methods name a task instance by DAG id, run id, task id and map index (``-1``: not mapped).

    :param base_url: the api-server, ``http://127.0.0.1:<port>``.
    :param timeout: seconds for one request.
    """

    def __init__(self, base_url: str, username: str, password: str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._password = password
        self.timeout = timeout
        self._token = ""

    def login(self) -> AirflowApi:
        """Get a token for the user.

        :raises ApiRefused: the credentials were refused.
        """
        body = {"username": self.username, "password": self._password}
        self._token = str(self._send("POST", "/auth/token", body)["access_token"])
        return self

    @property
    def token(self) -> str:
        """The token :meth:`login` got (for a browser's cookie, say)."""
        return self._token

    def call(self, method: str, path: str, body: object = None, **params: object) -> Any:
        """``method path?params`` with ``body`` as JSON; the answer's JSON (None when it has no body).

        :raises ApiRefused: the API answered 400 or more.
        :raises OSError: it did not answer.
        """
        if params:
            path += "?" + urllib.parse.urlencode({key: str(value) for key, value in params.items()})
        return self._send(method, path, body)

    def _send(self, method: str, path: str, body: object) -> Any:
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
        try:
            with _LOCAL.open(request, timeout=self.timeout) as answer:
                content = answer.read()
        except urllib.error.HTTPError as error:
            text = error.read().decode("utf-8", errors="replace")[:1000]
            raise ApiRefused(f"{method} {path}: {error.code} {text}", error.code) from None
        return json.loads(content) if content else None

    # --- DAG runs ---------------------------------------------------------------------------------

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """Start a run of ``dag_id`` now (no logical date, as the UI's *Trigger* does); its run id."""
        body = {"logical_date": None, "conf": dict(conf or {})}
        return str(self.call("POST", f"/api/v2/dags/{_quoted(dag_id)}/dagRuns", body)["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.call("GET", f"/api/v2/dags/{_quoted(dag_id)}/dagRuns/{_quoted(run_id)}")["state"])

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float = 300.0, *, alive: Callable[[], None] | None = None
    ) -> str:
        """Until the run has finished; its state (``success`` or ``failed``)."""

        def finished() -> str | None:
            state = self.run_state(dag_id, run_id)
            return state if state in ("success", "failed") else None

        return wait_until(f"{dag_id} run {run_id} to finish", finished, timeout, alive=alive)

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        """The run's task instances (not mapped), by task id."""
        path = f"/api/v2/dags/{_quoted(dag_id)}/dagRuns/{_quoted(run_id)}/taskInstances"
        return {ti["task_id"]: ti for ti in self.call("GET", path)["task_instances"]}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """A task's XCom value, deserialized; None when it pushed none."""
        path = (
            f"/api/v2/dags/{_quoted(dag_id)}/dagRuns/{_quoted(run_id)}/taskInstances/{_quoted(task_id)}"
            f"/xcomEntries/{_quoted(key)}"
        )
        try:
            return self.call("GET", path, deserialize="true", stringify="false")["value"]
        except ApiRefused as refused:
            if refused.status == 404:
                return None
            raise

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        """One try's log, every event's text on a line of its own."""
        path = (
            f"/api/v2/dags/{_quoted(dag_id)}/dagRuns/{_quoted(run_id)}/taskInstances/{_quoted(task_id)}"
            f"/logs/{try_number}"
        )
        content = self.call("GET", path, full_content="true")["content"]
        if isinstance(content, str):
            return content
        return "\n".join(json.dumps(event) if not isinstance(event, str) else event for event in content)

    # --- Human in the loop ------------------------------------------------------------------------

    @staticmethod
    def hitl_path(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
        """The REST path of one task instance's human-in-the-loop detail (GET reads, PATCH answers)."""
        return (
            f"/api/v2/dags/{_quoted(dag_id)}/dagRuns/{_quoted(run_id)}/taskInstances/"
            f"{_quoted(task_id)}/{map_index}/hitlDetails"
        )

    def questions(self, dag_id: str = "~") -> list[dict[str, Any]]:
        """Every human-in-the-loop detail of ``dag_id``'s runs (``~``: of every DAG), answered or not,
        newest first; each has ``task_instance`` (``dag_id``, ``dag_run_id``, ``task_id``,
        ``map_index``, ``state``) beside the question and its response."""
        path = f"/api/v2/dags/{_quoted(dag_id)}/dagRuns/~/hitlDetails"
        answer = self.call("GET", path, order_by="-created_at", limit=100)
        return list(answer["hitl_details"])

    def wait_for_question(
        self,
        dag_id: str,
        task_id: str,
        *,
        run_id: str | None = None,
        since: datetime | None = None,
        timeout: float = 120.0,
        subject_starts: str = "",
        alive: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Until ``task_id`` of ``dag_id`` (of run ``run_id``, or of any run) has an unanswered
        question (asked at ``since`` or later, whose subject starts with ``subject_starts``); that
        question's detail.

        :param since: an aware datetime; questions asked before it (by earlier runs) are passed over.
        :param alive: called before each poll; it raises to end the wait (a run that ended).
        :raises TimeoutError: none came in ``timeout`` seconds.
        """

        def pending() -> dict[str, Any] | None:
            for detail in self.questions(dag_id):
                ti = detail["task_instance"]
                asked = datetime.fromisoformat(detail["created_at"].replace("Z", "+00:00"))
                if (
                    ti["task_id"] == task_id
                    and run_id in (None, ti["dag_run_id"])
                    and (since is None or asked >= since)
                    and not detail["response_received"]
                    and detail["subject"].startswith(subject_starts)
                ):
                    return detail
            return None

        what = f"a question from {dag_id}.{task_id}"
        what += f" starting {subject_starts!r}" if subject_starts else ""
        return wait_until(what, pending, timeout, interval=0.5, alive=alive, retry_on=(OSError, ApiRefused))

    def answer(
        self,
        question: Mapping[str, Any],
        chosen_options: Sequence[str],
        params_input: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Answer ``question`` (a detail from :meth:`wait_for_question`) as Required Actions would:
        ``PATCH`` its detail with the chosen options; the API's record of the response.

        :raises ApiRefused: the API refused it (403: not an assigned respondent; 409: answered already).
        """
        ti = question["task_instance"]
        path = self.hitl_path(ti["dag_id"], ti["dag_run_id"], ti["task_id"], ti["map_index"])
        body = {"chosen_options": list(chosen_options), "params_input": dict(params_input or {})}
        return dict(self.call("PATCH", path, body))

    def required_actions_url(self, question: Mapping[str, Any]) -> str:
        """The address of the UI page where a person answers ``question`` (the task instance's
        Required Actions tab)."""
        ti = question["task_instance"]
        return (
            f"{self.base_url}/dags/{_quoted(ti['dag_id'])}/runs/{_quoted(ti['dag_run_id'])}/tasks/"
            f"{_quoted(ti['task_id'])}/required_actions"
            + (f"?map_index={ti['map_index']}" if ti["map_index"] != -1 else "")
        )
