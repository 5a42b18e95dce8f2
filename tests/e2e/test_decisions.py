"""Decisions a person makes, end to end: a task asks in Required Actions, the test answers through
the REST API as a person would, and the run goes on.

The DAGs run on :class:`~tests.e2e.conftest.LiveAirflow`: an api-server, a scheduler
(LocalExecutor), a triggerer and a dag-processor, as in a deployment. What resumes a waiting task is
Airflow's own machinery: on 3.3 the task waits in ``awaiting_input``, the API's answer puts it back
to ``scheduled`` and the scheduler runs it again, and an unanswered question is ended by the
scheduler's ``awaiting_input`` timeout sweep; on 3.1/3.2 it is deferred to ``HITLTrigger`` on the
triggerer, which polls the database for the answer or the deadline. (``airflow dags test`` cannot
stand in for this on 3.1: its in-line trigger gets no answer to the trigger's request for the
question's detail, and the task fails.)
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import airflow
import pytest

from harness import ApiRefused
from tests.e2e.conftest import LiveAirflow

pytestmark = pytest.mark.e2e

AWAITS_INPUT = tuple(int(part) for part in airflow.__version__.split(".")[:2]) >= (3, 3)
WAITING = "awaiting_input" if AWAITS_INPUT else "deferred"
# Seconds a question waits before it is answered: a person's pace. On Airflow 3.3.2 an answer that
# comes before the scheduler has seen the asking try's worker exit makes the scheduler fail the task
# ("the executor reported success but the task instance is queued"): both executions of the task
# share one key, and the first one's exit event is taken for the second's.
SETTLE = 4.0 if AWAITS_INPUT else 0.0


@dataclass(frozen=True)
class Asked:
    """A run that asked: how it ended, its tasks' states, and each question as the API showed it."""

    run_id: str
    state: str
    tasks: dict[str, str | None]
    questions: list[dict[str, Any]]
    log: str

    def __str__(self) -> str:
        return (
            f"run {self.run_id}: {self.state}, tasks {self.tasks}; the asking task's log:\n{self.log[-6000:]}"
        )


def end_run(live: LiveAirflow, dag_id: str, run_id: str) -> None:
    """Mark a run failed (a test that gave up on it), so that it does not wait on."""
    with contextlib.suppress(OSError, ApiRefused):
        live.api.call("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", {"state": "failed"})


def answered_run(
    live: LiveAirflow,
    dag_id: str,
    answers: Sequence[tuple[str, Sequence[str] | None]],
    *,
    conf: dict[str, Any] | None = None,
    task_id: str = "queue_calls",
    before_answer: Any = None,
) -> Asked:
    """Trigger ``dag_id`` and answer its questions in order as they come; how the run ended.

    :param answers: for each question, the start of its subject and the options chosen (None: leave
        it unanswered until its deadline).
    :param before_answer: called with each question before it is answered.
    """
    run_id = live.api.trigger(dag_id, conf)

    def still_running() -> None:
        live.services.check_alive()
        if live.api.run_state(dag_id, run_id) in ("success", "failed"):
            raise AssertionError(
                f"{dag_id} ended before asking:\n{live.logs(dag_id, run_id, task_id)[-4000:]}"
            )

    questions = []
    try:
        for subject, chosen in answers:
            question = live.api.wait_for_question(
                dag_id, task_id, run_id=run_id, subject_starts=subject, alive=still_running, timeout=180
            )
            questions.append(question)
            if before_answer is not None:
                before_answer(question)
            asked = datetime.fromisoformat(question["created_at"].replace("Z", "+00:00"))
            time.sleep(max(0.0, SETTLE - (datetime.now(timezone.utc) - asked).total_seconds()))
            if chosen is not None:
                live.api.answer(question, chosen)
        state = live.api.wait_for_run(dag_id, run_id, 240, alive=live.services.check_alive)
    except BaseException:
        end_run(live, dag_id, run_id)
        raise
    tasks = {task: ti["state"] for task, ti in live.api.task_instances(dag_id, run_id).items()}
    return Asked(run_id, state, tasks, questions, live.logs(dag_id, run_id, task_id))


def test_the_harness_answers_the_standard_approval_operator_through_the_rest_api(live_airflow):
    asked = answered_run(
        live_airflow, "e2e_hitl_approval", [("Approve the harness", ["Approve"])], task_id="approve"
    )
    (question,) = asked.questions
    assert question["options"] == ["Approve", "Reject"]
    assert question["task_instance"]["state"] == WAITING
    assert asked.tasks == {"approve": "success", "after_approval": "success"}, str(asked)
    answer = live_airflow.api.xcom("e2e_hitl_approval", asked.run_id, "approve")
    assert answer["chosen_options"] == ["Approve"]
    assert answer["responded_by_user"]["name"] == "admin"
