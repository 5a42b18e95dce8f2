"""End to end: a list queued with collect_results=True, its outcomes counted by the results sensor,
through real Airflow (SQLite) against the Fuse sandbox on loopback.

The receiver is not started here: a stand-in stores each call's outcome in the SQLite results table,
as the receiver would — after checking the token in the call's ``result_url`` with the signing key.
So the tokens a real run signed are what decides where each outcome lands. The sandbox's clock all
but stands still, so it makes no callbacks of its own; the test decides when outcomes "arrive".
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import airflow
import pytest

from airflow_provider_fuse.calls import CallDetails, CallStatus
from airflow_provider_fuse.results.table import ResultsTable
from airflow_provider_fuse.results.tokens import verify
from airflow_provider_fuse.sandbox import FuseSandbox

GUARDED = tuple(int(part) for part in airflow.__version__.split(".")[:2]) >= (3, 3)

ANSWERS = ("6175551234", "6175551235")
NEVER_ANSWERS = "6175551239"
RESULTS_CONN = "fuse_results_default"
TABLE = "fuse_call_results"
TRIGGER = "airflow_provider_fuse.triggers.campaign_results.FuseCampaignResultsTrigger"


@pytest.fixture
def still_sandbox() -> Iterator[FuseSandbox]:
    """Calls stay queued: the sandbox makes no callbacks, the stand-in decides each outcome."""
    with FuseSandbox(time_scale=0.001) as running:
        yield running


@contextlib.contextmanager
def answering(status: int) -> Iterator[str]:
    """A loopback HTTP server that answers every request ``status`` and stores nothing; yields its
    base URL."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Answer(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def results(airflow_env, tmp_path, monkeypatch) -> Iterator[dict[str, str]]:
    """The [fuse] options of a run (a fresh key; a loopback base URL whose server answers the check
    before dialing 400, as the receiver does, and stores nothing; a SQLite results table in the
    test's directory); the same connection in this process, for the stand-in."""
    database = tmp_path / "results.db"
    monkeypatch.setenv(f"AIRFLOW_CONN_{RESULTS_CONN.upper()}", f"sqlite://{database}")
    with answering(400) as base:
        yield {
            "AIRFLOW__FUSE__RESULTS_BASE_URL": base,
            "AIRFLOW__FUSE__RESULTS_SIGNING_KEY": secrets.token_urlsafe(36),
            f"AIRFLOW_CONN_{RESULTS_CONN.upper()}": f"sqlite://{database}",
        }


@pytest.fixture
def contacts(tmp_path: Path) -> Path:
    path = tmp_path / "contacts.csv"
    path.write_text(
        "destination,first_name\n" + "".join(f"{phone},Ada\n" for phone in (*ANSWERS, NEVER_ANSWERS))
    )
    return path


def airflow_db(airflow_env, query: str, *parameters: object) -> list[tuple]:
    for _ in range(50):
        try:
            with contextlib.closing(sqlite3.connect(airflow_env.home / "airflow.db", timeout=5)) as db:
                return db.execute(query, parameters).fetchall()
        except sqlite3.OperationalError:  # the run holds a write lock
            time.sleep(0.1)
    raise AssertionError("Airflow's database stayed locked")


def triggers(airflow_env) -> list[tuple[str, str]]:
    return airflow_db(airflow_env, "SELECT classpath, kwargs FROM trigger ORDER BY id")


def xcom(airflow_env, dag_id: str, run_id: str, task_id: str, key: str) -> object:
    rows = airflow_db(
        airflow_env,
        "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = ?",
        dag_id,
        run_id,
        task_id,
        key,
    )
    return json.loads(rows[0][0]) if rows else None


@contextlib.contextmanager
def stand_in_receiver(
    sandbox: FuseSandbox,
    key: str,
    *,
    when: Callable[[], bool] = lambda: True,
    store: int = 3,
    calls: int = 3,
    skip: frozenset[str] = frozenset(),
) -> Iterator[list]:
    """Once ``when()`` holds and the sandbox has ``calls`` calls, store ``store`` outcomes as the
    receiver would: the token of each call's ``result_url`` verified, then its outcome (completed;
    failed for the number that never answers) stored for the upload part the token names. Calls
    whose ``result_url`` is in ``skip`` (an earlier campaign's) are left alone.

    Yields the upload parts the tokens named, in the order stored.
    """
    parts: list = []
    done = threading.Event()
    failures: list[BaseException] = []

    def receive() -> None:
        table = ResultsTable(RESULTS_CONN, TABLE)
        try:
            while not done.is_set():
                queued = sandbox.calls()
                if len(queued) == calls and when():
                    break
                done.wait(0.1)
            else:
                return
            fresh = [call for call in queued if call.result_url not in skip]
            for call in sorted(fresh, key=lambda call: call.destination)[:store]:
                token = call.result_url.rpartition("/fuse/results/")[2]
                part = verify(token, key, now=time.time())
                status = "failed" if call.destination.endswith("9") else "completed"
                details = CallDetails(
                    status=CallStatus(status), attempts=1, max_attempts=1, phone_number=call.destination
                )
                table.store(part, details, received=time.time())
                parts.append(part)
        except BaseException as error:  # reported by the test, not lost in the thread
            failures.append(error)
        finally:
            table.close()

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    try:
        yield parts
    finally:
        done.set()
        thread.join(timeout=10)
        assert not failures, failures


def test_outcomes_come_back_and_the_deferred_sensor_counts_them(
    airflow_env, still_sandbox, results, contacts
):
    sandbox, key = still_sandbox, results["AIRFLOW__FUSE__RESULTS_SIGNING_KEY"]
    dag_id = "e2e_campaign_results_deferrable"
    before = len(triggers(airflow_env))
    # Outcomes arrive only once the sensor has deferred: the trigger must be what sees them.
    deferred = lambda: len(triggers(airflow_env)) > before  # noqa: E731
    with stand_in_receiver(sandbox, key, when=deferred) as parts:
        run = airflow_env.dags_test(
            dag_id, connection=sandbox.connection_json(), conf={"csv_path": str(contacts)}, env=results
        )
    waited = airflow_env.last_run(dag_id, run.output, task_id="wait_for_outcomes")
    assert (run.dag_state, waited.task_state, waited.try_number) == ("success", "success", 1), run.output[
        -4000:
    ]
    assert waited.xcom == {
        "calls_queued": 3,
        "completed": 2,
        "failed": 1,
        "canceled": 0,
        "rejected": 0,
        "other": 0,
        "missing": 0,
    }

    # It deferred (the trigger row is Airflow's record of it, whatever its log says), and the trigger
    # counted in the triggerer's place while no task ran.
    new = triggers(airflow_env)[before:]
    assert [classpath for classpath, _ in new] == [TRIGGER]
    assert '"results_conn_id": "fuse_results_default"' in new[0][1]
    assert "Fuse results of queue_calls: 3 of 3 calls in" in run.output
    assert "3 queued → 2 completed, 1 failed" in run.output

    # Each call's token named this task instance's only part, of three rows.
    assert {(p.dag_id, p.run_id, p.task_id, p.map_index, p.part, p.rows) for p in parts} == {
        (dag_id, waited.run_id, "queue_calls", -1, 0, 3)
    }
    # The bulk task's record for the sensor: counts and times, no number, no token, no key.
    record = xcom(airflow_env, dag_id, waited.run_id, "queue_calls", "fuse_results")
    assert record["calls_queued"] == 3
    assert record["window_end"] is None
    rendered = airflow_db(
        airflow_env, "SELECT rendered_fields FROM rendered_task_instance_fields WHERE dag_id = ?", dag_id
    )
    stored = json.dumps([record, waited.xcom, new, rendered])
    tokens = [call.result_url.rpartition("/")[2] for call in sandbox.calls()]
    for secret in (key, *tokens, *ANSWERS, NEVER_ANSWERS):
        assert secret not in stored


def test_the_poking_sensor_ends_after_the_window_counting_what_never_came(
    airflow_env, still_sandbox, results, contacts
):
    sandbox, key = still_sandbox, results["AIRFLOW__FUSE__RESULTS_SIGNING_KEY"]
    dag_id = "e2e_campaign_results_deadline"
    before = len(triggers(airflow_env))
    with stand_in_receiver(sandbox, key, store=2):
        started = time.monotonic()
        run = airflow_env.dags_test(
            dag_id, connection=sandbox.connection_json(), conf={"csv_path": str(contacts)}, env=results
        )
    waited = airflow_env.last_run(dag_id, run.output, task_id="wait_for_outcomes")
    assert (run.dag_state, waited.task_state) == ("success", "success"), run.output[-4000:]
    assert waited.xcom == {
        "calls_queued": 3,
        "completed": 2,
        "failed": 0,
        "canceled": 0,
        "rejected": 0,
        "other": 0,
        "missing": 1,
    }
    assert time.monotonic() - started >= 10  # the dialing timeout, from the upload
    assert "2 of 3 calls in; waiting until" in run.output  # poked while the window was open
    assert "1 of 3 calls have no outcome after the dialing window and grace period" in run.output
    assert len(triggers(airflow_env)) == before  # it poked: no trigger was recorded


def test_the_tokens_and_the_key_are_masked_in_task_logs(airflow_env, still_sandbox, results, contacts):
    """`airflow tasks test` runs with secret masking on; the DAG's operator logs what it sends."""
    sandbox, key = still_sandbox, results["AIRFLOW__FUSE__RESULTS_SIGNING_KEY"]
    result = airflow_env.run(
        "tasks",
        "test",
        "e2e_campaign_results_leaky",
        "queue_calls",
        "-t",
        json.dumps({"csv_path": str(contacts)}),
        connection=sandbox.connection_json(),
        env=results,
        fresh=True,
    )
    logs = result.stdout + result.stderr
    for log_file in (airflow_env.home / "logs").rglob("*"):
        if log_file.is_file():
            logs += log_file.read_text(errors="replace")
    (call, *_) = sandbox.calls()
    base = results["AIRFLOW__FUSE__RESULTS_BASE_URL"]
    assert f"LEAK result_url={base}/fuse/results/*** key=***" in logs, logs[-4000:]
    token = call.result_url.rpartition("/")[2]
    assert verify(token, key, now=time.time()).task_id == "queue_calls"
    assert token not in logs
    assert key not in logs


def test_a_mapped_bulk_task_is_waited_for_across_its_map_indexes(
    airflow_env, still_sandbox, results, tmp_path
):
    sandbox, key = still_sandbox, results["AIRFLOW__FUSE__RESULTS_SIGNING_KEY"]
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text(f"destination\n{ANSWERS[0]}\n{NEVER_ANSWERS}\n")
    second.write_text(f"destination\n{ANSWERS[1]}\n")
    dag_id = "e2e_campaign_results_mapped"
    with stand_in_receiver(sandbox, key) as parts:
        run = airflow_env.dags_test(
            dag_id,
            connection=sandbox.connection_json(),
            conf={"csv_paths": [str(first), str(second)]},
            env=results,
        )
    waited = airflow_env.last_run(dag_id, run.output, task_id="wait_for_outcomes")
    assert (run.dag_state, waited.task_state) == ("success", "success"), run.output[-4000:]
    assert waited.xcom == {
        "calls_queued": 3,
        "completed": 2,
        "failed": 1,
        "canceled": 0,
        "rejected": 0,
        "other": 0,
        "missing": 0,
    }
    # Each map index signed its own tokens: its index, and the rows of its own list.
    assert sorted((part.map_index, part.part, part.rows) for part in parts) == [
        (0, 0, 2),
        (0, 0, 2),
        (1, 0, 1),
    ]


# --- A run id used again: the sandbox dials, the real receiver stores, the sensor counts ---------------


class _TaskInstance:
    """What the bulk operator and the sensor read of a task instance: ids and XComs (kept here, as
    Airflow keeps them per task instance; a deleted run's go with it)."""

    def __init__(self, run_id: str, xcoms: dict) -> None:
        self.dag_id, self.run_id, self.task_id, self.map_index = "campaign", run_id, "queue_calls", -1
        self.xcoms = xcoms

    def xcom_push(self, key, value):
        self.xcoms[key] = json.loads(json.dumps(value))

    def xcom_pull(self, task_ids=None, key="return_value", **kwargs):
        return [self.xcoms.get(key)]


def _delivered(sandbox: FuseSandbox, calls: int) -> list:
    """The sandbox's calls once ``calls`` of them had their outcome POSTed (bounded: 60 s)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = [call for call in sandbox.calls() if call.result_delivery in ("delivered", "failed")]
        if len(done) >= calls:
            return sandbox.calls()
        time.sleep(0.2)
    raise AssertionError(f"{calls} outcomes were not POSTed within 60 s")


def test_a_run_id_used_again_is_a_new_campaign_and_a_clear_is_the_same(tmp_path, monkeypatch, contacts):
    """The sandbox (as Fuse) dials and POSTs each outcome to the real receiver, which stores it in a
    real SQLite table. A run deleted and triggered again under the same run id has no ledger and no
    XComs: its list is dialed again, every outcome is stored (none refused 409) and the sensor counts
    only its own. A clear of that run is answered from the ledger: same campaign, same times."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from airflow_provider_fuse.operators.fuse import FuseBulkQueueOperator
    from airflow_provider_fuse.results.config import ResultsConfig
    from airflow_provider_fuse.results.receiver import create_app
    from airflow_provider_fuse.sensors.fuse import FuseCampaignResultsSensor
    from tests.helpers import MemoryStore, serving

    key = secrets.token_urlsafe(36)
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_SIGNING_KEY", key)
    monkeypatch.setenv(f"AIRFLOW_CONN_{RESULTS_CONN.upper()}", f"sqlite://{tmp_path / 'results.db'}")
    app = Starlette(routes=[Mount("/fuse", app=create_app(load_config=ResultsConfig.load))])
    run_id = "manual__2026-11-29T02:00:00+00:00"

    def bulk(context: dict) -> int:
        task = FuseBulkQueueOperator(
            task_id="queue_calls",
            application_id=101,
            deployment_id=202,
            csv_path=str(contacts),
            collect_results=True,
        )
        return task.execute(context)

    def counted(ti: _TaskInstance) -> dict:
        sensor = FuseCampaignResultsSensor(task_id="wait_for_outcomes", bulk_task_id="queue_calls")
        result = sensor.poke({"ti": ti})
        assert result, "the sensor is still waiting"
        return result.xcom_value

    with FuseSandbox(time_scale=600) as sandbox, serving(monkeypatch, app) as base:
        monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_BASE_URL", base)
        monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", sandbox.connection_json())
        first_xcoms: dict = {}
        assert bulk({"ti": _TaskInstance(run_id, first_xcoms), "task_state_store": MemoryStore()}) == 3
        _delivered(sandbox, 3)
        assert counted(_TaskInstance(run_id, first_xcoms))["completed"] == 2

        # Deleted and triggered again: a new ledger, no XComs, the same run id.
        store, second_xcoms = MemoryStore(), {}
        assert bulk({"ti": _TaskInstance(run_id, second_xcoms), "task_state_store": store}) == 3
        calls = _delivered(sandbox, 6)
        assert [call.result_status_code for call in calls] == [200] * 6, [
            call.result_detail for call in calls
        ]
        summary = counted(_TaskInstance(run_id, second_xcoms))
        assert summary == {
            "calls_queued": 3,
            "completed": 2,
            "failed": 1,
            "canceled": 0,
            "rejected": 0,
            "other": 0,
            "missing": 0,
        }
        campaigns = {
            verify(call.result_url.rpartition("/")[2], key, now=time.time()).campaign for call in calls
        }
        assert campaigns == {
            first_xcoms["fuse_results"]["campaign"],
            second_xcoms["fuse_results"]["campaign"],
        }
        assert len(campaigns) == 2

        # A clear of the second run: answered from its ledger, nothing dialed, the same record.
        cleared: dict = {}
        assert bulk({"ti": _TaskInstance(run_id, cleared), "task_state_store": store}) == 3
        assert len(sandbox.calls()) == 6
        assert cleared["fuse_results"] == second_xcoms["fuse_results"]
        assert counted(_TaskInstance(run_id, cleared)) == summary


# --- The recovery after an unknown outcome: mark success, and the sensor still counts ---------------------


@pytest.mark.skipif(
    not GUARDED,
    reason="on Airflow 3.1 `airflow tasks test` of the sensor, in a run changed through the REST API, "
    "fails as its in-process execution API refuses to start the task instance (not the provider's code)",
)
def test_after_an_unknown_outcome_marked_success_the_sensor_still_counts(
    airflow_env, still_sandbox, results, contacts, tmp_path
):
    """docs/safety.md: look in Fuse, mark the task success. Fuse queued the list and the answer was
    lost: the task failed (unknown outcome). Marked success through the REST API, it keeps the
    `fuse_results` XCom it pushed before sending, and the sensor counts the outcomes arriving."""
    sandbox, key = still_sandbox, results["AIRFLOW__FUSE__RESULTS_SIGNING_KEY"]
    dag_id = "e2e_campaign_results_deadline"
    sandbox.inject_fault(endpoint="bulk_queue", count=5, drop=True, after_queue=True)
    run = airflow_env.dags_test(
        dag_id, connection=sandbox.connection_json(), conf={"csv_path": str(contacts)}, env=results
    )
    assert (run.task_state, run.try_number) == ("failed", 1), run.output[-4000:]
    assert len(sandbox.calls()) == 3  # Fuse has them
    record = xcom(airflow_env, dag_id, run.run_id, "queue_calls", "fuse_results")
    assert (record["confirmed"], record["calls_queued"], record["rows"]) == (False, None, 3)

    mark_success(airflow_env, results, tmp_path, dag_id, run.run_id)
    assert airflow_env.task_states(dag_id, run.run_id)["queue_calls"] == "success"
    assert xcom(airflow_env, dag_id, run.run_id, "queue_calls", "fuse_results") == record

    with stand_in_receiver(sandbox, key, store=3):
        waited = airflow_env.run(
            "tasks",
            "test",
            dag_id,
            "wait_for_outcomes",
            run.run_id,
            connection=sandbox.connection_json(),
            env=results,
        )
    output = waited.stdout + waited.stderr
    assert "3 queued → 2 completed, 1 failed" in output, output[-4000:]
    assert "left no 'fuse_results' XCom" not in output


@pytest.mark.skipif(not GUARDED, reason="the duplicate guard (which refuses the clear) needs Airflow >= 3.3")
def test_a_clear_refused_after_an_unknown_outcome_keeps_the_results_loop(
    airflow_env, still_sandbox, results, contacts, tmp_path
):
    """Unknown outcome, then a clear before anyone looked in Fuse: the new try starts with its XComs
    wiped, and the duplicate guard refuses it. The refusal pushes `fuse_results` again from the
    ledger (the same campaign, rows and times), so the mark success that follows still leads the
    sensor to count the outcomes arriving. Nothing is dialed twice."""
    sandbox, key = still_sandbox, results["AIRFLOW__FUSE__RESULTS_SIGNING_KEY"]
    dag_id = "e2e_campaign_results_deadline"
    sandbox.inject_fault(endpoint="bulk_queue", count=5, drop=True, after_queue=True)
    connection = sandbox.connection_json()
    run = airflow_env.dags_test(dag_id, connection=connection, conf={"csv_path": str(contacts)}, env=results)
    assert (run.task_state, run.try_number) == ("failed", 1), run.output[-4000:]
    record = xcom(airflow_env, dag_id, run.run_id, "queue_calls", "fuse_results")
    assert (record["confirmed"], record["calls_queued"], record["rows"]) == (False, None, 3)

    (logical_date,) = airflow_db(
        airflow_env, "SELECT logical_date FROM dag_run WHERE run_id = ?", run.run_id
    )[0]
    cleared = airflow_env.run(
        "tasks",
        "clear",
        dag_id,
        "-t",
        "queue_calls",
        "-s",
        str(logical_date),
        "-e",
        str(logical_date),
        "-y",
        connection=connection,
        env=results,
    )
    assert cleared.returncode == 0, (cleared.stdout + cleared.stderr)[-3000:]
    refused = airflow_env.run(
        "tasks", "test", dag_id, "queue_calls", run.run_id, connection=connection, env=results
    )
    output = refused.stdout + refused.stderr
    assert "the outcome of an earlier try is unknown" in output, output[-4000:]
    assert len(sandbox.uploads()) == 1  # nothing sent again
    assert len(sandbox.calls()) == 3
    assert xcom(airflow_env, dag_id, run.run_id, "queue_calls", "fuse_results") == record

    mark_success(airflow_env, results, tmp_path, dag_id, run.run_id)
    with stand_in_receiver(sandbox, key, store=3):
        waited = airflow_env.run(
            "tasks", "test", dag_id, "wait_for_outcomes", run.run_id, connection=connection, env=results
        )
    output = waited.stdout + waited.stderr
    assert "3 queued → 2 completed, 1 failed" in output, output[-4000:]
    assert "left no 'fuse_results' XCom" not in output


def mark_success(airflow_env, results: dict[str, str], tmp_path: Path, dag_id: str, run_id: str) -> None:
    """Mark the run's bulk task success as an operator would: through the REST API of a real
    api-server (stopped afterwards)."""
    import httpx

    from tests.e2e.api_server import ApiServer

    password = secrets.token_urlsafe(16)
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"admin": password}))
    env = {
        **airflow_env.env,
        **results,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
    }
    server = ApiServer(env).start()
    try:
        token = httpx.post(
            f"{server.url}/auth/token", json={"username": "admin", "password": password}, timeout=30
        ).json()["access_token"]
        answer = httpx.patch(
            f"{server.url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/queue_calls",
            json={"new_state": "success"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        # The sensor was left upstream_failed by the failed upload: cleared, as docs/safety.md says,
        # it runs again (Airflow 3.1's execution API refuses to start it otherwise).
        cleared = httpx.post(
            f"{server.url}/api/v2/dags/{dag_id}/clearTaskInstances",
            json={
                "dry_run": False,
                "dag_run_id": run_id,
                "task_ids": ["wait_for_outcomes"],
                "only_failed": False,
            },
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert cleared.status_code == 200, cleared.text
    finally:
        server.close()  # stops it and removes its captured output
    assert airflow_env.task_states(dag_id, run_id)["queue_calls"] == "success"


# --- A receiver that stores nothing: never green with every outcome missing (issue 18) ------------------


def test_no_outcome_at_all_fails_the_poking_sensor_after_the_window(
    airflow_env, still_sandbox, results, contacts
):
    # The receiver takes the token but no outcome ever comes (Fuse did not report, or could not
    # reach it): the run must not end green with nothing in.
    sandbox = still_sandbox
    dag_id = "e2e_campaign_results_deadline"
    run = airflow_env.dags_test(
        dag_id, connection=sandbox.connection_json(), conf={"csv_path": str(contacts)}, env=results
    )
    waited = airflow_env.last_run(dag_id, run.output, task_id="wait_for_outcomes")
    assert (run.dag_state, waited.task_state) == ("failed", "failed"), run.output[-4000:]
    assert "No call outcome arrived for any of the 3 calls queue_calls queued" in run.output
    assert "None of their outcomes was stored" in run.output
    assert results["AIRFLOW__FUSE__RESULTS_SIGNING_KEY"] not in run.output


def test_a_loopback_results_base_url_where_nothing_listens_stops_the_list_before_it_is_dialed(
    airflow_env, still_sandbox, results, contacts
):
    # A wrong port: no one could post an outcome there (newcomer run 19).
    sandbox = still_sandbox
    dag_id = "e2e_campaign_results_deadline"
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = airflow_env.dags_test(
        dag_id,
        connection=sandbox.connection_json(),
        conf={"csv_path": str(contacts)},
        env={**results, "AIRFLOW__FUSE__RESULTS_BASE_URL": f"http://127.0.0.1:{port}"},
    )
    queued = airflow_env.last_run(dag_id, run.output)
    assert (run.dag_state, queued.task_state) == ("failed", "failed"), run.output[-4000:]
    assert "Nothing was sent to Fuse: nothing listens at" in run.output
    assert "[fuse] results_base_url" in run.output
    assert sandbox.calls() == []  # nobody was dialed


def test_nothing_at_the_result_url_stops_the_list_before_it_is_dialed(
    airflow_env, still_sandbox, results, contacts
):
    sandbox = still_sandbox
    dag_id = "e2e_campaign_results_deadline"
    with answering(404) as base:  # an api-server without the plugin
        run = airflow_env.dags_test(
            dag_id,
            connection=sandbox.connection_json(),
            conf={"csv_path": str(contacts)},
            env={**results, "AIRFLOW__FUSE__RESULTS_BASE_URL": base},
        )
    queued = airflow_env.last_run(dag_id, run.output)
    assert (run.dag_state, queued.task_state) == ("failed", "failed"), run.output[-4000:]
    assert "Nothing was sent to Fuse: nothing at" in run.output
    assert "[fuse] results_base_url" in run.output
    assert sandbox.calls() == []  # nobody was dialed


def test_a_results_base_url_ending_in_fuse_is_refused_before_anything_is_sent(
    airflow_env, still_sandbox, results, contacts
):
    # The newcomer's mistake: the base URL with /fuse, so outcomes went to /fuse/fuse/results/.
    sandbox = still_sandbox
    dag_id = "e2e_campaign_results_deadline"
    env = {**results, "AIRFLOW__FUSE__RESULTS_BASE_URL": results["AIRFLOW__FUSE__RESULTS_BASE_URL"] + "/fuse"}
    run = airflow_env.dags_test(
        dag_id, connection=sandbox.connection_json(), conf={"csv_path": str(contacts)}, env=env
    )
    queued = airflow_env.last_run(dag_id, run.output)
    assert (run.dag_state, queued.task_state) == ("failed", "failed"), run.output[-4000:]
    assert "[fuse] results_base_url must be the api-server's root URL" in run.output
    assert sandbox.calls() == []
