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
import csv
import io
import json
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import airflow
import pytest

from harness import ApiRefused, wait_until
from tests.e2e.conftest import LiveAirflow

pytestmark = pytest.mark.e2e

AWAITS_INPUT = tuple(int(part) for part in airflow.__version__.split(".")[:2]) >= (3, 3)
WAITING = "awaiting_input" if AWAITS_INPUT else "deferred"
# On Airflow 3.3.2 (and 3.1.8, through the triggerer) an answer that comes before the scheduler has
# collected the exit of the try that asked makes the scheduler fail the task ("the executor reported
# success but the task instance is queued"): both executions of the try share one key, and the first
# one's exit event is taken for the second's. A person never answers that fast; the tests answer once
# the asking process has exited and the scheduler has been round its loop (about a second) a few times.
SETTLE = 3.0


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


def waits_for_the_answer(live: LiveAirflow, question: dict[str, Any]) -> None:
    """Until the task that asked waits (:data:`WAITING`), the process of the try that asked has exited
    and :data:`SETTLE` seconds more have passed.

    :raises TimeoutError: the task did not come to wait.
    """
    ti = question["task_instance"]
    wait_until(
        f"{ti['task_id']} to be {WAITING}",
        lambda: live.api.task_instances(ti["dag_id"], ti["dag_run_id"])[ti["task_id"]]["state"] == WAITING,
        120,
        interval=0.2,
    )
    if SETTLE:
        pid = question["task_instance"].get("pid")
        if pid:
            wait_until(
                "the asking try's process to exit",
                lambda: not Path(f"/proc/{pid}").exists(),
                60,
                interval=0.2,
            )
        time.sleep(SETTLE)


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
            waits_for_the_answer(live, question)
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
    assert asked.tasks == {"approve": "success", "after_approval": "success"}, str(asked)
    answer = live_airflow.api.xcom("e2e_hitl_approval", asked.run_id, "approve")
    assert answer["chosen_options"] == ["Approve"]
    assert answer["responded_by_user"]["name"] == "admin"


# --- The provider's questions ----------------------------------------------------------------------

APPROVAL = "Approve calling list"
UNKNOWN = "Unknown outcome"


@pytest.fixture
def contacts(tmp_path: Path) -> Path:
    return write_contacts(tmp_path / "contacts.csv")


def write_contacts(path: Path) -> Path:
    """1,000 contacts (one destination each, 555 numbers), in a file every component can read."""
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["destination", "first_name", "account"])
        for index in range(1000):
            writer.writerow([f"1617555{index:04d}", f"Name {index}", f"A-{index:05d}"])
    path.chmod(0o644)
    return path


def destinations(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as file:
        return [row["destination"] for row in csv.DictReader(file)]


#: A run of digits as a text may spell a phone number: with spaces, dots, dashes, brackets or a +.
DIGIT_RUN = re.compile(r"\+?\(?\d[\d\s().\-]{5,}\d")


def numbers_shown(text: str, numbers: Sequence[str]) -> list[str]:
    """Those of ``numbers`` that ``text`` shows, in any spelling of their digits (their last seven
    digits, with or without separators and a country code)."""
    runs = ["".join(ch for ch in run if ch.isdigit()) for run in DIGIT_RUN.findall(text)]
    runs.append("".join(ch for ch in text if ch.isdigit()))
    return [number for number in numbers if any(number[-7:] in run for run in runs)]


def test_an_approved_list_is_sent_as_it_was_shown(live_airflow, live_sandbox, contacts):
    asked = answered_run(
        live_airflow, "e2e_approval", [(APPROVAL, ["Approve"])], conf={"csv_path": str(contacts)}
    )
    (question,) = asked.questions
    assert question["options"] == ["Approve", "Reject"]
    assert question["defaults"] == ["Reject"]
    assert question["assigned_users"] == [{"id": "admin", "name": "admin"}]
    assert asked.tasks == {"queue_calls": "success", "after_dialing": "success"}, str(asked)
    assert live_airflow.api.xcom("e2e_approval", asked.run_id, "queue_calls") == 1000
    (upload,) = live_sandbox.uploads()
    assert upload.csv == contacts.read_bytes()
    assert upload.calls_queued == 1000


def test_a_rejected_list_skips_the_task_and_what_follows_and_sends_nothing(
    live_airflow, live_sandbox, contacts
):
    asked = answered_run(
        live_airflow, "e2e_approval", [(APPROVAL, ["Reject"])], conf={"csv_path": str(contacts)}
    )
    assert asked.tasks == {"queue_calls": "skipped", "after_dialing": "skipped"}, str(asked)
    assert live_sandbox.requests() == []


def test_a_list_changed_between_the_question_and_the_approval_is_not_sent(
    live_airflow, live_sandbox, contacts
):
    def change_the_list(question: dict[str, Any]) -> None:
        with open(contacts, "a", encoding="utf-8") as file:
            file.write("16175559999,Someone Else,A-99999\r\n")

    asked = answered_run(
        live_airflow,
        "e2e_approval",
        [(APPROVAL, ["Approve"])],
        conf={"csv_path": str(contacts)},
        before_answer=change_the_list,
    )
    assert asked.tasks["queue_calls"] == "failed", str(asked)
    assert "changed between the approval question and its answer" in asked.log
    assert live_sandbox.uploads() == []


def test_no_answer_before_the_deadline_is_a_reject(live_airflow, live_sandbox, contacts):
    asked = answered_run(
        live_airflow, "e2e_approval_timeout", [(APPROVAL, None)], conf={"csv_path": str(contacts)}
    )
    assert asked.tasks == {"queue_calls": "skipped", "after_dialing": "skipped"}, str(asked)
    detail = live_airflow.api.call(
        "GET", live_airflow.api.hitl_path("e2e_approval_timeout", asked.run_id, "queue_calls")
    )
    assert detail["chosen_options"] == ["Reject"]
    assert detail["responded_by_user"] is None
    assert live_sandbox.requests() == []


def test_the_approval_question_shows_no_phone_number(live_airflow, live_sandbox, contacts):
    asked = answered_run(
        live_airflow, "e2e_approval", [(APPROVAL, ["Reject"])], conf={"csv_path": str(contacts)}
    )
    (question,) = asked.questions
    fetched = live_airflow.api.call(
        "GET", live_airflow.api.hitl_path("e2e_approval", asked.run_id, "queue_calls")
    )
    shown = f"{fetched['subject']}\n{fetched['body']}"
    assert "202" in shown, shown  # the deployment
    assert "1000" in shown.replace(",", ""), shown  # the rows
    assert numbers_shown(shown, destinations(contacts)) == []
    assert numbers_shown(json.dumps(question), destinations(contacts)) == []


def rows_of(upload: Any) -> list[str]:
    return [row["destination"] for row in csv.DictReader(io.StringIO(upload.csv.decode("utf-8-sig")))]


def test_an_unknown_outcome_answered_queued_is_recorded_and_not_resent(live_airflow, live_sandbox, contacts):
    # Part 2 of 4 reaches Fuse, which queues it; its answer is lost.
    live_sandbox.inject_fault(drop=True, after_queue=True, skip=1, endpoint="bulk_queue")
    asked = answered_run(
        live_airflow, "e2e_unknown_ask", [(UNKNOWN, ["Fuse queued it"])], conf={"csv_path": str(contacts)}
    )
    (question,) = asked.questions
    assert question["options"] == ["Fuse queued it", "Fuse did not queue it", "Stop"]
    assert question["defaults"] == ["Stop"]
    assert numbers_shown(f"{question['subject']}\n{question['body']}", destinations(contacts)) == []
    assert asked.tasks["queue_calls"] == "success", str(asked)
    dialled = Counter(call.destination for call in live_sandbox.calls())
    assert set(dialled.values()) == {1}, "a destination was dialled twice"
    uploads = [rows_of(upload) for upload in live_sandbox.uploads()]
    assert len(uploads) == len({tuple(rows) for rows in uploads}), "a part was sent twice"


def test_an_unknown_outcome_answered_not_queued_sends_again_from_the_unknown_part_only(
    live_airflow, live_sandbox, contacts
):
    # Part 2 of 4 is lost before Fuse queues it.
    live_sandbox.inject_fault(drop=True, skip=1, endpoint="bulk_queue")
    asked = answered_run(
        live_airflow,
        "e2e_unknown_ask",
        [(UNKNOWN, ["Fuse did not queue it"])],
        conf={"csv_path": str(contacts)},
    )
    assert asked.tasks == {"queue_calls": "success", "after_dialing": "success"}, str(asked)
    assert [upload.rows for upload in live_sandbox.uploads()] == [300, 300, 300, 300, 100]
    first, lost, again, *_ = [rows_of(upload) for upload in live_sandbox.uploads()]
    assert again == lost  # the unknown part, sent again
    assert sum(rows_of(upload) == first for upload in live_sandbox.uploads()) == 1  # part 1 never resent
    dialled = Counter(call.destination for call in live_sandbox.calls())
    assert len(dialled) == 1000
    assert set(dialled.values()) == {1}
    assert live_airflow.api.xcom("e2e_unknown_ask", asked.run_id, "queue_calls") == 1000


def test_an_unknown_outcome_answered_stop_fails_and_sends_nothing_more(live_airflow, live_sandbox, contacts):
    live_sandbox.inject_fault(drop=True, skip=1, endpoint="bulk_queue")
    asked = answered_run(
        live_airflow, "e2e_unknown_ask", [(UNKNOWN, ["Stop"])], conf={"csv_path": str(contacts)}
    )
    assert asked.tasks == {"queue_calls": "failed", "after_dialing": "upstream_failed"}, str(asked)
    assert [upload.rows for upload in live_sandbox.uploads()] == [300, 300]
    assert "Stopped by 'admin'" in asked.log
