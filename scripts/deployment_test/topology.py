"""The deployment the test runs on, on this machine, all on loopback and free ports.

Postgres (the metadata database, and a results database of its own where a DBA created the results
table and a least-privilege role), Redis (Celery's broker), moto's S3 server, and Airflow: the
api-server (with N uvicorn workers, the provider's results receiver in each), scheduler,
dag-processor, triggerer and two Celery workers, each in its own mount and UTS namespace with a
private ``/tmp`` and its own host name.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import requests

from deployment_test.examples import (
    APPROVAL,
    APPROVER,
    BULK,
    RESULTS,
    SINGLE,
    SINGLE_CONTACT,
    STOP,
    UNKNOWN_ASK,
)
from deployment_test.report import ApiBusy, Failed, say
from harness import AIRFLOW, ApiServer, Process, ProcessExited, free_port, wait_until

if TYPE_CHECKING:
    from collections.abc import Callable

    from deployment_test.api import Deployment

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BUCKET = "fuse-exports"
EXPORT_BASE = f"s3://aws_default@{BUCKET}/exports"
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


@dataclass
class Processes:
    """Every process the deployment test started, stopped by PID and session in reverse order; the
    bounded wait that fails at once when one of them has died."""

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
        """Start ``argv`` in a session of its own, its output in ``<logs>/<name>.log``."""
        process = Process(
            name, argv, log=self.logs / f"{name}.log", env=env, cwd=cwd, user=user, stop_signal=stop_signal
        )
        return self.adopt(process)

    def adopt(self, process: Process) -> Process:
        """Watch and stop ``process`` (started elsewhere) with the others."""
        self.started.append(process)
        say(f"started {process.name} (pid {process.pid})")
        return process

    def check_alive(self) -> None:
        """:raises Failed: a process exited (with the tail of its log)."""
        for process in self.started:
            try:
                process.check_alive()
            except ProcessExited as exited:
                raise Failed(str(exited)) from None

    def wait_for(self, what: str, check: Callable[[], T | None], timeout: float, interval: float = 1.0) -> T:
        """Poll ``check`` until it returns something true, at most ``timeout`` s; a process that died
        or an api-server still starting (a 5xx, a refused connection) count as not yet.

        :raises Failed: it did not hold in time, or a process exited.
        """
        try:
            return wait_until(
                what,
                check,
                timeout,
                interval=interval,
                alive=self.check_alive,
                retry_on=(requests.RequestException, OSError, ApiBusy),
            )
        except TimeoutError as error:
            raise Failed(str(error)) from None

    def wait_for_port(self, port: int, what: str, timeout: float = 60) -> None:
        """Until something answers on 127.0.0.1:``port``."""

        def answering() -> bool:
            with socket.socket() as client:
                client.settimeout(1)
                return client.connect_ex(("127.0.0.1", port)) == 0

        self.wait_for(f"{what} on port {port}", answering, timeout, interval=0.3)

    def tails(self, lines: int = 25) -> str:
        """The last lines of every component's log, for a failure in CI (where nothing else is kept)."""
        parts = []
        for process in self.started:
            text = process.output().splitlines()[-lines:]
            parts.append(f"---- {process.name} (last {len(text)} lines of {process.log})\n" + "\n".join(text))
        return "\n".join(parts)

    def stop_all(self) -> list[str]:
        """Stop everything started, newest first (see :meth:`harness.Process.stop`); the names of
        any whose processes outlived SIGKILL."""
        alive = [process.name for process in reversed(self.started) if not process.stop(30)]
        self.started.clear()
        return sorted(alive)


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
    processes.wait_for_port(port, "postgres")
    createdb = [str(pg / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "airflow", "airflow"]

    def created() -> bool:
        return subprocess.run(createdb, capture_output=True, timeout=30).returncode == 0

    processes.wait_for("the airflow database", created, 30)
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
    processes.wait_for_port(port, "redis")
    return f"redis://127.0.0.1:{port}/0"


def start_s3(processes: Processes) -> str:
    port = free_port()
    processes.start("s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)])
    processes.wait_for_port(port, "moto's S3 server")
    return f"http://127.0.0.1:{port}"


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
    own_dags = Path(__file__).resolve().parent / "dags"
    for dag_file in [*(ROOT / "example_dags").glob("*.py"), *own_dags.glob("*.py")]:
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
            "AIRFLOW_VAR_FUSE_EXAMPLE_APPROVER": APPROVER,
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
    api = ApiServer(env, workers=API_WORKERS, port=api_port, log_path=processes.logs / "api-server.log")
    api.launch()
    assert api.process is not None
    processes.adopt(api.process)
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
    processes.wait_for("the api-server to answer", api.healthy, 180)
    processes.wait_for(
        f"the api-server's {API_WORKERS} workers", lambda: len(api.worker_pids()) == API_WORKERS, 120
    )
    deployment.api_server = api
    deployment.api_startup = time.monotonic() - api.started
    say(f"api-server answering with {API_WORKERS} workers after {deployment.api_startup:.0f} s")
    deployment.login()

    def parsed() -> bool:
        dags = deployment.call("GET", "/api/v2/dags", params={"limit": 100})["dags"]
        return {BULK, SINGLE, STOP, RESULTS, APPROVAL, UNKNOWN_ASK} <= {dag["dag_id"] for dag in dags}

    processes.wait_for("the dag-processor to parse the examples", parsed, 240, interval=3)

    def workers_ready() -> bool:
        logs = [deployment.run / "logs" / f"{name}.log" for name in deployment.worker_tmps]
        return all(" ready." in log.read_text(errors="replace") for log in logs)

    processes.wait_for("both Celery workers to be ready", workers_ready, 180, interval=2)
    processes.check_alive()
