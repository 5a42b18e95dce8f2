"""End to end: one call queued, waited for (poke and deferrable) and canceled through real Airflow.

Real Airflow (SQLite), real HTTP, the Fuse sandbox on loopback with its clock sped up, so a call's
lifecycle (ring 5 s, talk 30 s; a number ending in 9 never answers) takes seconds.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator

import airflow
import pytest

from airflow_provider_fuse.hooks.fuse import FuseHook
from airflow_provider_fuse.sandbox import FuseSandbox

ANSWERS = "6175551234"
NEVER_ANSWERS = "6175551239"
# The single-call example reads who to call from this Variable, never from conf or params.
CONTACT = {
    "AIRFLOW_VAR_FUSE_EXAMPLE_CONTACT": json.dumps({"phone_number": "6175550100", "first_name": "Ada"})
}


@pytest.fixture
def sandbox():
    # Ten sandbox seconds per real second: a completed call takes 3.5 s, an unanswered one 3 s. The
    # tests that must see a call in progress use still_sandbox instead.
    with FuseSandbox(time_scale=10) as running:
        yield running


@pytest.fixture
def still_sandbox():
    """A sandbox whose clock all but stands still: a call ends only when the test moves the clock."""
    with FuseSandbox(time_scale=0.001) as running:
        yield running


@contextlib.contextmanager
def clock_moves_after_each_poll(sandbox: FuseSandbox, *steps: float) -> Iterator[None]:
    """After the sensor's n-th question about the call, move the sandbox's clock ``steps[n-1]`` on.

    However slowly the machine starts the sensor or the trigger, each sees the call in the state
    the test chose: the outcome does not depend on how loaded the machine is.
    """
    done = threading.Event()

    def advance() -> None:
        # One step per question seen since the last step: on a loaded machine this thread may
        # notice two questions at once, and must not then take two steps before the next one.
        # A question counts once answered: a request is logged as it arrives, and moving the clock
        # before the sandbox has read the call's state would answer that very question ahead of time.
        moved, seen = 0, 0
        while not done.is_set() and moved < len(steps):
            polls = sum(
                request.path.startswith("/api/outbound/") and request.status_code is not None
                for request in sandbox.requests()
            )
            if polls > seen:
                sandbox.advance(steps[moved])
                moved, seen = moved + 1, polls
            else:
                done.wait(0.1)

    mover = threading.Thread(target=advance, daemon=True)
    mover.start()
    try:
        yield
    finally:
        done.set()
        mover.join(timeout=10)


def task_state(airflow_env, dag_id: str, task_id: str, run_id: str | None = None):
    return airflow_env.last_run(dag_id, "", task_id=task_id, run_id=run_id)


def triggers(airflow_env) -> list[tuple[str, str]]:
    with sqlite3.connect(airflow_env.home / "airflow.db") as db:
        return db.execute("SELECT classpath, kwargs FROM trigger").fetchall()


def rendered_fields(airflow_env, dag_id: str, task_id: str, run_id: str) -> str:
    with sqlite3.connect(airflow_env.home / "airflow.db") as db:
        (value,) = db.execute(
            "SELECT rendered_fields FROM rendered_task_instance_fields "
            "WHERE dag_id = ? AND task_id = ? AND run_id = ?",
            (dag_id, task_id, run_id),
        ).fetchone()
    return value


def queue_requests(sandbox: FuseSandbox) -> list:
    return [request for request in sandbox.requests() if request.path.endswith("/queue")]


@pytest.fixture(scope="module")
def example_run(airflow_env):
    """One run of the single-call example, with its contact in the Variable; and the call Fuse made."""
    with FuseSandbox(time_scale=600) as sandbox:
        run = airflow_env.dags_test(
            "example_fuse_queue_call", connection=sandbox.connection_json(), env=CONTACT
        )
        return run, sandbox.calls()


def test_the_example_queues_one_call_waits_and_reports(airflow_env, example_run):
    run, calls = example_run
    assert (run.dag_state, run.task_state) == ("success", None), run.output[-3000:]
    (call,) = calls
    queued = task_state(airflow_env, "example_fuse_queue_call", "queue_call", run.run_id)
    waited = task_state(airflow_env, "example_fuse_queue_call", "wait_for_outcome", run.run_id)
    assert queued.xcom == call.call_id
    assert waited.task_state == "success"
    assert waited.xcom["status"] == call.status == "completed"
    assert waited.xcom["call_id"] == call.call_id
    assert "phone_number" not in waited.xcom
    assert call.variables == {"first_name": "Ada", "reason": "appointment reminder"}
    assert (call.max_attempts, call.reattempt_wait) == (2, 300)
    stored = rendered_fields(airflow_env, "example_fuse_queue_call", "queue_call", run.run_id)
    assert "6175550100" not in stored
    assert "appointment reminder" not in stored
    assert task_state(airflow_env, "example_fuse_queue_call", "report", run.run_id).task_state == "success"


def test_the_example_keeps_the_contact_out_of_the_runs_conf_and_params(airflow_env, example_run):
    run, calls = example_run
    assert run.dag_state == "success", run.output[-3000:]
    (call,) = calls
    assert call.phone_number == "6175550100"
    with sqlite3.connect(airflow_env.home / "airflow.db") as db:
        (conf,) = db.execute("SELECT conf FROM dag_run WHERE run_id = ?", (run.run_id,)).fetchone()
        (serialized,) = db.execute(
            "SELECT data FROM serialized_dag WHERE dag_id = 'example_fuse_queue_call' "
            "ORDER BY rowid DESC LIMIT 1"
        ).fetchone()
    stored = f"{conf}{serialized}"
    assert '"deployment_id"' in stored  # the params were read
    assert "6175550100" not in stored
    assert "Ada" not in stored


def test_the_example_without_its_contact_variable_fails_before_anything_is_sent(airflow_env, sandbox):
    run = airflow_env.dags_test("example_fuse_queue_call", connection=sandbox.connection_json())
    queued = task_state(airflow_env, "example_fuse_queue_call", "queue_call")
    assert (run.dag_state, queued.task_state) == ("failed", "failed"), run.output[-3000:]
    assert "fuse_example_contact" in run.output
    assert sandbox.requests() == []


def test_the_deferrable_sensor_waits_in_the_trigger_not_a_worker(airflow_env, still_sandbox):
    sandbox = still_sandbox
    before = len(triggers(airflow_env))
    # Dialing when the sensor asks, connected when the trigger first asks, then completed.
    with clock_moves_after_each_poll(sandbox, 10, 120):
        run = airflow_env.dags_test(
            "e2e_call_deferrable",
            connection=sandbox.connection_json(),
            conf={"phone_number": ANSWERS, "name": "Grace Hopper"},
        )
    waited = task_state(airflow_env, "e2e_call_deferrable", "wait")
    assert (run.dag_state, waited.task_state, waited.try_number) == ("success", "success", 1), run.output[
        -3000:
    ]
    # The task process ended, deferred (the trigger row is Airflow's record of it, whatever Airflow's
    # log calls it), and the trigger polled until the call ended; the task then resumed.
    new = triggers(airflow_env)[before:]
    assert [classpath for classpath, _ in new] == [
        "airflow_provider_fuse.triggers.fuse.FuseCallStatusTrigger"
    ]
    kwargs = new[0][1]
    assert sandbox.developer_key not in kwargs
    assert sandbox.email not in kwargs
    assert '"fuse_conn_id": "fuse_default"' in kwargs
    assert "is connected" in run.output  # logged by the trigger while the task was not running
    (call,) = sandbox.calls()
    assert waited.xcom["status"] == call.status == "completed"
    assert waited.xcom["duration"] == 30
    assert ANSWERS not in json.dumps(waited.xcom)


def test_an_unanswered_call_fails_the_poking_sensor_without_retries(airflow_env, still_sandbox):
    sandbox = still_sandbox
    with clock_moves_after_each_poll(sandbox, 120):
        run = airflow_env.dags_test(
            "e2e_call_poke", connection=sandbox.connection_json(), conf={"phone_number": NEVER_ANSWERS}
        )
    waited = task_state(airflow_env, "e2e_call_poke", "wait")
    assert (waited.task_state, waited.try_number) == ("failed", 1), run.output[-3000:]
    (call,) = sandbox.calls()
    assert "Fuse call " + call.call_id + " ended failed, not completed" in run.output
    assert call.status == "failed"
    polls = [request for request in sandbox.requests() if request.path.startswith("/api/outbound/")]
    assert len(polls) >= 2  # it poked until the call ended


def test_an_unanswered_call_skips_the_deferrable_sensor_with_on_failure_status_skip(
    airflow_env, still_sandbox
):
    sandbox = still_sandbox
    with clock_moves_after_each_poll(sandbox, 120):
        run = airflow_env.dags_test(
            "e2e_call_deferrable_skip",
            connection=sandbox.connection_json(),
            conf={"phone_number": NEVER_ANSWERS},
        )
    waited = task_state(airflow_env, "e2e_call_deferrable_skip", "wait")
    assert waited.task_state == "skipped", run.output[-3000:]
    # It deferred: Airflow recorded a trigger for it (its log's wording is Airflow's, not ours).
    assert [classpath for classpath, _ in triggers(airflow_env)][-1:] == [
        "airflow_provider_fuse.triggers.fuse.FuseCallStatusTrigger"
    ]
    assert sandbox.calls()[0].status == "failed"


def test_the_stop_campaign_example_cancels_the_deployments_pending_calls(airflow_env, sandbox, monkeypatch):
    sandbox.add_deployment(101, 203)
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", sandbox.connection_json())
    hook = FuseHook()
    later = int(sandbox.now()) + 3600  # still waiting for their first attempt
    pending = [hook.queue_call(101, 202, f"617555010{index}", start_timestamp=later) for index in range(3)]
    other = hook.queue_call(101, 203, "6175550110", start_timestamp=later)
    run = airflow_env.dags_test("example_fuse_stop_campaign", connection=sandbox.connection_json())
    stopped = task_state(airflow_env, "example_fuse_stop_campaign", "cancel_pending_calls")
    assert (run.dag_state, stopped.task_state) == ("success", "success"), run.output[-3000:]
    assert [sandbox.call(call_id).status for call_id in pending] == ["canceled"] * 3
    assert sandbox.call(other).status == "queued"
    assert "Fuse canceled the pending calls of application 101 / deployment 202." in run.output


def test_a_rejection_fails_queue_call_once_in_fuses_words(airflow_env, sandbox):
    run = airflow_env.dags_test(
        "e2e_call_poke",
        connection=sandbox.connection_json(),
        conf={"phone_number": ANSWERS, "deployment_id": 999},
    )
    queued = task_state(airflow_env, "e2e_call_poke", "queue_call")
    assert (queued.task_state, queued.try_number) == ("failed", 1), run.output[-3000:]
    assert (
        "Fuse API answered 404: No deployment was found by that application id and deployment id."
        in run.output
    )
    assert len(queue_requests(sandbox)) == 1
    assert sandbox.calls() == []


def test_an_unknown_outcome_fails_once_and_the_call_is_not_made_twice(airflow_env, sandbox):
    sandbox.inject_fault(status=500, after_queue=True, endpoint="queue", count=5)
    run = airflow_env.dags_test(
        "e2e_call_poke", connection=sandbox.connection_json(), conf={"phone_number": ANSWERS}
    )
    queued = task_state(airflow_env, "e2e_call_poke", "queue_call")
    assert (queued.task_state, queued.try_number) == ("failed", 1), run.output[-3000:]
    assert "Fuse may have queued the call" in run.output
    assert len(queue_requests(sandbox)) == 1
    assert len(sandbox.calls()) == 1  # Fuse did queue it: a retry would have called twice


@pytest.mark.skipif(
    tuple(int(part) for part in airflow.__version__.split(".")[:2]) < (3, 3),
    reason="the duplicate guard needs Airflow >= 3.3",
)
def test_a_retry_after_the_call_was_queued_returns_the_recorded_call_id(airflow_env, sandbox):
    run = airflow_env.dags_test(
        "e2e_call_crash_after_queued", connection=sandbox.connection_json(), conf={"phone_number": ANSWERS}
    )
    queued = task_state(airflow_env, "e2e_call_crash_after_queued", "queue_call")
    assert (queued.task_state, queued.try_number) == ("success", 2), run.output[-3000:]
    (call,) = sandbox.calls()
    assert queued.xcom == call.call_id
    assert len(queue_requests(sandbox)) == 1
    assert "already queued this call" in run.output


def test_the_number_and_parameters_are_masked_in_task_logs(airflow_env, sandbox):
    """`airflow tasks test` runs with secret masking on; the DAG's operator logs what it rendered."""
    result = airflow_env.run(
        "tasks",
        "test",
        "e2e_call_leaky",
        "queue_call",
        "-t",
        json.dumps({"phone_number": f"tel:+1{ANSWERS}", "name": "Grace Hopper"}),
        connection=sandbox.connection_json(),
        fresh=True,
    )
    logs = result.stdout + result.stderr
    for log_file in (airflow_env.home / "logs").rglob("*"):
        if log_file.is_file():
            logs += log_file.read_text(errors="replace")
    assert "LEAK phone=***" in logs, logs[-3000:]
    assert "Fuse queued call" in logs
    assert ANSWERS not in logs
    assert "Grace Hopper" not in logs
    assert "A-31415" not in logs
    assert sandbox.developer_key not in logs
    (call,) = sandbox.calls()
    assert call.variables == {"name": "Grace Hopper", "account": "A-31415"}


def test_a_mapped_call_stores_no_number_and_no_short_parameter_in_its_rendered_fields(airflow_env, sandbox):
    run = airflow_env.dags_test("e2e_call_mapped", connection=sandbox.connection_json())
    assert run.dag_state == "success", run.output[-3000:]
    assert sorted(call.phone_number for call in sandbox.calls()) == ["6175551234", "6175551235"]
    with sqlite3.connect(airflow_env.home / "airflow.db") as db:
        stored = db.execute(
            "SELECT map_index, rendered_fields FROM rendered_task_instance_fields WHERE dag_id = ?",
            ("e2e_call_mapped",),
        ).fetchall()
    assert sorted(index for index, _ in stored) == [0, 1]
    for _, fields in stored:
        assert json.loads(fields)["phone_number"] == "***"
        assert json.loads(fields)["call_parameters"] == {"first_name": "***"}
        assert "617555123" not in fields
        assert "Ada" not in fields
