"""The process harness (``scripts/harness.py``): what it starts is stopped, however the run ends, and
it signals nothing that may no longer be its own."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import harness
from harness import Post, Process, ProcessExited, post_many_async

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process, from /proc; None when there is none with that PID."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], fields[19]


def _running(pids: dict[int, str]) -> list[int]:
    """Those of ``pids`` (PID -> start time) still running (not a zombie, not a reused PID)."""
    running = []
    for pid, started in pids.items():
        stat = _stat(pid)
        if stat is not None and stat[0] != "Z" and stat[1] == started:
            running.append(pid)
    return running


def _exited(process: Process) -> None:
    with pytest.raises(ProcessExited):
        harness.wait_until("the leader to exit", lambda: process.check_alive(), 30, interval=0.05)


def test_an_exited_leader_stays_unreaped_until_stop_so_its_pid_cannot_be_reused(tmp_path: Path) -> None:
    process = Process("true", ["true"], log=tmp_path / "true.log")
    try:
        _exited(process)
        assert _stat(process.pid) == ("Z", _stat(process.pid)[1])  # type: ignore[index]
        with pytest.raises(ProcessExited, match="exited with 0"):
            process.check_alive()
    finally:
        assert process.stop(5)
    assert process.popen.returncode == 0
    assert _stat(process.pid) is None or _stat(process.pid)[0] != "Z"


def test_stop_signals_nothing_once_the_leader_has_been_reaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    process = Process("true", ["true"], log=tmp_path / "true.log")
    process.popen.wait(30)  # reaped by someone else: the PID may be another process's by now
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(harness.os, "killpg", lambda pid, signum: sent.append((pid, signum)))
    monkeypatch.setattr(harness.os, "kill", lambda pid, signum: sent.append((pid, signum)))
    process.stop(5)
    process.stop(5)
    assert sent == []


def test_stop_after_a_stop_signals_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    process = Process("sleep", ["sleep", "300"], log=tmp_path / "sleep.log")
    assert process.stop(5)
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(harness.os, "killpg", lambda pid, signum: sent.append((pid, signum)))
    monkeypatch.setattr(harness.os, "kill", lambda pid, signum: sent.append((pid, signum)))
    assert process.stop(5)
    assert sent == []


def test_stop_ends_what_an_exited_leader_left_in_its_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "worker.pid"
    process = Process(
        "leader", ["sh", "-c", f"sleep 300 & echo $! > {pid_file}; exit 0"], log=tmp_path / "leader.log"
    )
    worker = 0
    try:
        _exited(process)
        worker = int(harness.wait_until("the worker's PID", pid_file.read_text, 10, interval=0.05))
        started = _stat(worker)
        assert started is not None
        assert process.stop(5)
        assert _running({worker: started[1]}) == []
    finally:
        if worker and _stat(worker) is not None:
            os.kill(worker, signal.SIGKILL)


def test_start_stops_the_server_whatever_ends_the_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    launched: list[Process] = []

    def interrupted(self: harness.ApiServer) -> float:
        assert self.process is not None
        launched.append(self.process)
        raise KeyboardInterrupt

    monkeypatch.setattr(harness.ApiServer, "wait_healthy", interrupted)
    fake = tmp_path / "airflow"
    fake.write_text("#!/bin/sh\nexec sleep 300\n")
    fake.chmod(0o755)
    server = harness.ApiServer({}, airflow=str(fake), log_path=tmp_path / "api-server.log")
    with pytest.raises(KeyboardInterrupt):
        server.start()
    (process,) = launched
    try:
        assert server.process is None
        assert process.popen.returncode is not None
    finally:
        process.stop(5)


def test_post_many_bounds_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(*args: object, **kwargs: object) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    monkeypatch.setattr(harness.asyncio, "open_connection", never)
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        asyncio.run(
            asyncio.wait_for(post_many_async("http://127.0.0.1:9", [Post("/", b"")], timeout=0.2), 10)
        )
    assert time.monotonic() - began < 5


# An ``airflow`` stand-in: ``api-server`` starts a worker (in its process group, as uvicorn's are),
# takes it down on SIGTERM, and answers the health endpoint unless FAKE_UNHEALTHY is set.
FAKE_AIRFLOW = """\
import http.server, os, signal, subprocess, sys, time
port = int(sys.argv[sys.argv.index("--port") + 1])
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
with open(os.environ["FAKE_PIDS"] + ".new", "w") as pids:
    pids.write(f"{os.getpid()} {worker.pid}")
os.rename(os.environ["FAKE_PIDS"] + ".new", os.environ["FAKE_PIDS"])

def stop(signum, frame):
    worker.terminate()
    worker.wait(10)
    os._exit(0)

signal.signal(signal.SIGTERM, stop)
if os.environ.get("FAKE_UNHEALTHY"):
    time.sleep(600)

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""

# start() outside the try: what start() itself leaves behind when it is interrupted shows.
INNER_TEST = """\
import os, time
from pathlib import Path
from harness import ApiServer

def test_serving():
    server = ApiServer(dict(os.environ), airflow=os.environ["FAKE_AIRFLOW"], startup_timeout=120).start()
    try:
        Path(os.environ["FAKE_READY"]).write_text("")
        time.sleep(300)
    finally:
        server.close()
"""


# torn_down: stopped by pytest's teardown, before pytest exits; else by the parent-death signal.
@pytest.mark.parametrize(
    ("signum", "when", "pytest_args", "torn_down"),
    [
        pytest.param(signal.SIGTERM, "healthy", (), True, id="SIGTERM-while-serving"),
        pytest.param(signal.SIGINT, "starting", (), True, id="SIGINT-while-starting"),
        pytest.param(signal.SIGTERM, "starting", (), True, id="SIGTERM-while-starting"),
        pytest.param(signal.SIGKILL, "healthy", (), False, id="SIGKILL-while-serving"),
        pytest.param(signal.SIGTERM, "healthy", ("-n", "1"), False, id="SIGTERM-xdist-while-serving"),
    ],
)
def test_a_stopped_pytest_leaves_no_process_of_the_harness_running(
    tmp_path: Path, signum: int, when: str, pytest_args: tuple[str, ...], torn_down: bool
) -> None:
    fake = tmp_path / "airflow"
    fake.write_text(f"#!{sys.executable}\n{FAKE_AIRFLOW}")
    fake.chmod(0o755)
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "test_inner.py").write_text(textwrap.dedent(INNER_TEST))
    pids_file, ready = tmp_path / "pids", tmp_path / "ready"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "scripts"), str(ROOT)]),
        "FAKE_AIRFLOW": str(fake),
        "FAKE_PIDS": str(pids_file),
        "FAKE_READY": str(ready),
        **({"FAKE_UNHEALTHY": "1"} if when == "starting" else {}),
    }
    command = [sys.executable, "-m", "pytest", str(tmp_path / "inner"), "-q", "-p", "no:cacheprovider"]
    command += ["-p", "tests.conftest", "-c", os.devnull, "--rootdir", str(tmp_path), *pytest_args]
    log = (tmp_path / "pytest.log").open("wb")
    inner = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
    )
    started: dict[int, str] = {}
    try:
        harness.wait_until("the server's PIDs", lambda: pids_file.exists(), 120, interval=0.05)
        for pid in map(int, pids_file.read_text().split()):
            stat = _stat(pid)
            assert stat is not None
            started[pid] = stat[1]
        if when == "healthy":
            harness.wait_until("the server to be healthy", ready.exists, 60, interval=0.05)
        else:
            time.sleep(0.5)  # well inside the wait for health
        inner.send_signal(signum)
        inner.wait(60)
        assert not ready.exists() or when == "healthy"
        if torn_down:
            assert _running(started) == [], "running after pytest exited"
        left = harness.wait_until(
            "every process to end", lambda: not _running(started) or None, 15, interval=0.1
        )
        assert left
    except TimeoutError:
        output = (tmp_path / "pytest.log").read_text(errors="replace")[-3000:]
        raise AssertionError(f"left running: {_running(started)}; pytest printed:\n{output}") from None
    finally:
        log.close()
        for pid in [*_running(started), *([] if inner.poll() is not None else [inner.pid])]:
            os.kill(pid, signal.SIGKILL)
        inner.wait(10)
