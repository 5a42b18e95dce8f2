"""FuseNotifier in a running Airflow (api-server, scheduler, triggerer, dag-processor): the paths that
run outside the task's process call once, about the right thing, and leave those processes running."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness import wait_until

PHONE = "tel:+16175559876"


@pytest.fixture
def oncall(live_airflow, live_sandbox):
    live_airflow.api.call("POST", "/api/v2/variables", {"key": "e2e_oncall_phone", "value": PHONE})
    yield live_sandbox
    live_airflow.api.call("DELETE", "/api/v2/variables/e2e_oncall_phone")


def test_a_deadline_alert_calls_once_and_the_triggerer_keeps_running(live_airflow, oncall):
    run_id = live_airflow.api.trigger("e2e_notifier_deadline")
    (call,) = wait_until(
        "the deadline's call", lambda: oncall.calls() or None, 120, alive=live_airflow.services.check_alive
    )
    assert live_airflow.api.wait_for_run("e2e_notifier_deadline", run_id, 120) == "success"
    time.sleep(3)  # the triggerer logs its records and the call's end; it must still be there after
    live_airflow.services.check_alive()
    assert len(oncall.calls()) == 1
    assert call.variables["airflow_event"] == "deadline_missed"
    assert call.variables["airflow_run_id"] == run_id
    assert call.destination == PHONE


def test_a_dag_callback_and_the_failed_tasks_own_call_once_about_the_failed_task(live_airflow, oncall):
    run_id = live_airflow.api.trigger("e2e_notifier_failure")
    assert live_airflow.api.wait_for_run("e2e_notifier_failure", run_id, 180) == "failed"
    wait_until(  # the DAG processor runs the DAG's callback once the run has failed
        "the DAG's callback to find the task's call",
        lambda: run_id in logged(live_airflow.home / "logs", "another callback path already did"),
        120,
        alive=live_airflow.services.check_alive,
    )
    (call,) = oncall.calls()
    assert (call.variables["airflow_task_id"], call.variables["airflow_try_number"]) == ("a_fails", 1)
    assert call.variables["airflow_run_id"] == run_id


def logged(folder: Path, text: str) -> str:
    """Every line of the logs under ``folder`` that holds ``text``."""
    return "\n".join(
        line
        for path in folder.rglob("*.log")
        for line in path.read_text(errors="replace").splitlines()
        if text in line
    )
