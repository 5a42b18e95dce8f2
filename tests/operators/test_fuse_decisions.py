"""A person decides: the approval of a list and the answer to an unknown outcome, asked through Airflow's
human-in-the-loop machinery. The question is captured where the operator writes it; the answer is the
event Airflow resumes the task with (the end-to-end tests answer through the REST API)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
import requests

from airflow_provider_fuse import decisions
from airflow_provider_fuse._compat import AirflowException, AirflowFailException, AirflowSkipException
from airflow_provider_fuse.decisions import Ask
from airflow_provider_fuse.guard import LEDGER_KEY, GuardError, Record
from airflow_provider_fuse.operators.fuse import FuseBulkQueueOperator
from tests.helpers import BASE_URL, MemoryStore

IDS = {"application_id": 12, "deployment_id": 34}
URL = f"{BASE_URL}/apps/12/34/bulk_queue"
#: Every destination of the contacts_csv fixture, as digits: none may appear in a question.
DIGITS = ("6175551234", "6175551235", "6175551236", "8009957586")


class Asked(Exception):
    """What the operator wrote and how it waits: the question, the method it resumes in, its kwargs."""

    def __init__(self, detail: dict, method_name: str, kwargs: dict) -> None:
        super().__init__(detail["subject"])
        self.detail, self.method_name, self.kwargs = detail, method_name, kwargs


#: What Airflow keeps, by task instance: its first question, whatever later tries write (the question
#: row follows the task instance through retries and clears, and a write keeps the first one's text).
KEPT: dict[tuple, dict] = {}


@pytest.fixture(autouse=True)
def hitl(monkeypatch):
    """Capture the question instead of talking to a supervisor, keeping it as Airflow does; the wait
    raises :class:`Asked`."""
    written: list[dict] = []
    KEPT.clear()

    def write(ti_id, meant):
        written.append(meant)
        return KEPT.setdefault(TRIES[ti_id], meant)

    monkeypatch.setattr("airflow_provider_fuse.decisions._write_question", write)
    monkeypatch.setattr("airflow_provider_fuse.hooks.fuse.time.sleep", lambda seconds: None)

    def wait(error):
        return Asked(written[-1], error.method_name, error.kwargs or {})

    return wait


#: Each try's task instance id, to the task instance (dag, run, task, map index) it is a try of.
TRIES: dict[uuid.UUID, tuple] = {}


def context(store: MemoryStore | None = None, task_id: str = "dial") -> dict:
    ti = SimpleNamespace(
        id=uuid.uuid4(), dag_id="campaign", run_id="manual__1", task_id=task_id, map_index=-1
    )
    TRIES[ti.id] = (ti.dag_id, ti.run_id, ti.task_id, ti.map_index)
    context = {"ti": ti, "task_instance": ti}
    if store is not None:
        context["task_state_store"] = store
    return context


def ask(hitl, call):
    """Run ``call``; :return: the question it asked (it must ask)."""
    try:
        from airflow.sdk.exceptions import TaskAwaitingInput as Waiting  # Airflow >= 3.3
    except ImportError:
        from airflow.providers.common.compat.sdk import TaskDeferred as Waiting
    with pytest.raises(Waiting) as waiting:
        call()
    return hitl(waiting.value)


def answered(chosen: str, by: str | None = "alice") -> dict:
    return {
        "chosen_options": [chosen],
        "params_input": {},
        "responded_at": datetime.now(timezone.utc),
        "responded_by_user": None if by is None else {"id": f"{by}-id", "name": by},
        "timedout": by is None,
    }


def resume(operator, context, asked: Asked, chosen: str, by: str | None = "alice"):
    return getattr(operator, asked.method_name)(context, event=answered(chosen, by), **asked.kwargs)


def no_number_in(text: str) -> None:
    digits = re.sub(r"\D", "", text)
    for number in DIGITS:
        assert number not in digits, "a destination reached the question"


@pytest.fixture
def bulk(contacts_csv):
    def make(**kwargs):
        return FuseBulkQueueOperator(task_id="dial", csv_path=str(contacts_csv), **IDS, **kwargs)

    return make


# --- approval ---------------------------------------------------------------------------------


def test_approval_asks_before_anything_is_sent_and_shows_the_list_without_a_number(
    fuse_connection, requests_mock, bulk, hitl
):
    requests_mock.post(URL, json={"calls_queued": 3})
    operator = bulk(approval=True, max_attempts=2, reattempt_wait=300, on_duplicate_destinations="drop")
    asked = ask(hitl, lambda: operator.execute(context(MemoryStore())))
    assert not requests_mock.called
    detail = asked.detail
    assert detail["options"] == ["Approve", "Reject"]
    assert detail["defaults"] == ["Reject"]
    assert detail["subject"].startswith("Approve calling list: 3 rows to application 12 / deployment 34")
    body = detail["body"]
    for shown in (
        "application 12 / deployment 34",
        "max_attempts=2",
        "reattempt_wait=300",
        "of 3 in the CSV",
        "Repeated destinations | none",
        "Outcomes | not collected",
        "No answer within 24 hours",
    ):
        assert shown in body
    no_number_in(detail["subject"] + body)
    assert asked.method_name == "execute_approved"
    assert set(asked.kwargs) == {"approved"}
    no_number_in(repr(asked.kwargs))


def test_approve_sends_the_list_shown_once_and_records_who_approved_it(
    fuse_connection, requests_mock, bulk, hitl
):
    requests_mock.post(URL, json={"calls_queued": 3})
    store = MemoryStore()
    operator = bulk(approval=True)
    asked = ask(hitl, lambda: operator.execute(context(store)))
    assert resume(operator, context(store), asked, "Approve") == 3
    assert requests_mock.call_count == 1
    record = Record.read(store, LEDGER_KEY)
    assert record is not None
    assert [(item["question"], item["answer"], item["by"]) for item in record.decisions] == [
        ("approval", "Approve", "'alice' (id 'alice-id')")
    ]
    # A retry or clear after the approved send is answered from the ledger, and asks nothing.
    assert bulk(approval=True).execute(context(store)) == 3
    assert requests_mock.call_count == 1


def test_a_retry_after_an_approval_whose_send_failed_does_not_ask_again(
    fuse_connection, requests_mock, bulk, hitl
):
    requests_mock.post(
        URL, [{"exc": requests.exceptions.ConnectTimeout("refused")}, {"json": {"calls_queued": 3}}]
    )
    store = MemoryStore()
    operator = bulk(approval=True, hook_params={"connect_retries": 0})
    asked = ask(hitl, lambda: operator.execute(context(store)))
    with pytest.raises(AirflowException) as failed:
        resume(operator, context(store), asked, "Approve")
    assert not isinstance(failed.value, AirflowFailException)  # left to the task's retries
    assert bulk(approval=True, hook_params={"connect_retries": 0}).execute(context(store)) == 3


def test_a_csv_changed_while_the_question_waited_is_not_sent(
    fuse_connection, requests_mock, bulk, contacts_csv, hitl
):
    requests_mock.post(URL, json={"calls_queued": 3})
    operator = bulk(approval=True)
    asked = ask(hitl, lambda: operator.execute(context(MemoryStore())))
    contacts_csv.write_bytes(contacts_csv.read_bytes() + b"16175550000,Eve\r\n")
    with pytest.raises(AirflowFailException, match="changed between the approval question and its answer"):
        resume(operator, context(MemoryStore()), asked, "Approve")
    assert not requests_mock.called


def test_a_list_approved_then_changed_cannot_be_asked_about_by_the_same_task_instance(
    fuse_connection, requests_mock, bulk, contacts_csv, hitl
):
    requests_mock.post(URL, [{"exc": requests.exceptions.ConnectTimeout("refused")}])
    store = MemoryStore()
    operator = bulk(approval=True, hook_params={"connect_retries": 0})
    asked = ask(hitl, lambda: operator.execute(context(store)))
    with pytest.raises(AirflowException):
        resume(operator, context(store), asked, "Approve")
    contacts_csv.write_bytes(contacts_csv.read_bytes() + b"16175550000,Eve\r\n")
    # Airflow would show the first question (3 rows) for this task instance: nothing is asked or sent.
    with pytest.raises(AirflowFailException, match="Trigger a new run of the DAG to have it approved"):
        bulk(approval=True).execute(context(store))
    assert requests_mock.call_count == 1


@pytest.mark.parametrize(
    ("on_reject", "raised"), [("skip", AirflowSkipException), ("fail", AirflowFailException)]
)
@pytest.mark.parametrize("by", ["bob", None])
def test_reject_or_no_answer_in_time_sends_nothing(
    fuse_connection, requests_mock, bulk, hitl, on_reject, raised, by
):
    operator = bulk(approval=True, on_reject=on_reject)
    asked = ask(hitl, lambda: operator.execute(context(MemoryStore())))
    with pytest.raises(raised) as caught:
        resume(operator, context(MemoryStore()), asked, "Reject", by=by)
    assert "Nothing was sent to Fuse: it was rejected by" in str(caught.value)
    assert ("'bob' (id 'bob-id')" if by else "nobody (the timeout chose)") in str(caught.value)
    assert not requests_mock.called


def test_an_answer_that_is_no_option_sends_nothing(fuse_connection, requests_mock, bulk, hitl):
    operator = bulk(approval=True)
    asked = ask(hitl, lambda: operator.execute(context(MemoryStore())))
    with pytest.raises(AirflowFailException, match="not one of"):
        resume(operator, context(MemoryStore()), asked, "Yes please")
    with pytest.raises(AirflowFailException, match="ended without an answer"):
        operator.execute_approved(context(), event={"error": "x", "error_type": "timeout"}, **asked.kwargs)
    assert not requests_mock.called


def test_a_dry_run_never_asks(fuse_connection, requests_mock, bulk):
    assert bulk(approval=True, dry_run=True).execute(context(MemoryStore())) == 3
    assert not requests_mock.called


def test_without_the_duplicate_guard_approve_sends_the_list_shown(fuse_connection, requests_mock, bulk, hitl):
    requests_mock.post(URL, json={"calls_queued": 3})
    operator = bulk(approval=True)
    asked = ask(hitl, lambda: operator.execute(context()))
    assert resume(operator, context(), asked, "Approve") == 3
    assert requests_mock.call_count == 1


def test_who_answers_how_long_and_who_is_told(fuse_connection, requests_mock, bulk, hitl):
    told = []
    how = Ask(
        assigned_users=[{"id": "7", "name": "ops"}], timeout=timedelta(minutes=30), notifiers=[told.append]
    )
    asked = ask(hitl, lambda: bulk(approval=True, ask=how).execute(context(MemoryStore())))
    assert asked.detail["assigned_users"] == [{"id": "7", "name": "ops"}]
    assert "No answer within 30 minutes is a Reject" in asked.detail["body"]
    assert len(told) == 1


@pytest.mark.parametrize(
    "given",
    [
        {"ask": Ask()},
        {"approval": "yes"},
        {"on_reject": "ignore"},
        {"approval": True, "ask": {"timeout": 5}},
        {"on_unknown_outcome": "maybe"},
    ],
)
def test_malformed_options_fail_when_the_dag_is_parsed(bulk, given):
    with pytest.raises(ValueError, match=r"approval|on_reject|ask|on_unknown_outcome"):
        bulk(**given)


@pytest.mark.parametrize(
    "given",
    [
        {"timeout": timedelta(0)},
        {"timeout": 60},
        {"assigned_users": []},
        {"assigned_users": {"id": "1", "name": "a"}},
        {"assigned_users": [{"id": "1"}]},
        {"assigned_users": [{"id": 1, "name": "a"}]},
        {"notifiers": ["not callable"]},
    ],
)
def test_a_malformed_ask_is_refused(given):
    with pytest.raises(ValueError, match=r"^Ask\(|^each of Ask"):
        Ask(**given)


# --- unknown outcomes ---------------------------------------------------------------------------


def three_parts(requests_mock, second):
    """Part 1 queued, part 2 ``second``, then each part queued with one call."""
    requests_mock.post(URL, [{"json": {"calls_queued": 1}}, second, {"json": {"calls_queued": 1}}])


LOST = {"exc": requests.exceptions.ReadTimeout("lost")}


@pytest.mark.parametrize("guarded", [True, False])
def test_an_unknown_outcome_asks_which_part_fuse_may_have_queued(
    fuse_connection, requests_mock, bulk, hitl, guarded
):
    three_parts(requests_mock, LOST)
    operator = bulk(chunk_size=1, on_unknown_outcome="ask")
    asked = ask(hitl, lambda: operator.execute(context(MemoryStore() if guarded else None)))
    assert requests_mock.call_count == 2
    detail = asked.detail
    assert detail["options"] == ["Fuse queued it", "Fuse did not queue it", "Stop"]
    assert detail["defaults"] == ["Stop"]
    assert detail["subject"] == (
        "Unknown outcome: did Fuse queue part 2 of 3 (1 row) for application 12 / deployment 34?"
    )
    assert "rows 3-3 of the file" in detail["body"]
    assert "Known queued: 1 part, 1 call" in detail["body"]
    no_number_in(detail["subject"] + detail["body"] + repr(asked.kwargs))
    assert asked.method_name == "execute_decided"


@pytest.mark.parametrize("guarded", [True, False])
@pytest.mark.parametrize(
    ("chosen", "sent_after", "total"),
    [("Fuse did not queue it", 2, 3), ("Fuse queued it", 1, 3)],
)
def test_the_answer_resumes_from_the_unknown_part_never_resending_a_queued_one(
    fuse_connection, requests_mock, bulk, hitl, guarded, chosen, sent_after, total
):
    three_parts(requests_mock, LOST)
    store = MemoryStore() if guarded else None
    operator = bulk(chunk_size=1, on_unknown_outcome="ask")
    asked = ask(hitl, lambda: operator.execute(context(store)))
    requests_mock.post(URL, json={"calls_queued": 1})
    requests_mock.reset_mock()
    assert resume(operator, context(store), asked, chosen) == total
    assert requests_mock.call_count == sent_after
    sent_rows = [request.body for request in requests_mock.request_history]
    assert all(b"6175551234" not in (body if isinstance(body, bytes) else b"") for body in sent_rows)
    if guarded:
        record = Record.read(store, LEDGER_KEY)
        assert record.complete
        assert [(item["question"], item["answer"], item["part"]) for item in record.decisions] == [
            ("unknown_outcome", "queued" if chosen == "Fuse queued it" else "not_queued", 1)
        ]


@pytest.mark.parametrize("guarded", [True, False])
def test_stop_fails_and_sends_nothing_more(fuse_connection, requests_mock, bulk, hitl, guarded):
    three_parts(requests_mock, LOST)
    store = MemoryStore() if guarded else None
    operator = bulk(chunk_size=1, on_unknown_outcome="ask")
    asked = ask(hitl, lambda: operator.execute(context(store)))
    with pytest.raises(AirflowFailException, match="Stopped by 'alice'"):
        resume(operator, context(store), asked, "Stop")
    assert requests_mock.call_count == 2
    if guarded:  # the part stays unknown: the next try asks again
        assert ask(hitl, lambda: bulk(chunk_size=1, on_unknown_outcome="ask").execute(context(store)))
        assert Record.read(store, LEDGER_KEY).decisions[-1]["answer"] == "stop"


def test_a_try_that_finds_an_unknown_outcome_recorded_asks_instead_of_refusing(
    fuse_connection, requests_mock, bulk, hitl
):
    three_parts(requests_mock, LOST)
    store = MemoryStore()
    with pytest.raises(AirflowFailException, match="Unknown outcome"):
        bulk(chunk_size=1).execute(context(store))  # "fail": the ledger keeps part 2 unknown
    asked = ask(hitl, lambda: bulk(chunk_size=1, on_unknown_outcome="ask").execute(context(store)))
    assert "part 2 of 3" in asked.detail["subject"]
    assert "Known queued: 1 part, 1 call" in asked.detail["body"]
    assert asked.kwargs == {"part": 1}
    requests_mock.post(URL, json={"calls_queued": 1})
    requests_mock.reset_mock()
    operator = bulk(chunk_size=1, on_unknown_outcome="ask")
    assert resume(operator, context(store), asked, "Fuse did not queue it") == 3
    assert requests_mock.call_count == 2


def test_a_task_instance_that_asked_for_approval_cannot_ask_about_an_unknown_outcome(
    fuse_connection, requests_mock, bulk, hitl
):
    three_parts(requests_mock, LOST)
    store = MemoryStore()
    operator = bulk(chunk_size=1, approval=True, on_unknown_outcome="ask")
    asked = ask(hitl, lambda: operator.execute(context(store)))
    with pytest.raises(AirflowFailException, match="Unknown outcome"):
        resume(operator, context(store), asked, "Approve")
    # The task instance keeps its approval question: a later try cannot ask, and refuses as with "fail".
    with pytest.raises(AirflowFailException, match="the outcome of an earlier try is unknown"):
        bulk(chunk_size=1, approval=True, on_unknown_outcome="ask").execute(context(store))
    assert requests_mock.call_count == 2


def test_without_the_guard_an_approved_try_that_meets_an_unknown_outcome_fails_without_retries(
    fuse_connection, requests_mock, bulk, hitl
):
    three_parts(requests_mock, LOST)
    operator = bulk(chunk_size=1, approval=True, on_unknown_outcome="ask")
    asked = ask(hitl, lambda: operator.execute(context()))
    with pytest.raises(AirflowFailException, match="Unknown outcome"):
        resume(operator, context(), asked, "Approve")


def test_without_the_guard_a_list_changed_while_the_question_waited_is_not_sent(
    fuse_connection, requests_mock, bulk, contacts_csv, hitl
):
    three_parts(requests_mock, LOST)
    operator = bulk(chunk_size=1, on_unknown_outcome="ask")
    asked = ask(hitl, lambda: operator.execute(context()))
    contacts_csv.write_bytes(contacts_csv.read_bytes().replace(b"Ada", b"Ann"))
    requests_mock.reset_mock()
    with pytest.raises(AirflowFailException, match="the list changed while the question about part 2"):
        resume(operator, context(), asked, "Fuse did not queue it")
    assert not requests_mock.called


def test_a_ledger_with_a_malformed_decision_is_refused():
    store = MemoryStore()
    store.set(
        LEDGER_KEY,
        {
            "version": 2,
            "salt": "00" * 16,
            "fingerprint": {"content": "a", "parameters": "b"},
            "parts": [None],
            "decisions": [
                {"question": "approval", "answer": "Approve", "by": 5, "at": "t", "list": "00", "part": None}
            ],
        },
    )
    with pytest.raises(GuardError):
        Record.read(store, LEDGER_KEY)


def test_the_questions_options_are_the_documented_ones():
    assert decisions.APPROVAL.options == ("Approve", "Reject")
    assert decisions.UNKNOWN_OUTCOME.options == ("Fuse queued it", "Fuse did not queue it", "Stop")


# --- a single call ------------------------------------------------------------------------------


CALL_URL = f"{BASE_URL}/apps/12/34/queue"


def call(**kwargs):
    from airflow_provider_fuse.operators.fuse import FuseQueueCallOperator

    return FuseQueueCallOperator(
        task_id="call", phone_number="16175551234", call_parameters={"first_name": "Ada"}, **IDS, **kwargs
    )


@pytest.mark.parametrize("guarded", [True, False])
def test_a_single_call_is_approved_without_showing_its_number(fuse_connection, requests_mock, hitl, guarded):
    requests_mock.post(CALL_URL, json={"call_id": "77"})
    store = MemoryStore() if guarded else None
    operator = call(approval=True)
    asked = ask(hitl, lambda: operator.execute(context(store)))
    assert not requests_mock.called
    assert asked.detail["subject"] == "Approve one call to application 12 / deployment 34"
    assert "`first_name` (their values are not shown)" in asked.detail["body"]
    assert "Ada" not in asked.detail["body"]
    no_number_in(asked.detail["subject"] + asked.detail["body"] + repr(asked.kwargs))
    assert resume(operator, context(store), asked, "Approve") == "77"
    assert requests_mock.call_count == 1
    if guarded:  # a clear is answered from the ledger, without asking
        assert call(approval=True).execute(context(store)) == "77"
        assert requests_mock.call_count == 1


def test_a_single_call_changed_while_the_question_waited_is_not_queued(fuse_connection, requests_mock, hitl):
    operator = call(approval=True)
    asked = ask(hitl, lambda: operator.execute(context(MemoryStore())))
    operator.phone_number = "16175550000"
    with pytest.raises(AirflowFailException, match="changed between the approval question and its answer"):
        resume(operator, context(MemoryStore()), asked, "Approve")
    assert not requests_mock.called


def test_a_rejected_single_call_is_not_queued(fuse_connection, requests_mock, hitl):
    operator = call(approval=True, on_reject="fail")
    asked = ask(hitl, lambda: operator.execute(context(MemoryStore())))
    with pytest.raises(AirflowFailException, match="rejected by 'alice'"):
        resume(operator, context(MemoryStore()), asked, "Reject")
    assert not requests_mock.called


def test_a_single_call_cannot_ask_about_an_unknown_outcome():
    with pytest.raises(ValueError, match="on_unknown_outcome must be 'fail' or 'retry'"):
        call(on_unknown_outcome="ask")
    with pytest.raises(ValueError, match=r"ask says who answers the questions of approval=True: give"):
        call(ask=Ask())


def test_a_run_id_cannot_add_markdown_to_a_question():
    from airflow_provider_fuse.operators.questions import task_name

    ti = SimpleNamespace(dag_id="d", task_id="t", run_id="x` [click](http://evil) `\n# big", map_index=2)
    shown = task_name(ti)
    assert shown.count("`") == 6
    assert "\n" not in shown
    assert shown.startswith("Task `d`.`t` [2] (run `")


def test_the_notifiers_of_a_question_are_told_which_question_it_is(
    fuse_connection, requests_mock, bulk, hitl
):
    told = []
    operator = bulk(approval=True, ask=Ask(notifiers=[told.append]))
    ask(hitl, lambda: operator.execute(context(MemoryStore())))
    assert told[0][decisions.QUESTION_KEY] == "approval"
    assert told[0]["ti"].task_id == "dial"


def test_a_notifier_that_fails_does_not_lose_the_question(fuse_connection, requests_mock, bulk, hitl):
    def broken(context):
        raise RuntimeError("16175551234")

    asked = ask(
        hitl, lambda: bulk(approval=True, ask=Ask(notifiers=[broken])).execute(context(MemoryStore()))
    )
    assert asked.method_name == "execute_approved"


def test_a_rejected_list_asked_about_again_unchanged_can_be_approved(
    fuse_connection, requests_mock, bulk, hitl
):
    requests_mock.post(URL, json={"calls_queued": 3})
    store = MemoryStore()
    operator = bulk(approval=True)
    asked = ask(hitl, lambda: operator.execute(context(store)))
    with pytest.raises(AirflowSkipException):
        resume(operator, context(store), asked, "Reject")
    again = ask(hitl, lambda: bulk(approval=True).execute(context(store)))  # a clear: the same question
    assert resume(bulk(approval=True), context(store), again, "Approve") == 3


@pytest.mark.parametrize("given", [{"approval": True}, {"on_unknown_outcome": "ask"}])
def test_without_the_guard_a_task_that_asks_must_have_no_retries(fuse_connection, requests_mock, bulk, given):
    with pytest.raises(AirflowFailException, match="needs retries=0 \\(this task has retries=2\\)"):
        bulk(retries=2, **given).execute(context())
    assert not requests_mock.called


def test_with_the_guard_a_task_that_asks_may_have_retries(fuse_connection, requests_mock, bulk, hitl):
    assert ask(hitl, lambda: bulk(retries=2, approval=True).execute(context(MemoryStore())))


def test_a_list_changed_while_the_unknown_outcome_question_waited_is_not_sent(
    fuse_connection, requests_mock, bulk, contacts_csv, hitl
):
    requests_mock.post(URL, [LOST])
    store = MemoryStore()
    operator = bulk(on_unknown_outcome="ask")
    asked = ask(hitl, lambda: operator.execute(context(store)))
    contacts_csv.write_bytes(contacts_csv.read_bytes() + b"16175550000,Eve\r\n")
    requests_mock.reset_mock()
    with pytest.raises(AirflowFailException, match="the list changed while the question about part 1"):
        resume(operator, context(store), asked, "Fuse did not queue it")
    assert not requests_mock.called


def test_a_hanging_notifier_does_not_hold_the_question(
    fuse_connection, requests_mock, bulk, hitl, monkeypatch
):
    import threading

    monkeypatch.setattr("airflow_provider_fuse.decisions.NOTIFIERS_TIMEOUT", 0.2)
    release = threading.Event()
    operator = bulk(approval=True, ask=Ask(notifiers=[lambda context: release.wait(30)]))
    try:
        assert ask(hitl, lambda: operator.execute(context(MemoryStore())))
    finally:
        release.set()


@pytest.mark.parametrize(
    ("event", "by"),
    [
        ({"responded_at": "not-a-date", "responded_by_user": {"id": "1", "name": "a"}}, "'a' (id '1')"),
        ({"responded_at": None, "responded_by_user": {}}, None),
        ({"responded_by_user": {"name": "Mallory (id admin)", "id": "7"}}, "'Mallory (id admin)' (id '7')"),
        ({"responded_by_user": "bob"}, "'bob'"),
    ],
)
def test_an_odd_event_is_read_without_a_traceback(event, by):
    answer = decisions.answer_of(decisions.APPROVAL, {"chosen_options": ["Approve"], **event})
    assert answer.by == by
    assert answer.at.tzinfo is not None


def test_an_error_event_is_redacted():
    with pytest.raises(AirflowFailException) as caught:
        decisions.answer_of(decisions.APPROVAL, {"error": "call 617-555-1234 failed", "error_type": "x"})
    assert "617" not in str(caught.value)


def test_a_timeout_beyond_a_year_is_refused():
    with pytest.raises(ValueError, match="at most 366 days"):
        Ask(timeout=timedelta.max)


def test_a_refused_changed_list_leaves_the_part_unknown_for_the_next_try(
    fuse_connection, requests_mock, bulk, contacts_csv, hitl
):
    """Review recheck r9 #4: Airflow 3.3 can retry a try that refused a changed list; the answer "did not
    queue" must not have cleared the part by then, or the retry sends the changed list unasked."""
    requests_mock.post(URL, [LOST])
    store = MemoryStore()
    operator = bulk(on_unknown_outcome="ask")
    asked = ask(hitl, lambda: operator.execute(context(store)))
    contacts_csv.write_bytes(contacts_csv.read_bytes() + b"16175550000,Eve\r\n")
    requests_mock.reset_mock()
    with pytest.raises(AirflowFailException, match="the list changed while the question about part 1"):
        resume(operator, context(store), asked, "Fuse did not queue it")
    assert Record.read(store, LEDGER_KEY).sending == [0]
    # The next try (a retry Airflow made, or a clear) asks again instead of sending the changed list.
    again = ask(hitl, lambda: bulk(on_unknown_outcome="ask").execute(context(store)))
    assert again.method_name == "execute_decided"
    assert not requests_mock.called


def test_a_hanging_notifier_is_left_within_the_tasks_execution_timeout(
    fuse_connection, requests_mock, bulk, hitl
):
    import threading
    import time as clock

    release = threading.Event()
    operator = bulk(
        approval=True,
        execution_timeout=timedelta(seconds=2),
        ask=Ask(notifiers=[lambda context: release.wait(30)]),
    )
    began = clock.monotonic()
    try:
        assert ask(hitl, lambda: operator.execute(context(MemoryStore())))
    finally:
        release.set()
    assert clock.monotonic() - began < 10
