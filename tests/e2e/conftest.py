"""Real Airflow for the end-to-end tests: a migrated SQLite AIRFLOW_HOME, and runs of `airflow` itself.

Each run is a process of its own running Airflow's CLI (``airflow dags test`` / ``airflow tasks
test``), as a user would run it; the Fuse sandbox runs in the test process, on loopback, so the tests
read what it received. Runs are forked from a process that has already imported Airflow
(``warm_airflow.py``), which makes one about seven times cheaper than starting ``airflow`` afresh;
``fresh=True`` starts the ``airflow`` script itself, for the tests about the CLI process (secret
masking in ``airflow tasks test``, exit codes), and ``FUSE_E2E_FRESH=1`` does so for every run.

Every pytest-xdist worker gets its own AIRFLOW_HOME (``tmp_path_factory`` is per worker) and every
sandbox its own free port, so the cases can run in parallel.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from airflow_provider_fuse.sandbox import FuseSandbox
from harness import AirflowApi, AirflowServices, ApiRefused, ApiServer, free_port, wait_until
from tests.e2e.warm_airflow import WarmAirflow

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")


@dataclass(frozen=True)
class TaskRun:
    """How one task of one DAG run ended, and everything the command printed."""

    dag_state: str | None
    task_state: str | None
    try_number: int | None
    xcom: object
    output: str
    run_id: str | None = None


class AirflowEnv:
    """A migrated AIRFLOW_HOME whose dags folder holds the example DAG and the e2e DAGs.

    The bulk example's exports go to ``exports/`` in the home unless a test points
    ``AIRFLOW_VAR_FUSE_EXAMPLE_EXPORT_BASE`` elsewhere, so no run writes to the shared temp directory.
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self.dags = home / "dags"
        base = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        self.env = {
            **base,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_VAR_FUSE_EXAMPLE_EXPORT_BASE": (home / "exports").as_uri(),
        }
        self.warm: WarmAirflow | None = None

    def run(
        self,
        *args: str,
        connection: str,
        timeout: float = 240,
        env: Mapping[str, str] | None = None,
        fresh: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``airflow`` with ``env`` (e.g. ``AIRFLOW_VAR_*`` Variables) on top of the home's.

        Forked from the warm process unless ``fresh`` is asked for, or ``env`` changes Airflow's
        configuration (``AIRFLOW__*``, read at import): then the ``airflow`` script starts afresh.
        """
        extra = {**(env or {}), "AIRFLOW_CONN_FUSE_DEFAULT": connection}
        configures = any(key.startswith("AIRFLOW__") for key in extra)
        if self.warm is not None and not fresh and not configures:
            return self.warm.run(args, env=extra, timeout=timeout)
        return subprocess.run(
            [AIRFLOW, *args],
            env={**self.env, **extra},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen(self, *args: str, connection: str) -> subprocess.Popen[str]:
        env = {**self.env, "AIRFLOW_CONN_FUSE_DEFAULT": connection}
        return subprocess.Popen(
            [AIRFLOW, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    def dags_test(
        self,
        dag_id: str,
        *,
        connection: str,
        conf: dict | None = None,
        logical_date: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> TaskRun:
        """``airflow dags test`` one DAG and report its ``queue_calls`` task."""
        args = ["dags", "test", dag_id] + ([logical_date] if logical_date else [])
        args += ["-c", json.dumps(conf)] if conf else []
        result = self.run(*args, connection=connection, env=env)
        return self.last_run(dag_id, result.stdout + result.stderr)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """Every task instance of one DAG run, by task id, and its state."""
        with sqlite3.connect(self.home / "airflow.db") as db:
            rows = db.execute(
                "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", (dag_id, run_id)
            ).fetchall()
        return dict(rows)

    def last_run(
        self, dag_id: str, output: str, task_id: str = "queue_calls", run_id: str | None = None
    ) -> TaskRun:
        """How ``task_id`` ended in the DAG's latest run (or in ``run_id``)."""
        with sqlite3.connect(self.home / "airflow.db") as db:
            row = db.execute(
                "SELECT run_id, state FROM dag_run WHERE dag_id = ? AND run_id = coalesce(?, run_id) "
                "ORDER BY id DESC LIMIT 1",
                (dag_id, run_id),
            ).fetchone()
            if row is None:
                return TaskRun(None, None, None, None, output)
            run_id, dag_state = row
            task = db.execute(
                "SELECT state, try_number FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id = ?",
                (dag_id, run_id, task_id),
            ).fetchone()
            xcom = db.execute(
                "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? "
                "AND key = 'return_value'",
                (dag_id, run_id, task_id),
            ).fetchone()
        value = xcom[0] if xcom else None
        if isinstance(value, (str, bytes)):
            value = json.loads(value)
        return TaskRun(dag_state, task[0] if task else None, task[1] if task else None, value, output, run_id)


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowEnv]:
    env = AirflowEnv(tmp_path_factory.mktemp("airflow-home"))
    env.dags.mkdir()
    for dag_file in [*(ROOT / "example_dags").glob("*.py"), *(ROOT / "tests" / "e2e" / "dags").glob("*.py")]:
        shutil.copy(dag_file, env.dags)
    if os.environ.get("FUSE_E2E_FRESH", "") in ("", "0"):
        env.warm = WarmAirflow(env.env, tmp_path_factory.mktemp("warm-airflow"))
    result = env.run("db", "migrate", connection="{}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    yield env
    if env.warm is not None:
        env.warm.close()


@dataclass
class LiveAirflow:
    """Airflow as a deployment runs it, on this machine: an api-server, a scheduler (LocalExecutor),
    a triggerer and a dag-processor on an AIRFLOW_HOME of their own (SQLite), with the e2e DAGs;
    ``fuse_default`` points at :attr:`sandbox`, in every component's environment.

    Runs are triggered and read through :attr:`api` (as the simple auth manager's ``admin``), and a
    task's question is answered there as a person would in Required Actions. The user ``outsider``
    (a viewer the deployment's auth manager refuses ``e2e_campaign_results_deferrable``; password in
    ``home/passwords.json``) is for the campaign view. ``[fuse]`` points the results receiver at the
    api-server, its table in ``home/fuse_results.db`` (SQLite).
    """

    api: AirflowApi
    server: ApiServer
    services: AirflowServices
    sandbox: FuseSandbox
    home: Path

    def run(self, dag_id: str, conf: Mapping[str, object] | None = None, timeout: float = 300) -> str:
        """Trigger a run and wait until it has finished; its state."""
        run_id = self.api.trigger(dag_id, conf)
        return self.api.wait_for_run(dag_id, run_id, timeout, alive=self.services.check_alive)

    def logs(self, dag_id: str, run_id: str, task_id: str) -> str:
        """Every try's log of one task, in order."""
        ti = self.api.task_instances(dag_id, run_id)[task_id]
        tries = range(1, int(ti["try_number"] or 0) + 1)
        return "\n".join(self.api.task_log(dag_id, run_id, task_id, number) for number in tries)


@pytest.fixture(scope="session")
def live_airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveAirflow]:
    """:class:`LiveAirflow`, started on first use (one per pytest worker) and stopped at the end."""
    home = tmp_path_factory.mktemp("live-airflow-home")
    (home / "dags").mkdir()
    e2e_dags = ROOT / "tests" / "e2e" / "dags"
    for dag_file in [
        *e2e_dags.glob("e2e_decisions*.py"),
        e2e_dags / "e2e_campaign_results.py",
        e2e_dags / "e2e_notifier.py",
    ]:
        shutil.copy(dag_file, home / "dags")
    password = secrets.token_urlsafe(16)
    passwords = {"admin": password, "outsider": secrets.token_urlsafe(16)}
    (home / "passwords.json").write_text(json.dumps(passwords))
    from tests.e2e.test_campaign_view_auth import AUTH_MANAGER

    (home / "auth").mkdir()
    (home / "auth" / "one_dag_refused.py").write_text(AUTH_MANAGER)
    base = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    port = free_port()
    with FuseSandbox() as sandbox:
        env = AirflowServices.environment(
            {
                **base,
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,outsider:viewer",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
                "AIRFLOW__CORE__AUTH_MANAGER": "one_dag_refused.OneDagRefused",
                "PYTHONPATH": str(home / "auth"),
                "AIRFLOW__FUSE__RESULTS_BASE_URL": f"http://127.0.0.1:{port}",
                "AIRFLOW__FUSE__RESULTS_SIGNING_KEY": secrets.token_urlsafe(36),
                "AIRFLOW_CONN_FUSE_RESULTS_DEFAULT": f"sqlite://{home / 'fuse_results.db'}",
                "AIRFLOW_CONN_FUSE_DEFAULT": sandbox.connection_json(),
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            },
            port,
            secrets.token_urlsafe(32),
        )
        migrated = subprocess.run(
            [AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=240, check=False
        )
        assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
        server = ApiServer(env, port=port, log_path=home / "api-server.log")
        with AirflowServices(env, home / "logs") as services, server:
            api = AirflowApi(server.url, "admin", password).login()
            wait_until(
                "the dag-processor to parse the e2e DAGs",
                lambda: api.call("GET", "/api/v2/dags", dag_id_pattern="e2e_")["total_entries"] > 0,
                180,
                alive=services.check_alive,
                retry_on=(OSError, ApiRefused),
            )
            yield LiveAirflow(api, server, services, sandbox, home)


@pytest.fixture
def live_sandbox(live_airflow: LiveAirflow) -> FuseSandbox:
    """The live Airflow's Fuse sandbox, with nothing received yet (and no fault pending)."""
    live_airflow.sandbox.reset()
    return live_airflow.sandbox


@pytest.fixture
def sandbox() -> Iterator[FuseSandbox]:
    """A Fuse sandbox on a free loopback port, for one test (stopped afterwards)."""
    with FuseSandbox() as running:
        yield running


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)
