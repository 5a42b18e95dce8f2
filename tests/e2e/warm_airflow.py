"""`airflow` commands without paying Airflow's import on every run: a process that has imported
Airflow once forks a fresh copy of itself for each command.

Most of an ``airflow dags test`` process's time here is spent importing Airflow, FastAPI and the
execution API before the first task starts; the DAG run itself takes a fraction of it. This module
is run as a script (``python warm_airflow.py``) with the environment of an end-to-end test's
AIRFLOW_HOME. It imports what a run imports, then serves one JSON request per line on stdin:
``{"args": [...], "env": {...}, "stdout": path, "stderr": path, "timeout": seconds}``. For each it
forks; the child points its standard streams at the two files, adds ``env`` to its environment
(connections and Variables, read when a task asks for them) and runs ``airflow.__main__.main()``
exactly as the ``airflow`` console script does, ``sys.exit(main())``: its own process, its own exit
code, Python's normal shutdown. The parent answers ``{"returncode": n}`` (or ``{"timeout": true}``
after killing the child) on its original stdout.

The children start from the state Airflow is in right after import: no DAG was parsed, no task ran,
nothing was masked and no database connection was opened before the fork. Configuration
(``AIRFLOW__*``) is read at import, so a run that needs other configuration must be a process of
its own (see :meth:`WarmAirflow.run`).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

#: What ``airflow dags test`` and ``airflow tasks test`` import once they run (most of their import
#: time); a name missing from one Airflow version is skipped.
PRELOAD = (
    "airflow.__main__",
    "airflow.cli.commands.dag_command",
    "airflow.cli.commands.task_command",
    "airflow.sdk.execution_time.supervisor",
    "airflow.sdk.execution_time.task_runner",
    "airflow.api_fastapi.execution_api.app",
    "airflow.dag_processing.dagbag",
    "airflow.models.dagbag",
    "airflow.jobs.triggerer_job_runner",
    "airflow.utils.db",
    "airflow_provider_fuse.operators.fuse",
    "airflow_provider_fuse.sensors.fuse",
    "airflow_provider_fuse.triggers.fuse",
    "airflow_provider_fuse.hooks.fuse",
)


class WarmAirflow:
    """The test side: starts the warm process with ``env`` and runs commands through it, one at a time."""

    def __init__(self, env: Mapping[str, str], workdir: Path) -> None:
        self.workdir = workdir
        self._count = 0
        self._lock = threading.Lock()
        self._log = open(workdir / "warm-airflow.log", "wb")  # noqa: SIM115 - open as long as the process
        self._process = subprocess.Popen(
            [sys.executable, __file__],
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        ready = json.loads(self._process.stdout.readline() or "{}")  # type: ignore[union-attr]
        if ready != {"ready": True, "threads": 1, "pooled_connections": 0}:
            # A thread or a database connection would be copied, half alive, into every child.
            self.close()
            raise RuntimeError(f"the warm Airflow process is not fit to fork ({ready}); see {self._log.name}")

    def run(
        self, args: Sequence[str], *, env: Mapping[str, str], timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """Run ``airflow *args`` in a forked child with ``env`` added; as ``subprocess.run`` would report it.

        Raises ``subprocess.TimeoutExpired`` (after killing the child) when it runs past ``timeout``.
        """
        with self._lock:
            self._count += 1
            stdout = self.workdir / f"run-{self._count}.stdout"
            stderr = self.workdir / f"run-{self._count}.stderr"
            request = {"args": list(args), "env": dict(env), "timeout": timeout}
            request.update(stdout=str(stdout), stderr=str(stderr))
            self._process.stdin.write(json.dumps(request) + "\n")  # type: ignore[union-attr]
            self._process.stdin.flush()  # type: ignore[union-attr]
            line = self._process.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"the warm Airflow process died; see {self.workdir / 'warm-airflow.log'}")
        answer = json.loads(line)
        out = stdout.read_text(errors="replace")
        err = stderr.read_text(errors="replace")
        stdout.unlink()
        stderr.unlink()
        command = ["airflow", *args]
        if answer.get("timeout"):
            raise subprocess.TimeoutExpired(command, timeout, output=out, stderr=err)
        return subprocess.CompletedProcess(command, answer["returncode"], out, err)

    def close(self) -> None:
        if self._process.stdin:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout:
            self._process.stdout.close()
        self._log.close()


# --- The warm process ------------------------------------------------------------------------------


def _preload() -> None:
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    _build_the_execution_api()


def _build_the_execution_api() -> None:
    """Build the in-process execution API (FastAPI + Cadwyn's versioned routes) that every task run
    talks to: most of a cold run's CPU time. Airflow caches it per process (``in_process_api_server``)
    and starts its event loop thread only on first use, so each child starts it from this copy."""
    try:
        from airflow.sdk.execution_time.supervisor import in_process_api_server
    except ImportError:
        return
    app = in_process_api_server().app
    initialize = getattr(app, "_cadwyn_initialize", None)  # otherwise done on the first request
    if initialize is not None and not getattr(app, "_cadwyn_initialized", True):
        initialize()


def _wait(pid: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return {"returncode": os.waitstatus_to_exitcode(status)}
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return {"timeout": True}
        time.sleep(0.02)


def _serve(requests: IO[str], answers: IO[str]) -> dict[str, Any] | None:
    """Fork once per request; return the request in the child (which then runs it), None at EOF."""
    for line in requests:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.setpgid(0, 0)  # a group of its own, so a timeout kills whatever it started
            requests.close()
            answers.close()
            return request
        # Also here, so that a timeout cannot come before the child's own call; it fails harmlessly
        # when the child is already in its group, or already gone.
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)
        answers.write(json.dumps(_wait(pid, request["timeout"])) + "\n")
        answers.flush()
    return None


def _become(request: dict[str, Any]) -> None:
    """In the child: the standard streams and the environment of the command the request asks for."""
    stdin = os.open(os.devnull, os.O_RDONLY)
    os.dup2(stdin, 0)
    os.close(stdin)
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    os.environ.update(request["env"])
    sys.argv = [str(Path(sys.executable).parent / "airflow"), *request["args"]]


if __name__ == "__main__":
    sys.path[0] = str(Path(sys.executable).parent)  # as for the `airflow` script, not this folder
    # Answers go to the original stdout; from here on fd 1 is the log, so nothing printed while
    # importing can be read as an answer.
    answers = os.fdopen(os.dup(1), "w")
    requests = os.fdopen(os.dup(0), "r")
    os.dup2(2, 1)
    _preload()
    # Objects made so far live on in every child: keep the collector off them, so that children do
    # not write to (and so copy) every page of this process's heap.
    gc.freeze()
    from airflow import settings

    pooled = settings.engine.pool.checkedin() + settings.engine.pool.checkedout()
    ready = {"ready": True, "threads": threading.active_count(), "pooled_connections": pooled}
    answers.write(json.dumps(ready) + "\n")
    answers.flush()
    request = _serve(requests, answers)
    if request is not None:
        _become(request)
        from airflow.__main__ import main

        sys.exit(main())
