"""`make test-deployment`: the examples on the topology production runs, on one machine, on loopback.

Postgres (metadata database), Redis (Celery broker), moto's S3 server (object storage for the CSVs,
used through the Amazon provider's ``s3://`` paths), the Fuse sandbox, and Airflow's api-server,
scheduler, dag-processor, triggerer and two Celery workers. Each worker runs in its own mount and
UTS namespace with a private ``/tmp`` and its own host name, so the two cannot see each other's
local files, as two machines could not. Everything binds 127.0.0.1 on free ports.

Through the REST API it then runs the examples and checks what a platform team would check (see
``docs/deployment.md``): every run's outcome, what the sandbox received, what is left in storage and
on the workers' disks, and that no phone number and no developer key reached a log, XCom, a
rendered field, a run's conf or the event log.

Run it inside the virtualenv the Makefile builds (``.venv-deployment``: the built wheel, Airflow
with the celery, postgres and amazon extras, celery 5.6.3, moto). It installs Debian's postgresql
and redis-server when they are missing (that, the private mounts and running Postgres as its own
user need root). Every process it starts is stopped by its PID (and process group) on the way out,
whatever happened; every wait is bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import requests

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
AIRFLOW = str(BIN / "airflow")
BUCKET = "fuse-exports"
EXPORT_BASE = f"s3://aws_default@{BUCKET}/exports"
BULK = "example_fuse_bulk_queue"
SINGLE = "example_fuse_queue_call"
STOP = "example_fuse_stop_campaign"
RESULTS = "example_fuse_campaign_results"
# The database the results receiver writes call outcomes to: a database of its own beside Airflow's.
RESULTS_DATABASE = "fuse_results"
# The results table (the [fuse] results_table default), created by the harness as the DBA with
# ResultsTable.ddl(), and the least-privilege role every component's results connection logs in as:
# LOGIN, a password (checked: scram-sha-256 on loopback), SELECT and INSERT on the table, nothing else.
RESULTS_TABLE = "fuse_call_results"
RESULTS_ROLE = "fuse_results"
# The api-server's uvicorn workers: the receiver runs in each, so a part's bound must hold across them.
# On the 2-CPU development machine the api-server answered after 9 s with 1 worker, 32 s with 4 and
# 80 s with 6 (about 240 MiB each); the harness waits longer than that for the DAGs to be parsed.
API_WORKERS = 4
# A burst through the receiver: distinct outcomes posted at once under one token of a small part.
BURST_ROWS = 20
BURST_OUTCOMES = 200
BURST_THREADS = 32
# The locked database: a superuser holds LOCK TABLE ... IN ACCESS EXCLUSIVE MODE while callbacks arrive
# in waves, one every LOCK_WAVE_EVERY seconds, and until every one is answered (about 15 s in all).
LOCK_WAVES = 3
LOCK_WAVE = 4
LOCK_WAVE_EVERY = 5.0
# What a 503's time may exceed the receiver's STORE_TIMEOUT by on a loaded 2-CPU machine (HTTP,
# scheduling); the e2e tests allow 4 s.
SLACK = 3.0
RESULTS_SENSOR = "wait_for_outcomes"
# The campaign-results example's numbers: the sandbox answers every number but the one ending in 9.
RESULTS_NUMBERS = ("6175550100", "16175550104", "tel:+16175550109")
# The phone numbers the examples dial (555-01xx: reserved for fiction). The bulk example's are
# written by its export task; the single call's comes from the worker's environment, as a secrets
# backend would give it. None of them may appear anywhere Airflow keeps text.
BULK_NUMBERS = ("6175550100", "6175550101", "6175550102", "8005550199")
SINGLE_CONTACT = {"phone_number": "16175550142", "first_name": "Grace"}
BULK_RUNS = 6
UNKNOWN_DEPLOYMENT = 999

T = TypeVar("T")


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Failed(Exception):
    """A check of the deployment failed."""


class ApiError(Failed):
    """Airflow's REST API answered with an error status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# -- processes --------------------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    stop_signal: int = signal.SIGTERM


@dataclass
class Processes:
    """Every process the harness started, stopped by PID and process group in reverse order."""

    logs: Path
    started: list[Process] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> Process:
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                user=user,
                group=user,
            )
        process = Process(name, popen, log, stop_signal)
        self.started.append(process)
        say(f"started {name} (pid {popen.pid})")
        return process

    def check_alive(self) -> None:
        for process in self.started:
            if process.popen.poll() is not None:
                tail = process.log.read_text(errors="replace")[-3000:]
                raise Failed(f"{process.name} exited with {process.popen.returncode}:\n{tail}")

    def tails(self, lines: int = 25) -> str:
        """The last lines of every component's log, for a failure in CI (where nothing else is kept)."""
        parts = []
        for process in self.started:
            text = process.log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"---- {process.name} (last {len(text)} lines of {process.log})\n" + "\n".join(text))
        return "\n".join(parts)

    def stop_all(self) -> list[str]:
        """Stop everything started, newest first; the names of any whose processes outlived SIGKILL.

        Each process was started as the leader of a session of its own. Its process group is
        signalled first (a graceful stop, then SIGKILL); then every process left in its session is
        killed too: Airflow's task runners put themselves in process groups of their own, which a
        signal to the worker's group does not reach.
        """
        for process in reversed(self.started):
            _signal_group(process.popen.pid, process.stop_signal)
            try:
                process.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                say(f"{process.name} did not stop in 30 s: killing it")
            _signal_group(process.popen.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=10)
        sessions = {process.popen.pid: process.name for process in self.started}
        for pid in session_members(set(sessions)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        left = session_members(set(sessions))
        alive = sorted({sessions[sid] for sid in (session_of(pid) for pid in left) if sid in sessions})
        self.started.clear()
        return alive


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def session_of(pid: int) -> int | None:
    """The session id of a live (not zombie) process, from /proc; None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid pgrp session ...
    return None if fields[0] == "Z" else int(fields[3])


def api_workers(pid: int) -> list[int]:
    """The api-server's uvicorn worker processes: its children started by multiprocessing's spawn
    (not its resource tracker)."""
    workers = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            workers.append(int(entry.name))
    return sorted(workers)


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU seconds a live process has used, from /proc; None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def session_members(sessions: set[int]) -> list[int]:
    """Every live process whose session is one of ``sessions``."""
    pids = (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return [pid for pid in pids if session_of(pid) in sessions]


#: The processes a wait also watches: a component that died fails the wait at once.
WATCHED: Processes | None = None


def wait_for(what: str, check: Callable[[], T | None], timeout: float, interval: float = 1.0) -> T:
    """Poll ``check`` until it returns something other than None/False, at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if WATCHED is not None:
            WATCHED.check_alive()
        try:
            result = check()
        except (requests.RequestException, OSError) as error:
            last_error, result = error, None
        except ApiError as error:
            if error.status < 500:
                raise
            last_error, result = error, None  # the api-server is still starting or busy
        if result:
            return result
        time.sleep(interval)
    raise Failed(
        f"timed out after {timeout:.0f} s waiting for {what}" + (f" ({last_error})" if last_error else "")
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, what: str, timeout: float = 60) -> None:
    def answering() -> bool:
        with socket.socket() as client:
            client.settimeout(1)
            return client.connect_ex(("127.0.0.1", port)) == 0

    wait_for(f"{what} on port {port}", answering, timeout, interval=0.3)


# -- system services --------------------------------------------------------------------------------


def postgres_bin() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), reverse=True)
    if not candidates:
        raise Failed("no PostgreSQL server found under /usr/lib/postgresql")
    return candidates[0].parent


def ensure_system_packages() -> None:
    """Debian's postgresql and redis-server, installed when missing (a fresh CI machine)."""
    missing = []
    if not list(Path("/usr/lib/postgresql").glob("*/bin/postgres")):
        missing.append("postgresql")
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    if not missing:
        return
    if os.geteuid() != 0:
        raise Failed(f"missing {', '.join(missing)}: install them (apt-get install {' '.join(missing)})")
    say(f"installing {', '.join(missing)} with apt-get")
    apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=apt_env, timeout=600)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        check=True,
        env=apt_env,
        timeout=900,
    )


def start_postgres(processes: Processes, home: Path) -> str:
    """A Postgres cluster of the harness's own in ``home`` (trust auth on loopback); its SQLAlchemy URL."""
    pg = postgres_bin()
    data, sockets = home / "data", home / "sockets"
    data.mkdir()
    sockets.mkdir()
    user = "postgres" if os.geteuid() == 0 else None  # Postgres refuses to run as root
    if user:
        shutil.chown(data, user, user)
        shutil.chown(sockets, user, user)
    initdb = subprocess.run(
        [str(pg / "initdb"), "-D", str(data), "-U", "airflow", "-A", "trust", "--no-sync", "-E", "UTF8"],
        user=user,
        group=user,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if initdb.returncode != 0:
        raise Failed(f"initdb failed: {initdb.stdout[-2000:]}{initdb.stderr[-2000:]}")
    # Trust on loopback for the harness's own users, but the results role must give its password:
    # the first matching line wins.
    hba = data / "pg_hba.conf"
    hba.write_text(f"host all {RESULTS_ROLE} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    port = free_port()
    processes.start(
        "postgres",
        [
            str(pg / "postgres"),
            "-D",
            str(data),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-k",
            str(sockets),
            "-c",
            "fsync=off",
            "-c",
            "max_connections=200",
        ],
        user=user,
        stop_signal=signal.SIGINT,  # fast shutdown
    )
    wait_for_port(port, "postgres")
    createdb = [str(pg / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "airflow", "airflow"]

    def created() -> bool:
        return subprocess.run(createdb, capture_output=True, timeout=30).returncode == 0

    wait_for("the airflow database", created, 30)
    subprocess.run([*createdb[:-1], RESULTS_DATABASE], capture_output=True, timeout=30, check=True)
    return f"postgresql+psycopg2://airflow@127.0.0.1:{port}/airflow"


def results_connection(database: str, password: str) -> str:
    """The results connection's URI: the least-privilege role on the harness's results database."""
    port = urllib.parse.urlsplit(database).port
    return f"postgres://{RESULTS_ROLE}:{password}@127.0.0.1:{port}/{RESULTS_DATABASE}"


def results_db(deployment: Deployment, *, autocommit: bool = True) -> Any:
    """A connection to the results database as the DBA (the superuser ``airflow``), not the role."""
    import psycopg2

    port = urllib.parse.urlsplit(deployment.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).port
    db = psycopg2.connect(
        host="127.0.0.1", port=port, user="airflow", dbname=RESULTS_DATABASE, connect_timeout=10
    )
    db.autocommit = autocommit
    return db


@dataclass(frozen=True)
class ReceiverFacts:
    """What the installed provider says of its results table and receiver (read in a child process,
    with the deployment's environment: importing it imports Airflow, which the harness does not)."""

    ddl: str
    store_timeout: float


def read_receiver_facts(deployment: Deployment) -> ReceiverFacts:
    code = (
        "import json, sys\n"
        "from airflow_provider_fuse.results import receiver\n"
        "from airflow_provider_fuse.results.table import ResultsTable\n"
        "print(json.dumps({'ddl': ResultsTable.ddl(sys.argv[1]), 'store_timeout': receiver.STORE_TIMEOUT}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, RESULTS_TABLE],
        env=deployment.env,
        cwd=deployment.run,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if done.returncode != 0:
        raise Failed(f"cannot read ResultsTable.ddl() from the installed provider:\n{done.stderr[-3000:]}")
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    return ReceiverFacts(str(facts["ddl"]), float(facts["store_timeout"]))


def prepare_results_database(deployment: Deployment, facts: ReceiverFacts) -> None:
    """As the DBA: the results table from ``ResultsTable.ddl()``, and the role with only ``SELECT,
    INSERT`` on it (what docs/results.md gives a DBA), before any Airflow component starts."""
    password = urllib.parse.urlsplit(deployment.env["AIRFLOW_CONN_FUSE_RESULTS_DEFAULT"]).password
    with contextlib.closing(results_db(deployment)) as db, db.cursor() as cursor:
        cursor.execute(facts.ddl)
        cursor.execute(f"CREATE ROLE {RESULTS_ROLE} LOGIN PASSWORD %s", (password,))
        cursor.execute(f"GRANT SELECT, INSERT ON {RESULTS_TABLE} TO {RESULTS_ROLE}")
    say(f"results table {RESULTS_TABLE} created by the DBA; role {RESULTS_ROLE}: SELECT, INSERT on it only")


def start_redis(processes: Processes, run: Path) -> str:
    port = free_port()
    (run / "redis").mkdir()
    processes.start(
        "redis",
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(run / "redis"),
        ],
    )
    wait_for_port(port, "redis")
    return f"redis://127.0.0.1:{port}/0"


def start_s3(processes: Processes) -> str:
    port = free_port()
    processes.start("s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)])
    wait_for_port(port, "moto's S3 server")
    return f"http://127.0.0.1:{port}"


# -- Airflow ------------------------------------------------------------------------------------------


@dataclass
class Deployment:
    run: Path
    env: dict[str, str]
    api: str
    admin_password: str
    worker_tmps: dict[str, Path]
    token: str = ""
    api_pid: int = 0
    api_startup: float = 0.0
    # What the harness itself sent the receiver: tokens and phone numbers that must reach no log.
    harness_tokens: list[str] = field(default_factory=list)
    harness_numbers: dict[str, str] = field(default_factory=dict)

    # REST API ---------------------------------------------------------------------------------------
    def login(self) -> None:
        answer = requests.post(
            f"{self.api}/auth/token", json={"username": "admin", "password": self.admin_password}, timeout=30
        )
        answer.raise_for_status()
        self.token = answer.json()["access_token"]

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        answer = requests.request(method, f"{self.api}{path}", headers=headers, timeout=60, **kwargs)
        if answer.status_code >= 400:
            raise ApiError(f"{method} {path}: {answer.status_code} {answer.text[:500]}", answer.status_code)
        return answer.json() if answer.content else None

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        body = {"logical_date": None, "conf": conf or {}}
        return str(self.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}")["state"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        def finished() -> str | None:
            state = self.run_state(dag_id, run_id)
            return state if state in ("success", "failed") else None

        return wait_for(f"{dag_id} run {run_id} to finish", finished, timeout, interval=2)

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        answer = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances")
        return {ti["task_id"]: ti for ti in answer["task_instances"]}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}/xcomEntries/{key}"
        return self.call("GET", path, params={"deserialize": "true", "stringify": "false"})["value"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}/logs/{try_number}"
        answer = self.call("GET", path, params={"full_content": "true"})
        return json.dumps(answer)


def quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def airflow_env(
    run: Path,
    *,
    database: str,
    broker: str,
    s3: str,
    api_port: int,
    fuse_connection: str,
    password: str,
    export_base: str,
    signing_key: str,
    results_password: str,
) -> dict[str, str]:
    from cryptography.fernet import Fernet

    home = run / "airflow-home"
    (home / "dags").mkdir(parents=True)
    for dag_file in (ROOT / "example_dags").glob("*.py"):
        shutil.copy(dag_file, home / "dags")
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"admin": password}))
    aws = {
        "conn_type": "aws",
        "login": "fuse-deployment-test",
        "password": secrets.token_urlsafe(16),
        "extra": {"endpoint_url": s3, "region_name": "us-east-1"},
    }
    keep = ("PATH", "LANG", "LC_ALL", "HOME", "TERM", "USER", "LOGNAME")
    env = {key: value for key, value in os.environ.items() if key in keep}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "socket.gethostname",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
            "AIRFLOW__CELERY__BROKER_URL": broker,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + database.replace("+psycopg2", ""),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            # A task's supervisor waits this long for each execution-API call (Airflow's default 5 s,
            # which its docs say to raise under high load). With the api-server on 4 workers on a
            # 2-CPU machine shared with other work, every api-server worker once stopped answering
            # for 32 s while six bulk runs started: the supervisor's retried "run" call was then
            # refused (400, the first one had started the task) and the task failed.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            # The connections and Variables come from the environment of every component, as a
            # secrets backend would give them: none of it is written to the metadata database.
            "AIRFLOW_CONN_FUSE_DEFAULT": fuse_connection,
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(aws),
            "AIRFLOW_VAR_FUSE_EXAMPLE_EXPORT_BASE": export_base,
            "AIRFLOW_VAR_FUSE_EXAMPLE_CONTACT": json.dumps(SINGLE_CONTACT),
            # The results receiver on the api-server: where Fuse (the sandbox) posts outcomes, the
            # key every worker signs tokens with and the api-server checks them with, the table.
            "AIRFLOW__FUSE__RESULTS_BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__FUSE__RESULTS_SIGNING_KEY": signing_key,
            "AIRFLOW__FUSE__RESULTS_TABLE": RESULTS_TABLE,
            "AIRFLOW_CONN_FUSE_RESULTS_DEFAULT": results_connection(database, results_password),
            # Only loopback: no proxy, no instance-metadata lookups by boto.
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "AWS_EC2_METADATA_DISABLED": "true",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def shared_roots() -> list[Path]:
    """Paths under /tmp that a worker must still see once its private /tmp is mounted."""
    tmp = Path("/tmp").resolve()
    roots = {Path(p).resolve() for p in (ROOT, sys.prefix, sys.base_prefix)}
    return sorted(p for p in roots if p.is_relative_to(tmp))


# Run inside the worker's new mount and UTS namespaces: its own host name, its own /tmp. Paths the
# worker needs that live under /tmp (a checkout there) are bound into the private /tmp first.
WORKER_SHELL = r"""
set -eu
hostname "$FUSE_WORKER_NAME"
for shared in $FUSE_SHARED_ROOTS; do
    inside="$FUSE_PRIVATE_TMP${shared#/tmp}"
    mkdir -p "$inside"
    mount --bind "$shared" "$inside"
done
mount --rbind "$FUSE_PRIVATE_TMP" /tmp
exec "$@"
"""


def start_airflow(processes: Processes, deployment: Deployment) -> None:
    env, api_port = deployment.env, int(deployment.env["AIRFLOW__API__PORT"])
    say("airflow db migrate")
    migrated = subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, cwd=deployment.run, capture_output=True, text=True, timeout=600
    )
    if migrated.returncode != 0:
        raise Failed(f"airflow db migrate failed:\n{migrated.stdout[-3000:]}{migrated.stderr[-3000:]}")
    cwd = deployment.run
    api_started = time.monotonic()
    api = processes.start(
        "api-server", [AIRFLOW, "api-server", "--workers", str(API_WORKERS)], env=env, cwd=cwd
    )
    processes.start("scheduler", [AIRFLOW, "scheduler"], env=env, cwd=cwd)
    processes.start("dag-processor", [AIRFLOW, "dag-processor"], env=env, cwd=cwd)
    processes.start("triggerer", [AIRFLOW, "triggerer"], env=env, cwd=cwd)
    shared = " ".join(str(p) for p in shared_roots())
    for name, private_tmp in deployment.worker_tmps.items():
        worker_env = {
            **env,
            "FUSE_WORKER_NAME": name,
            "FUSE_PRIVATE_TMP": str(private_tmp),
            "FUSE_SHARED_ROOTS": shared,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        }
        processes.start(
            name,
            [
                "unshare",
                "--mount",
                "--uts",
                "--propagation",
                "private",
                # Without root, a user namespace of its own gives the worker the right to mount.
                *([] if os.geteuid() == 0 else ["--map-root-user"]),
                "--",
                "sh",
                "-c",
                WORKER_SHELL,
                "worker",
                AIRFLOW,
                "celery",
                "worker",
                "--celery-hostname",
                f"{name}@%h",
                "--without-gossip",
            ],
            env=worker_env,
            cwd=cwd,
        )
    wait_for_port(api_port, "the api-server", timeout=180)
    wait_for(
        "the api-server to answer",
        lambda: requests.get(f"{deployment.api}/api/v2/version", timeout=5).ok,
        180,
    )
    wait_for(
        f"the api-server's {API_WORKERS} workers",
        lambda: len(api_workers(api.popen.pid)) == API_WORKERS,
        120,
    )
    deployment.api_pid = api.popen.pid
    deployment.api_startup = time.monotonic() - api_started
    say(f"api-server answering with {API_WORKERS} workers after {deployment.api_startup:.0f} s")
    deployment.login()

    def parsed() -> bool:
        dags = deployment.call("GET", "/api/v2/dags", params={"limit": 100})["dags"]
        return {BULK, SINGLE, STOP, RESULTS} <= {dag["dag_id"] for dag in dags}

    wait_for("the dag-processor to parse the examples", parsed, 240, interval=3)

    def workers_ready() -> bool:
        logs = [deployment.run / "logs" / f"{name}.log" for name in deployment.worker_tmps]
        return all(" ready." in log.read_text(errors="replace") for log in logs)

    wait_for("both Celery workers to be ready", workers_ready, 180, interval=2)
    processes.check_alive()


# -- the runs -----------------------------------------------------------------------------------------


@dataclass
class RunRow:
    """One DAG run, for the table: which worker ran which task, and how it ended."""

    scenario: str
    dag_id: str
    run_id: str
    state: str
    tasks: dict[str, tuple[str, str]]  # task_id -> (state, host)


@dataclass
class Report:
    rows: list[RunRow] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    measured: list[str] = field(default_factory=list)

    def check(self, condition: bool, what: str) -> None:
        if not condition:
            raise Failed(what)
        self.checks.append(what)
        say(f"ok: {what}")

    def record(self, deployment: Deployment, scenario: str, dag_id: str, run_id: str) -> RunRow:
        tis = deployment.task_instances(dag_id, run_id)
        row = RunRow(
            scenario,
            dag_id,
            run_id,
            deployment.run_state(dag_id, run_id),
            {task: (ti["state"] or "none", ti.get("hostname") or "-") for task, ti in tis.items()},
        )
        self.rows.append(row)
        return row


def csv_run_ids(upload: Any) -> list[str]:
    """The ``airflow_run_id`` column of an upload, row by row (the harness's own reading)."""
    import csv
    import io

    return [row["airflow_run_id"] for row in csv.DictReader(io.StringIO(upload.csv.decode("utf-8-sig")))]


def stored_exports(s3: str) -> list[str]:
    import boto3

    client = boto3.client(
        "s3", endpoint_url=s3, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    listing = client.list_objects_v2(Bucket=BUCKET)
    return [item["Key"] for item in listing.get("Contents", [])]


def bulk_runs(deployment: Deployment, sandbox: Any, s3: str, report: Report) -> list[str]:
    say(f"bulk example: {BULK_RUNS} runs at once")
    run_ids = [deployment.trigger(BULK) for _ in range(BULK_RUNS)]
    for run_id in run_ids:
        deployment.wait_for_run(BULK, run_id, timeout=420)
    crossed = 0
    hosts: set[str] = set()
    for run_id in run_ids:
        row = report.record(deployment, "bulk", BULK, run_id)
        report.check(row.state == "success", f"bulk run {run_id} succeeded (it was {row.state})")
        report.check(
            all(state == "success" for state, _ in row.tasks.values()),
            f"every task of bulk run {run_id} succeeded",
        )
        queued = deployment.xcom(BULK, run_id, "queue_calls")
        report.check(queued == 3, f"run {run_id}: calls_queued in XCom = 3 rows (got {queued!r})")
        export_host, upload_host = row.tasks["export_contacts"][1], row.tasks["queue_calls"][1]
        crossed += export_host != upload_host
        hosts |= {host for _, host in row.tasks.values()}
    report.check(
        {"fuse-worker-1", "fuse-worker-2"} <= hosts,
        f"both workers ran tasks of the bulk runs ({sorted(hosts)})",
    )
    say(f"{crossed} of {BULK_RUNS} runs exported on one worker and uploaded on the other")
    received: dict[str, int] = {}
    for upload in sandbox.uploads():
        if upload.calls_queued is None:
            continue
        ids = set(csv_run_ids(upload))
        report.check(len(ids) == 1, f"upload {upload.upload_id} holds one run's list")
        (run_id,) = ids
        received[run_id] = received.get(run_id, 0) + 1
        report.check(
            upload.calls_queued == upload.rows == 3, f"upload {upload.upload_id}: 3 rows, 3 calls queued"
        )
    report.check(
        all(received.get(run_id) == 1 for run_id in run_ids) and len(received) == BULK_RUNS,
        f"the sandbox received each run's list exactly once ({received})",
    )
    report.check(stored_exports(s3) == [], "no CSV left in object storage after the bulk runs")
    return run_ids


def handover_run(deployment: Deployment, sandbox: Any, s3: str, report: Report) -> None:
    """One bulk run whose export and upload are made to land on different workers.

    Where tasks land is Celery's choice, so the six runs above may or may not cross workers. Here
    the harness tells worker 2 to stop taking tasks (Celery's remote control, through the broker)
    until worker 1 has started the export, then turns the two around: the upload must find the
    CSV written by the other worker, as it would on another machine.
    """
    from celery import Celery

    app = Celery(broker=deployment.env["AIRFLOW__CELERY__BROKER_URL"])
    one, two = (f"{name}@{name}" for name in deployment.worker_tmps)

    def only(worker: str, other: str) -> None:
        app.control.add_consumer("default", destination=[worker], reply=True, timeout=10)
        app.control.cancel_consumer("default", destination=[other], reply=True, timeout=10)

    say("bulk example, handed over: export on worker 1, upload on worker 2")
    try:
        only(one, two)
        run_id = deployment.trigger(BULK)
        # Swap as soon as worker 1 has started the export: the upload is queued only once the
        # export has succeeded, so by then worker 2 is the only one taking tasks.
        wait_for(
            "the export to start on worker 1",
            lambda: (
                deployment.task_instances(BULK, run_id)["export_contacts"]["state"] in ("running", "success")
            ),
            240,
            interval=0.2,
        )
        only(two, one)
        state = deployment.wait_for_run(BULK, run_id, timeout=300)
    finally:
        for worker in (one, two):
            app.control.add_consumer("default", destination=[worker], reply=True, timeout=10)
        app.close()
    row = report.record(deployment, "handover", BULK, run_id)
    hosts = (row.tasks["export_contacts"][1], row.tasks["queue_calls"][1])
    report.check(
        hosts == ("fuse-worker-1", "fuse-worker-2"), f"the export ran on {hosts[0]}, the upload on {hosts[1]}"
    )
    report.check(state == "success", f"the handed-over run succeeded (it was {state})")
    received = [u for u in sandbox.uploads() if u.calls_queued is not None and run_id in csv_run_ids(u)]
    report.check(
        len(received) == 1 and received[0].calls_queued == 3, "the sandbox received its list once, 3 calls"
    )
    report.check(stored_exports(s3) == [], "no CSV left in object storage after the handover")


def unknown_deployment_run(deployment: Deployment, sandbox: Any, s3: str, report: Report) -> None:
    say(f"bulk example against deployment {UNKNOWN_DEPLOYMENT}, which the sandbox does not know")
    before = len([u for u in sandbox.uploads() if u.calls_queued is not None])
    run_id = deployment.trigger(BULK, {"deployment_id": UNKNOWN_DEPLOYMENT})
    state = deployment.wait_for_run(BULK, run_id, timeout=300)
    row = report.record(deployment, "unknown deployment", BULK, run_id)
    report.check(state == "failed", f"the run against an unknown deployment failed (it was {state})")
    report.check(row.tasks["queue_calls"][0] == "failed", "its queue_calls failed")
    report.check(row.tasks["remove_export"][0] == "success", "its teardown still removed the export")
    after = len([u for u in sandbox.uploads() if u.calls_queued is not None])
    report.check(after == before, "Fuse queued nothing for it")
    log = deployment.task_log(BULK, run_id, "queue_calls", 1)
    report.check("404" in log or "not found" in log.lower(), "the task log gives Fuse's answer")
    report.check(stored_exports(s3) == [], "no CSV left in object storage after the failed run")


def clear_successful_upload(
    deployment: Deployment, sandbox: Any, s3: str, report: Report, run_id: str
) -> None:
    say(f"clearing queue_calls of the successful run {run_id}")
    before = len(sandbox.uploads())
    tries = deployment.task_instances(BULK, run_id)["queue_calls"]["try_number"]
    body = {
        "dry_run": False,
        "dag_run_id": run_id,
        "task_ids": ["queue_calls"],
        "only_failed": False,
        "reset_dag_runs": True,
    }
    deployment.call("POST", f"/api/v2/dags/{BULK}/clearTaskInstances", json=body)

    def ran_again() -> bool:
        ti = deployment.task_instances(BULK, run_id)["queue_calls"]
        return ti["try_number"] > tries and deployment.run_state(BULK, run_id) in ("success", "failed")

    wait_for("the cleared queue_calls to run again", ran_again, 300, interval=2)
    row = report.record(deployment, "clear queue_calls", BULK, run_id)
    report.check(
        row.state == "success" and row.tasks["queue_calls"][0] == "success",
        "the cleared upload succeeded again",
    )
    report.check(len(sandbox.uploads()) == before, "the clear sent nothing to Fuse")
    log = deployment.task_log(BULK, run_id, "queue_calls", tries + 1)
    report.check("Nothing sent" in log, "its log says it answered from the ledger and sent nothing")
    report.check(stored_exports(s3) == [], "no CSV left in object storage after the clear")


def single_calls(deployment: Deployment, sandbox: Any, report: Report) -> None:
    def deferred(run_id: str) -> Callable[[], bool]:
        return lambda: (
            deployment.task_instances(SINGLE, run_id).get("wait_for_outcome", {}).get("state") == "deferred"
        )

    say("single-call example: the call ends while the sensor waits in the triggerer")
    run_id = deployment.trigger(SINGLE)
    wait_for("the sensor to defer", deferred(run_id), 240, interval=2)
    report.checks.append("the single call's sensor deferred")
    call_id = deployment.xcom(SINGLE, run_id, "queue_call")
    sandbox.advance(600)  # the sandbox's clock: ring, talk, hang up
    state = deployment.wait_for_run(SINGLE, run_id, timeout=240)
    row = report.record(deployment, "single call", SINGLE, run_id)
    report.check(state == "success", f"the single-call run succeeded (it was {state})")
    details = deployment.xcom(SINGLE, run_id, "wait_for_outcome")
    report.check(
        isinstance(details, dict)
        and str(details.get("call_id")) == str(call_id)
        and details.get("status") == "completed",
        f"the resumed sensor pushed the call's details (completed): {details!r}, call id {call_id!r}",
    )
    report.check("phone_number" not in details, "the call's details carry no phone number")
    log = deployment.task_log(SINGLE, run_id, "wait_for_outcome", 1)
    report.check(
        "Pausing task as DEFERRED" in log and "Trigger fired event" in log,
        "the sensor's log shows it deferred, and the triggerer's trigger fired its event",
    )
    report.check(
        row.tasks["wait_for_outcome"][1].startswith("fuse-worker-"), "the sensor resumed on a worker"
    )

    say("single-call example, then the stop-campaign example cancels the pending call")
    run_id = deployment.trigger(SINGLE)
    wait_for("the second sensor to defer", deferred(run_id), 240, interval=2)
    call_id = deployment.xcom(SINGLE, run_id, "queue_call")
    stop = deployment.trigger(STOP)
    stopped = deployment.wait_for_run(STOP, stop, timeout=240)
    report.record(deployment, "stop campaign", STOP, stop)
    report.check(stopped == "success", f"the stop-campaign run succeeded (it was {stopped})")
    call = sandbox.call(str(call_id))
    report.check(call is not None and call.status == "canceled", "the pending call was canceled")
    state = deployment.wait_for_run(SINGLE, run_id, timeout=240)
    report.record(deployment, "single call, canceled", SINGLE, run_id)
    details = deployment.xcom(SINGLE, run_id, "wait_for_outcome", key="call_details")
    report.check(
        state == "failed" and isinstance(details, dict) and details.get("status") == "canceled",
        "the sensor resumed, pushed the canceled call's details and failed the run in Fuse's words",
    )


def results_rows(deployment: Deployment, run_id: str) -> list[tuple[Any, ...]]:
    """This run's rows of the results table, read straight from Postgres by the DBA (status, attempts,
    part, destination)."""
    with contextlib.closing(results_db(deployment)) as db, db.cursor() as cursor:
        cursor.execute(
            f"SELECT status, attempts, part, destination FROM {RESULTS_TABLE} "
            "WHERE dag_id = %s AND run_id = %s",
            (RESULTS, run_id),
        )
        return list(cursor.fetchall())


def campaign_slots(deployment: Deployment, campaign: str) -> list[int]:
    """The slots one campaign's rows hold in the results table, read by the DBA."""
    with contextlib.closing(results_db(deployment)) as db, db.cursor() as cursor:
        cursor.execute(f"SELECT slot FROM {RESULTS_TABLE} WHERE campaign_id = %s ORDER BY slot", (campaign,))
        return [int(slot) for (slot,) in cursor.fetchall()]


def result_tokens(sandbox: Any) -> list[str]:
    """Every results token the workers gave Fuse (the last segment of each call's ``result_url``)."""
    return sorted({call.result_url.rsplit("/", 1)[-1] for call in sandbox.calls() if call.result_url})


def campaign_results(deployment: Deployment, sandbox: Any, report: Report) -> None:
    say("campaign-results example: each call's outcome comes back through the api-server into Postgres")
    run_id = deployment.trigger(RESULTS)

    def sensor_deferred() -> bool:
        return deployment.task_instances(RESULTS, run_id).get(RESULTS_SENSOR, {}).get("state") == "deferred"

    wait_for("the results sensor to defer", sensor_deferred, 240, interval=2)
    report.checks.append("the campaign-results sensor deferred to the triggerer")
    sandbox.advance(600)  # the sandbox's clock: the calls ring, are answered or not, end, and report
    state = deployment.wait_for_run(RESULTS, run_id, timeout=300)
    report.record(deployment, "campaign results", RESULTS, run_id)
    report.check(state == "success", f"the campaign-results run succeeded (it was {state})")
    calls = [call for call in sandbox.calls() if call.result_url]
    report.check(
        len(calls) == 3 and all(call.result_delivery == "delivered" for call in calls),
        "the sandbox delivered the 3 calls' outcomes to the api-server "
        f"({[(call.status, call.result_delivery, call.result_status_code) for call in calls]})",
    )
    summary = deployment.xcom(RESULTS, run_id, RESULTS_SENSOR)
    expected = {
        "calls_queued": 3,
        "completed": 2,
        "failed": 1,
        "canceled": 0,
        "rejected": 0,
        "other": 0,
        "missing": 0,
    }
    report.check(summary == expected, f"the sensor's summary is 3 queued → 2 completed, 1 failed: {summary}")
    rows = results_rows(deployment, run_id)
    report.check(
        sorted(status for status, *_ in rows) == ["completed", "completed", "failed"]
        and {destination[-10:] for *_, destination in rows} == {n[-10:] for n in RESULTS_NUMBERS},
        f"Postgres holds the run's 3 outcomes, one per number ({len(rows)} rows)",
    )
    # What a token authorises: one part of one upload. A forged one writes nothing.
    (token,) = {call.result_url.rsplit("/", 1)[-1] for call in calls}
    payload, _, signature = token.partition(".")
    forged = f"{payload}.{signature[::-1]}"
    body = {"call_details": {"status": "completed", "attempts": "1", "phone_number": "'6175550142'"}}
    answer = requests.post(f"{deployment.api}/fuse/results/{forged}", json=body, timeout=30)
    report.check(
        answer.status_code in (401, 403) and len(results_rows(deployment, run_id)) == 3,
        f"a forged token is refused ({answer.status_code}) and stores nothing",
    )
    replay = requests.post(calls[0].result_url, json=body, timeout=30)
    report.check(
        replay.status_code == 409 and len(results_rows(deployment, run_id)) == 3,
        f"a genuine token cannot store more outcomes than its part has rows ({replay.status_code})",
    )


def check_least_privilege(deployment: Deployment, report: Report) -> None:
    """What the results role may do, and who the results database's connections came as."""
    with contextlib.closing(results_db(deployment)) as db, db.cursor() as cursor:
        cursor.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants WHERE grantee = %s",
            (RESULTS_ROLE,),
        )
        granted = sorted(privilege for (privilege,) in cursor.fetchall())
        cursor.execute(
            "SELECT rolsuper OR rolcreatedb OR rolcreaterole OR rolbypassrls, "
            "has_schema_privilege(%s, 'public', 'CREATE'), has_database_privilege(%s, %s, 'CREATE') "
            "FROM pg_roles WHERE rolname = %s",
            (RESULTS_ROLE, RESULTS_ROLE, RESULTS_DATABASE, RESULTS_ROLE),
        )
        ((powers, create_in_schema, create_in_database),) = cursor.fetchall()
        cursor.execute(
            "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (RESULTS_DATABASE,),
        )
        users = sorted(user for (user,) in cursor.fetchall())
    report.check(
        granted == ["INSERT", "SELECT"] and not (powers or create_in_schema or create_in_database),
        f"the results role {RESULTS_ROLE} has {granted} on {RESULTS_TABLE} and nothing else "
        f"(no role attribute: {not powers}, no CREATE in the schema or the database: "
        f"{not (create_in_schema or create_in_database)})",
    )
    configured = urllib.parse.urlsplit(deployment.env["AIRFLOW_CONN_FUSE_RESULTS_DEFAULT"]).username
    report.check(
        configured == RESULTS_ROLE and users == [RESULTS_ROLE],
        f"every component's results connection logs in as {configured}, and so does every open "
        f"connection to the results database ({users})",
    )


def callback(number: str, status: str = "completed") -> dict[str, Any]:
    """One outcome's body, as Fuse's documented sample has it: numbers as strings, the number quoted."""
    now = int(time.time())
    return {
        "call_details": {
            "status": status,
            "attempts": "1",
            "max_attempts": "3",
            "reattempt_wait": "60",
            "queued_timestamp": str(now - 90),
            "start_timestamp": str(now - 60),
            "end_timestamp": str(now),
            "duration": "31" if status == "completed" else "",
            "events": [
                {"event": "queued", "timestamp": str(now - 90)},
                {"event": status, "timestamp": str(now)},
            ],
            "phone_number": f"'{number}'",
        }
    }


def harness_part(deployment: Deployment, dag_id: str, rows: int) -> tuple[str, str]:
    """A fresh campaign of one part of ``rows`` rows, and its token signed with the deployment's key."""
    from airflow_provider_fuse.results.tokens import UploadPart, new_campaign, sign

    campaign = new_campaign()
    part = UploadPart(
        dag_id=dag_id,
        run_id=f"manual__{campaign[:12]}",
        task_id="queue_calls",
        map_index=-1,
        campaign=campaign,
        part=0,
        rows=rows,
        expires=int(time.time()) + 3600,
    )
    token = sign(part, deployment.env["AIRFLOW__FUSE__RESULTS_SIGNING_KEY"])
    deployment.harness_tokens.append(token)
    return campaign, token


def harness_numbers(deployment: Deployment, what: str, exchanges: tuple[str, ...], count: int) -> list[str]:
    """``count`` fictional numbers (555-0100 to 555-0199 of the given area codes), for the leak scan."""
    numbers = [f"{exchange}5550{100 + index % 100}" for exchange in exchanges for index in range(100)][:count]
    for index, number in enumerate(numbers):
        deployment.harness_numbers[f"{what} number {index + 1}"] = number
    return numbers


@dataclass(frozen=True)
class Posted:
    status: int
    seconds: float
    stored: str | None
    retry_after: str | None


def post_callback(deployment: Deployment, token: str, body: dict[str, Any]) -> Posted:
    """POST one outcome on a connection of its own (any api-server worker may take it); timed."""
    started = time.monotonic()
    answer = requests.post(f"{deployment.api}/fuse/results/{token}", json=body, timeout=(5, 60))
    seconds = time.monotonic() - started
    stored = None
    if answer.status_code == 200:
        stored = answer.json().get("stored")
    return Posted(answer.status_code, seconds, stored, answer.headers.get("Retry-After"))


def receiver_burst(deployment: Deployment, report: Report) -> None:
    """Many distinct outcomes at once under one token of a small part, through every api-server worker."""
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor

    workers = api_workers(deployment.api_pid)
    before = {pid: cpu_seconds(pid) for pid in workers}
    campaign, token = harness_part(deployment, "fuse_deployment_burst", BURST_ROWS)
    numbers = harness_numbers(deployment, "burst", ("617", "212"), BURST_OUTCOMES)
    say(
        f"receiver burst: {BURST_OUTCOMES} distinct outcomes at once ({BURST_THREADS} threads) under one "
        f"token of a {BURST_ROWS}-row part, api-server on {len(workers)} workers"
    )
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=BURST_THREADS) as pool:
        futures = [pool.submit(post_callback, deployment, token, callback(number)) for number in numbers]
        answers = [future.result(timeout=120) for future in futures]
    took = time.monotonic() - started
    busy = 0
    for pid, cpu in before.items():
        after = cpu_seconds(pid)
        busy += cpu is not None and after is not None and after - cpu >= 0.05
    statuses = Counter(answer.status for answer in answers)
    slots = campaign_slots(deployment, campaign)
    report.measured.append(
        f"burst: {BURST_OUTCOMES} outcomes for a {BURST_ROWS}-row part through {len(workers)} workers "
        f"({busy} busy) in {took:.1f} s: {statuses.get(200, 0)} × 200, {statuses.get(409, 0)} × 409, "
        f"{len(slots)} rows stored"
    )
    report.check(
        len(workers) == API_WORKERS and busy >= 2,
        f"the burst was answered by {busy} of the api-server's {len(workers)} worker processes "
        f"(each that used CPU for it), in {took:.1f} s",
    )
    report.check(
        statuses == {200: BURST_ROWS, 409: BURST_OUTCOMES - BURST_ROWS}
        and sum(answer.stored == "stored" for answer in answers) == BURST_ROWS,
        f"{BURST_OUTCOMES} distinct outcomes at once for a {BURST_ROWS}-row part: "
        f"{statuses.get(200, 0)} stored (200), {statuses.get(409, 0)} refused as the part is full (409); "
        f"all answers {dict(statuses)}",
    )
    report.check(
        slots == list(range(1, BURST_ROWS + 1)),
        f"Postgres holds exactly {BURST_ROWS} rows of the burst's campaign, in slots 1 to {BURST_ROWS} "
        f"({len(slots)} rows)",
    )


def locked_database(deployment: Deployment, facts: ReceiverFacts, report: Report) -> None:
    """Callbacks while a superuser holds the results table's ACCESS EXCLUSIVE lock: each is answered 503
    with Retry-After within the receiver's bound; once it is released, the same callbacks are stored once."""
    import statistics
    from concurrent.futures import ThreadPoolExecutor

    campaign, token = harness_part(deployment, "fuse_deployment_locked", 2 * LOCK_WAVES * LOCK_WAVE)
    numbers = harness_numbers(deployment, "locked", ("646",), LOCK_WAVES * LOCK_WAVE)
    bodies = [
        callback(number, "failed" if index % 3 == 0 else "completed") for index, number in enumerate(numbers)
    ]
    say(
        f"locked database: LOCK TABLE {RESULTS_TABLE} IN ACCESS EXCLUSIVE MODE, "
        f"{len(bodies)} callbacks in {LOCK_WAVES} waves, {LOCK_WAVE_EVERY:g} s apart"
    )
    locker = results_db(deployment, autocommit=False)
    try:
        with locker.cursor() as cursor:
            cursor.execute("SET lock_timeout = '10s'")
            cursor.execute(f"LOCK TABLE {RESULTS_TABLE} IN ACCESS EXCLUSIVE MODE")
        locked = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
            futures = []
            for wave in range(LOCK_WAVES):
                if wave:
                    time.sleep(max(0.0, locked + wave * LOCK_WAVE_EVERY - time.monotonic()))
                futures += [
                    pool.submit(post_callback, deployment, token, body)
                    for body in bodies[wave * LOCK_WAVE : (wave + 1) * LOCK_WAVE]
                ]
            answers = [future.result(timeout=120) for future in futures]
        held = time.monotonic() - locked
        locker.rollback()  # releases the lock
    finally:
        locker.close()
    waits = sorted(answer.seconds for answer in answers)
    median, longest = statistics.median(waits), waits[-1]
    report.measured.append(
        f"locked table ({held:.0f} s): {len(answers)} callbacks, time to the answer median {median:.1f} s, "
        f"max {longest:.1f} s ({[round(wait, 1) for wait in waits]})"
    )
    report.check(
        all(answer.status == 503 and (answer.retry_after or "").isdigit() for answer in answers),
        f"with the table locked for {held:.0f} s, {len(answers)} callbacks were answered "
        f"{sorted({answer.status for answer in answers})} with Retry-After",
    )
    report.check(
        longest < facts.store_timeout + SLACK,
        f"each within the receiver's bound of {facts.store_timeout:g} s: time to the 503 median "
        f"{median:.1f} s, max {longest:.1f} s",
    )
    report.check(campaign_slots(deployment, campaign) == [], "nothing was stored while the table was locked")

    # Released: the sender's retries are stored (or found stored by a store that outlived its 503).
    deadline = time.monotonic() + 60
    pending = list(range(len(bodies)))
    resent: dict[int, Posted] = {}
    while pending and time.monotonic() < deadline:
        for index in pending:
            resent[index] = post_callback(deployment, token, bodies[index])
        pending = [index for index in pending if resent[index].status != 200]
        if pending:
            time.sleep(1)
    again = [post_callback(deployment, token, body) for body in bodies]
    slots = campaign_slots(deployment, campaign)
    report.check(
        not pending and all(answer.stored in ("stored", "duplicate") for answer in resent.values()),
        f"the lock released, the same {len(bodies)} callbacks re-sent were answered 200 "
        f"({sum(a.stored == 'stored' for a in resent.values())} stored, "
        f"{sum(a.stored == 'duplicate' for a in resent.values())} found stored by a store that outlived "
        "its 503)",
    )
    report.check(
        all(answer.stored == "duplicate" for answer in again) and slots == list(range(1, len(bodies) + 1)),
        f"each stored exactly once: Postgres holds {len(slots)} rows for the {len(bodies)} callbacks, "
        "and sending them a third time stores nothing (duplicate)",
    )


def slowest_requests(deployment: Deployment) -> str:
    """The api-server's slowest requests, from its access log (how long the app took, in seconds)."""
    import re

    log = (deployment.run / "logs" / "api-server.log").read_text(errors="replace")
    found = re.findall(r"duration_us=(\d+) .*? path=(\S+)", log)
    times = sorted(((int(us) / 1e6, path.split("/")[1]) for us, path in found), reverse=True)
    over = sum(seconds > 10 for seconds, _ in times)
    slowest = ", ".join(f"{seconds:.1f} s ({where})" for seconds, where in times[:3])
    return f"api-server: {len(times)} requests, {over} over 10 s; the slowest {slowest}"


# -- what Airflow kept --------------------------------------------------------------------------------


def phone_numbers() -> dict[str, str]:
    """Every phone number the examples dial, by a name that does not spell it out (last 10 digits)."""
    numbers = [*BULK_NUMBERS, SINGLE_CONTACT["phone_number"], *RESULTS_NUMBERS]
    return {f"phone number …{number[-4:]}": number[-10:] for number in numbers}


def needles(sandbox: Any, deployment: Deployment) -> dict[str, str]:
    """What must not appear anywhere: every phone number dialed or posted, the developer key, the auth
    header, the results signing key, the results role's password and every results token (a token in a
    log is a credential in a log)."""
    import base64

    env = deployment.env
    basic = base64.b64encode(f"{sandbox.email}:{sandbox.developer_key}".encode()).decode()
    tokens = [*result_tokens(sandbox), *deployment.harness_tokens]
    return {
        **phone_numbers(),
        **deployment.harness_numbers,
        "the developer key": sandbox.developer_key,
        "the Authorization header": basic,
        "the results signing key": env["AIRFLOW__FUSE__RESULTS_SIGNING_KEY"],
        "the results role's password": urllib.parse.urlsplit(
            env["AIRFLOW_CONN_FUSE_RESULTS_DEFAULT"]
        ).password
        or "",
        **{f"results token {index + 1}": token for index, token in enumerate(tokens)},
    }


def scan(text: str, where: str, secrets_: dict[str, str]) -> list[str]:
    return [f"{name} in {where}" for name, value in secrets_.items() if value in text]


def check_nothing_leaked(deployment: Deployment, sandbox: Any, report: Report) -> None:
    secrets_ = needles(sandbox, deployment)
    leaks: list[str] = []
    log_files = sorted((deployment.run / "logs").glob("*.log"))
    task_logs = sorted(p for p in (Path(deployment.env["AIRFLOW_HOME"]) / "logs").rglob("*") if p.is_file())
    for path in [*log_files, *task_logs]:
        leaks += scan(path.read_text(errors="replace"), str(path.relative_to(deployment.run)), secrets_)
    report.check(
        not leaks,
        f"no phone number or key in {len(log_files)} component logs and {len(task_logs)} task logs: {leaks}",
    )

    runs = deployment.call("GET", "/api/v2/dags/~/dagRuns", params={"limit": 100})["dag_runs"]
    leaks = scan(json.dumps([run.get("conf") for run in runs]), "a run's conf", secrets_)
    tis = deployment.call("GET", "/api/v2/dags/~/dagRuns/~/taskInstances", params={"limit": 1000})[
        "task_instances"
    ]
    leaks += scan(json.dumps([ti.get("rendered_fields") for ti in tis]), "rendered fields", secrets_)
    entries = deployment.call(
        "GET", "/api/v2/dags/~/dagRuns/~/taskInstances/~/xcomEntries", params={"limit": 1000}
    )
    values = []
    for entry in entries["xcom_entries"]:
        path = (
            f"/api/v2/dags/{entry['dag_id']}/dagRuns/{quote(entry['run_id'])}/taskInstances/"
            f"{entry['task_id']}/xcomEntries/{quote(entry['key'])}"
        )
        values.append(deployment.call("GET", path, params={"map_index": entry.get("map_index", -1)})["value"])
    leaks += scan(json.dumps(values, default=str), "XCom", secrets_)
    events = deployment.call("GET", "/api/v2/eventLogs", params={"limit": 1000})["event_logs"]
    leaks += scan(json.dumps(events), "the event log", secrets_)
    report.check(
        not leaks,
        f"no phone number or key in {len(runs)} runs' conf, {len(tis)} task instances' rendered fields, "
        f"{len(values)} XCom values, {len(events)} event-log entries: {leaks}",
    )

    # Beyond the API: the whole metadata database, table by table.
    database = deployment.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    port = urllib.parse.urlsplit(database).port
    dump = subprocess.run(
        [
            str(postgres_bin() / "pg_dump"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "airflow",
            "--data-only",
            "airflow",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    leaks, table = [], "?"
    for line in dump.splitlines():
        if line.startswith("COPY "):
            table = line.split()[1]
        # dag_code is the DAG files' source: the bulk example's stand-in export writes its
        # fictional numbers from literals there. Everything else must be free of them.
        if table != "public.dag_code":
            leaks += scan(line, f"table {table}", secrets_)
    report.check(
        not leaks,
        f"no phone number or key in the metadata database ({len(dump) // 1024} KiB, DAG source aside): "
        f"{sorted(set(leaks))}",
    )


def check_worker_disks(deployment: Deployment, report: Report) -> None:
    secrets_ = phone_numbers()
    left: list[str] = []
    for name, private_tmp in deployment.worker_tmps.items():
        for path in private_tmp.rglob("*"):
            if path.is_file() and not path.is_symlink():
                with contextlib.suppress(OSError):
                    text = path.read_bytes()[: 1 << 20].decode("utf-8", errors="replace")
                    if path.suffix == ".csv" or scan(text, "", secrets_):
                        left.append(f"{name}:/tmp/{path.relative_to(private_tmp)}")
    report.check(not left, f"no contact list left on either worker's private /tmp: {left}")


def check_connection_form(deployment: Deployment, report: Report) -> None:
    from airflow_provider_fuse.get_provider_info import get_provider_info

    ours = get_provider_info()["connection-types"][0]
    meta = deployment.call("GET", "/ui/connections/hook_meta")
    fuse = [item for item in meta if item.get("connection_type") == ours["connection-type"]]
    report.check(len(fuse) == 1, "the api-server serves a 'fuse' connection form")
    form = fuse[0]
    behaviour = ours["ui-field-behaviour"]
    standard = form.get("standard_fields") or {}
    relabeled = {key: (standard.get(key) or {}).get("title") for key in behaviour.get("relabeling", {})}
    report.check(
        form.get("hook_name") == ours["hook-name"] and relabeled == behaviour.get("relabeling", {}),
        f"its fields come from the provider's info (hook name {form.get('hook_name')!r}, labels {relabeled})",
    )
    served = form.get("extra_fields") or {}
    typed = {name: (served.get(name) or {}).get("schema", {}).get("type") for name in served}
    declared = {name: spec["schema"]["type"] for name, spec in ours["conn-fields"].items()}
    report.check(
        typed == declared,
        f"its typed extra fields are the provider's conn-fields ({sorted(typed)}, types as declared)",
    )


# -- main -----------------------------------------------------------------------------------------


def print_table(report: Report, started: float) -> None:
    print()
    print(f"{'scenario':<24} {'dag':<28} {'run':<44} {'state':<8} tasks (state @ worker)")
    for row in report.rows:
        tasks = ", ".join(f"{task}={state}@{host}" for task, (state, host) in sorted(row.tasks.items()))
        print(f"{row.scenario:<24} {row.dag_id:<28} {row.run_id:<44} {row.state:<8} {tasks}")
    print()
    print(f"{len(report.checks)} checks passed:")
    for check in report.checks:
        print(f"  - {check}")
    if report.measured:
        print("\nmeasured:")
        for line in report.measured:
            print(f"  - {line}")
    print(f"\nwall time of the deployment test: {time.monotonic() - started:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the run directory (logs, data) afterwards")
    parser.add_argument(
        "--export-base",
        default=EXPORT_BASE,
        help="the bulk example's export base (default %(default)s); a worker-local file:///tmp/... base"
        " shows what the harness catches when the CSV does not travel between workers",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    ensure_system_packages()
    base = ROOT / ".deployment"
    base.mkdir(exist_ok=True)
    for previous_run in base.glob("run-*"):  # a failed run's logs are kept until the next run
        shutil.rmtree(previous_run, ignore_errors=True)
    run = Path(tempfile.mkdtemp(prefix="run-", dir=base))
    (run / "logs").mkdir()
    processes = Processes(run / "logs")
    global WATCHED
    WATCHED = processes
    # Postgres runs as its own user, which must reach its data directory: not under the checkout,
    # whose parents (a home directory, say) it may not be allowed to traverse.
    postgres_home = Path(tempfile.mkdtemp(prefix="fuse-deployment-postgres-", dir="/var/tmp"))
    postgres_home.chmod(0o755)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}

    def interrupted(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in previous:
        signal.signal(sig, interrupted)
    from airflow_provider_fuse.sandbox import FuseSandbox

    report = Report()
    sandbox = FuseSandbox(time_scale=0.001, log_level="warning")
    try:
        say(f"run directory {run}")
        database = start_postgres(processes, postgres_home)
        broker = start_redis(processes, run)
        s3 = start_s3(processes)
        import boto3

        boto3.client(
            "s3", endpoint_url=s3, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        ).create_bucket(Bucket=BUCKET)
        sandbox.start()
        say(f"Fuse sandbox on {sandbox.url}")
        api_port = free_port()
        password = secrets.token_urlsafe(16)
        env = airflow_env(
            run,
            database=database,
            broker=broker,
            s3=s3,
            api_port=api_port,
            fuse_connection=sandbox.connection_json(),
            password=password,
            export_base=args.export_base,
            signing_key=secrets.token_hex(32),
            results_password=secrets.token_hex(16),
        )
        worker_tmps = {}
        for name in ("fuse-worker-1", "fuse-worker-2"):
            worker_tmps[name] = run / f"{name}-tmp"
            worker_tmps[name].mkdir(mode=0o1777)
            worker_tmps[name].chmod(0o1777)
        deployment = Deployment(run, env, f"http://127.0.0.1:{api_port}", password, worker_tmps)
        facts = read_receiver_facts(deployment)
        prepare_results_database(deployment, facts)
        start_airflow(processes, deployment)
        say(f"deployment up after {time.monotonic() - started:.0f} s")
        report.measured.append(
            f"api-server: {API_WORKERS} uvicorn workers, all started and answering "
            f"{deployment.api_startup:.0f} s after it was started"
        )
        check_connection_form(deployment, report)
        run_ids = bulk_runs(deployment, sandbox, s3, report)
        handover_run(deployment, sandbox, s3, report)
        unknown_deployment_run(deployment, sandbox, s3, report)
        clear_successful_upload(deployment, sandbox, s3, report, run_ids[0])
        single_calls(deployment, sandbox, report)
        campaign_results(deployment, sandbox, report)
        check_least_privilege(deployment, report)
        receiver_burst(deployment, report)
        locked_database(deployment, facts, report)
        processes.check_alive()
        report.measured.append(slowest_requests(deployment))
        check_worker_disks(deployment, report)
        check_nothing_leaked(deployment, sandbox, report)
    except (Exception, KeyboardInterrupt) as error:
        if not isinstance(error, (Failed, KeyboardInterrupt)):
            traceback.print_exc()
        print(processes.tails(), file=sys.stderr)
        print_table(report, started)
        print(f"\nFAILED: {error}\nlogs: {run / 'logs'}", file=sys.stderr)
        return 1
    finally:
        for sig in (*previous, signal.SIGINT):  # a second signal must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        say("stopping every process the harness started")
        alive = processes.stop_all()
        sandbox.stop()
        shutil.rmtree(postgres_home, ignore_errors=True)
        for sig, handler in {**previous, signal.SIGINT: signal.default_int_handler}.items():
            signal.signal(sig, handler)
    if alive:
        print(f"FAILED: still running after SIGKILL: {alive}", file=sys.stderr)
        return 1
    report.checks.append("every process the harness started has stopped")
    print_table(report, started)
    if not args.keep:
        shutil.rmtree(run, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
