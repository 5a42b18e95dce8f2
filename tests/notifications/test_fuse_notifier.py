"""FuseNotifier: one call about what happened, to a number kept out of DAG code, once per occurrence."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_fuse.exceptions import FuseValidationError
from airflow_provider_fuse.notifications import occurrences
from airflow_provider_fuse.notifications.fuse import FuseNotifier, send_fuse_notification
from airflow_provider_fuse.notifications.occurrences import RECORD_PREFIX, CallRecords, Occurrence
from tests.helpers import BASE_URL, DEVELOPER_KEY, decode_multipart

# Airflow 3.1's own deprecations on the paths a task process takes (its environment-variable secrets
# backend, the standard provider's imports): not this provider's.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Using Connection.from_json from `airflow.models`:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The `airflow.operators.branch.BranchMixIn` attribute is deprecated"),
]

QUEUE_URL = f"{BASE_URL}/apps/12/34/queue"
PHONE = "16175559876"


class VariableStore:
    """Stands in for the API server behind a task SDK process: Airflow Variables, reached through the
    real ``Variable`` code, which talks to ``SUPERVISOR_COMMS``."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.sent: list[str] = []

    def send(self, msg: Any) -> Any:
        from airflow.sdk.exceptions import ErrorType
        from airflow.sdk.execution_time.comms import (
            DeleteVariable,
            ErrorResponse,
            GetVariable,
            OKResponse,
            PutVariable,
            VariableResult,
        )

        self.sent.append(type(msg).__name__)
        if isinstance(msg, GetVariable):
            if msg.key in self.values:
                return VariableResult(key=msg.key, value=self.values[msg.key])
            return ErrorResponse(error=ErrorType.VARIABLE_NOT_FOUND)
        if isinstance(msg, PutVariable):
            self.values[msg.key] = str(msg.value)
            return None
        if isinstance(msg, DeleteVariable):
            self.values.pop(msg.key, None)
            return OKResponse(ok=True)
        return None  # MaskSecret and the like

    def records(self) -> dict[str, str]:
        return {key: value for key, value in self.values.items() if key.startswith(RECORD_PREFIX)}


@pytest.fixture(autouse=True)
def _quick(monkeypatch):
    monkeypatch.setattr("airflow_provider_fuse.hooks.fuse.time.sleep", lambda seconds: None)
    monkeypatch.setattr(occurrences, "SETTLE_SECONDS", 0)
    monkeypatch.setattr(CallRecords, "_claimed", type(CallRecords._claimed)())


@pytest.fixture
def store(monkeypatch) -> VariableStore:
    from airflow.sdk.execution_time import task_runner

    variables = VariableStore()
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", variables, raising=False)
    return variables


@pytest.fixture
def oncall(monkeypatch, fuse_connection) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_ONCALL_PHONE", PHONE)


def another_process() -> None:
    """What a callback path in another process (the DAG processor, the triggerer) remembers: nothing."""
    CallRecords._claimed.clear()


def notifier(**kwargs: Any) -> FuseNotifier:
    arguments: dict[str, Any] = {
        "application_id": 12,
        "deployment_id": 34,
        "destination_variable": "oncall_phone",
    }
    arguments.update(kwargs)
    return FuseNotifier(**arguments)


# When the test run was due: taken from the clock (any day works; a fixed date would read as the past
# or the future some day), at 06:00 so that later hours of the same day stay on it.
RUN_AFTER = datetime.now(timezone.utc).replace(hour=6, minute=0, second=0, microsecond=0)


def task_context(
    state: str = "failed",
    try_number: int = 2,
    map_index: int = -1,
    task_id: str = "charge",
    ti_id: str = "0193-ti-charge-2",
    run_after: datetime = RUN_AFTER,
) -> dict[str, Any]:
    """What the task process hands a task's callback."""
    ti = SimpleNamespace(
        id=ti_id,
        dag_id="billing",
        task_id=task_id,
        run_id="manual__1",
        map_index=map_index,
        try_number=try_number,
        state=state,
    )
    dag_run = SimpleNamespace(dag_id="billing", run_id="manual__1", run_after=run_after, clear_number=0)
    return {
        "ti": ti,
        "task_instance": ti,
        "dag_run": dag_run,
        "run_id": "manual__1",
        "exception": RuntimeError("boom"),
    }


def dag_context(**ti: Any) -> dict[str, Any]:
    """What the DAG processor hands a DAG's on_failure_callback: a task instance's context and a reason
    (Airflow 3.3 hands the last failed one; 3.1 the one whose task id sorts last, whatever its state)."""
    from airflow.sdk import DAG

    context = task_context(**ti)
    context["dag"] = DAG("billing", schedule=None)
    context["reason"] = "task_failure"
    del context["exception"]
    return context


def deadline_context() -> dict[str, Any]:
    """What the scheduler stores for a deadline alert's callback: the run as Airflow's REST API
    answers it (``DAGRunResponse``, JSON) and the deadline."""
    from airflow.api_fastapi.core_api.datamodels.dag_run import DAGRunResponse

    run = {name: None for name in DAGRunResponse.model_fields}  # every field this Airflow has
    run.update(
        run_id="scheduled__1",
        dag_id="billing",
        dag_model=SimpleNamespace(dag_display_name="billing"),
        queued_at=RUN_AFTER,
        start_date=RUN_AFTER,
        run_after=RUN_AFTER,
        run_type="scheduled",
        state="running",
        conf={},
        dag_versions=[],
    )
    return {
        "dag_run": DAGRunResponse.model_validate(SimpleNamespace(**run)).model_dump(mode="json"),
        "deadline": {"id": "0193-deadline", "deadline_time": "2030-01-01T00:00:00+00:00"},
    }


def sent(request: Any) -> tuple[str, dict[str, Any]]:
    parts = decode_multipart(request)
    return parts["phone_number"][0].decode(), json.loads(parts["call_parameters"][0])


# --- the call ----------------------------------------------------------------------------------------


def test_a_failure_places_one_call_saying_what_happened(oncall, store, requests_mock):
    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    notifier(call_parameters={"team": "{{ ti.dag_id }}-oncall"})(task_context())
    (request,) = requests_mock.request_history
    phone, parameters = sent(request)
    assert phone == PHONE
    assert parameters == {
        "team": "billing-oncall",
        "airflow_event": "failure",
        "airflow_dag_id": "billing",
        "airflow_task_id": "charge",
        "airflow_run_id": "manual__1",
        "airflow_map_index": -1,
        "airflow_try_number": 2,
    }


def test_a_retry_is_said_to_be_a_retry(oncall, store, requests_mock):
    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    notifier()(task_context(state="up_for_retry"))
    assert sent(requests_mock.last_request)[1]["airflow_event"] == "retry"


def test_the_queue_fields_are_sent_as_the_queue_operator_sends_them(oncall, store, requests_mock):
    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    notifier(max_attempts=3, reattempt_wait="{{ 60 * 2 }}", is_pci=True)(task_context())
    parts = decode_multipart(requests_mock.last_request)
    assert (parts["max_attempts"][0], parts["reattempt_wait"][0], parts["is_pci"][0]) == (b"3", b"120", b"1")


def test_the_number_can_be_a_connections_password(monkeypatch, fuse_connection, store, requests_mock):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ONCALL", json.dumps({"conn_type": "generic", "password": f"tel:+{PHONE}"})
    )
    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    notifier(destination_variable=None, destination_conn_id="oncall")(task_context())
    assert sent(requests_mock.last_request)[0] == f"tel:+{PHONE}"


def test_the_alias_is_the_notifier():
    assert send_fuse_notification is FuseNotifier


def test_its_template_fields():
    assert tuple(FuseNotifier.template_fields) == (
        "application_id",
        "deployment_id",
        "destination_variable",
        "destination_conn_id",
        "call_parameters",
        "start_timestamp",
        "end_timestamp",
        "max_attempts",
        "reattempt_wait",
        "result_url",
        "fuse_conn_id",
    )


# --- what is refused ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "destinations",
    [{}, {"destination_variable": "oncall_phone", "destination_conn_id": "oncall"}],
    ids=["neither", "both"],
)
def test_exactly_one_place_for_the_number(destinations):
    with pytest.raises(ValueError, match="exactly one of destination_variable"):
        FuseNotifier(application_id=12, deployment_id=34, **destinations)


def test_an_unknown_event_is_refused():
    with pytest.raises(ValueError, match="event must be one of"):
        notifier(event="exploded")


def test_a_call_parameter_may_not_take_the_notifiers_own_names():
    with pytest.raises(ValueError, match="airflow_event: names starting airflow_"):
        notifier(call_parameters={"airflow_event": "nothing"})


def test_a_missing_variable_is_a_clear_error_and_nothing_is_sent(fuse_connection, store, requests_mock):
    with pytest.raises(
        FuseValidationError, match="destination_variable: the Variable 'oncall_phone' does not exist"
    ):
        notifier().notify(task_context())
    assert not requests_mock.called
    assert store.records() == {}


def test_a_missing_connection_is_a_clear_error(fuse_connection, store, requests_mock):
    with pytest.raises(FuseValidationError, match="destination_conn_id: the password of connection 'nobody'"):
        notifier(destination_variable=None, destination_conn_id="nobody").notify(task_context())
    assert not requests_mock.called


def test_a_variable_that_holds_no_number_is_refused_without_repeating_it(monkeypatch, fuse_connection, store):
    monkeypatch.setenv("AIRFLOW_VAR_ONCALL_PHONE", "617-555-9876 (Ada)")
    with pytest.raises(FuseValidationError) as raised:
        notifier().notify(task_context())
    assert raised.value.parameter == "destination_variable"
    assert "9876" not in str(raised.value)
    assert "Ada" not in str(raised.value)


# --- masking -----------------------------------------------------------------------------------------


@pytest.fixture
def masking_on(monkeypatch):
    """Airflow's secret masker on, as in a task, and knowing nothing yet: what it masks, this test
    registered."""
    from airflow.sdk._shared.secrets_masker import _secrets_masker
    from airflow.sdk._shared.secrets_masker.secrets_masker import SecretsMasker

    masker = _secrets_masker()
    saved = (masker.patterns, masker.replacer)
    masker.reset_masker()
    monkeypatch.setattr(SecretsMasker, "mask_secrets_in_logs", True)
    assert PHONE in masker.redact(f"x {PHONE}")
    yield masker
    masker.patterns, masker.replacer = saved


def test_the_number_and_the_developer_key_reach_no_log_and_are_masked(
    oncall, store, requests_mock, log_text, masking_on
):
    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    notifier()(task_context())
    echo = {"error": f"Bad number {PHONE} for key {DEVELOPER_KEY}"}
    requests_mock.post(QUEUE_URL, status_code=400, json=echo)
    another_process()
    notifier()(task_context(try_number=3))
    logs = log_text()
    assert "Fuse queued call 77 about the failure of task billing.charge try 2" in logs
    assert "Fuse did not confirm the call about the failure of task billing.charge try 3" in logs
    for secret in (PHONE, PHONE[1:], DEVELOPER_KEY):
        assert secret not in logs
        assert secret not in masking_on.redact(f"dialing {secret}")
    assert all(PHONE not in value for value in store.values.values())


# --- failures of Fuse --------------------------------------------------------------------------------


def test_a_rejection_is_logged_not_raised_and_a_later_path_tries_again(
    oncall, store, requests_mock, log_text
):
    requests_mock.post(
        QUEUE_URL, [{"status_code": 400, "json": {"error": "Invalid deployment"}}, {"json": {"call_id": "9"}}]
    )
    notifier()(task_context())
    assert "Invalid deployment" in log_text()
    assert store.records() == {}  # nothing was queued: the claim is withdrawn
    another_process()
    notifier()(dag_context())
    assert requests_mock.call_count == 2


def test_an_unknown_outcome_is_logged_not_raised_and_no_other_path_calls(oncall, store, requests_mock):
    requests_mock.post(QUEUE_URL, status_code=500, json={"error": "database error"})
    notifier()(task_context())
    another_process()
    notifier()(dag_context())
    assert requests_mock.call_count == 1


def test_a_fuse_that_cannot_be_reached_does_not_raise(oncall, store, requests_mock):
    from tests.hooks.test_fuse import refused

    requests_mock.post(QUEUE_URL, exc=refused())
    notifier()(task_context())
    assert requests_mock.call_count == 3  # the hook's connect retries
    assert store.records() == {}  # certainly not sent: a later path may try


# --- one occurrence, one call ------------------------------------------------------------------------


def test_the_task_and_the_dag_callback_of_one_failure_call_once(oncall, store, requests_mock):
    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    notifier()(task_context())  # the task's on_failure_callback, in the task process
    another_process()
    notifier()(dag_context())  # the DAG's on_failure_callback, in the DAG processor
    assert requests_mock.call_count == 1
    (record,) = (
        json.loads(each) for each in store.records().values() if '"task_id":"charge"' in each.replace(" ", "")
    )
    assert record["occurrence"]["event"] == "failure"


def test_a_notifier_listed_twice_calls_once_even_where_nothing_can_be_recorded(
    oncall, monkeypatch, requests_mock
):
    from airflow.sdk.execution_time import task_runner

    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", None, raising=False)  # no Variable to write
    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    once = notifier()
    once(task_context())
    once(task_context())
    notifier()(task_context())
    assert requests_mock.call_count == 1


def test_the_next_try_and_another_event_are_called_about(oncall, store, requests_mock):
    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    notifier()(task_context(state="up_for_retry", try_number=1))
    notifier()(task_context(try_number=2))
    notifier(event="approval_requested")(task_context(state="running", try_number=2))
    notifier()(task_context(try_number=2, map_index=4))
    assert requests_mock.call_count == 4


def test_of_two_claims_at_once_only_the_last_written_calls(store, monkeypatch):
    occurrence = Occurrence.of(task_context())
    records = CallRecords()

    def rival_writes_during_the_settle(seconds: float) -> None:
        store.values[occurrence.key] = json.dumps({"token": "another path's"})

    monkeypatch.setattr(occurrences.time, "sleep", rival_writes_during_the_settle)
    assert records.claim(occurrence) is False


def test_a_store_that_cannot_be_read_does_not_stop_the_call(oncall, requests_mock, monkeypatch):
    from airflow.sdk.execution_time import task_runner

    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", None, raising=False)
    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    notifier()(task_context())
    assert requests_mock.call_count == 1


names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30)


@settings(max_examples=80, deadline=None)
@given(
    dag_id=names, run_id=names, task_id=names, map_index=st.integers(-1, 5000), try_number=st.integers(1, 50)
)
def test_every_path_of_one_occurrence_has_one_key_and_other_occurrences_another(
    dag_id, run_id, task_id, map_index, try_number
):
    ti = SimpleNamespace(
        dag_id=dag_id,
        task_id=task_id,
        run_id=run_id,
        map_index=map_index,
        try_number=try_number,
        state="failed",
    )
    from_task = Occurrence.of({"ti": ti, "run_id": run_id})
    from_dag = Occurrence.of(
        {"ti": ti, "dag": SimpleNamespace(dag_id=dag_id), "run_id": run_id, "reason": "x"}
    )
    assert from_task.key == from_dag.key
    assert from_task.key.startswith(RECORD_PREFIX)
    assert len(from_task.key) <= 250  # Airflow's limit of a Variable's key
    later = SimpleNamespace(**{**vars(ti), "try_number": try_number + 1})
    assert Occurrence.of({"ti": later}).key != from_task.key
    assert Occurrence.of({"ti": ti}, "retry").key != from_task.key


# --- deadline alerts and human-in-the-loop -----------------------------------------------------------


def test_a_deadline_alert_in_the_triggerer_calls_once(oncall, store, requests_mock):
    """As the triggerer runs an ``AsyncCallback(FuseNotifier, kwargs=...)``: Airflow's own trigger."""
    from airflow.sdk.definitions.deadline import AsyncCallback

    try:  # Airflow >= 3.2
        from airflow.triggers.callback import CallbackTrigger
    except ImportError:  # Airflow 3.1
        from airflow.triggers.deadline import DeadlineCallbackTrigger as CallbackTrigger

    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    callback = AsyncCallback(
        FuseNotifier,
        kwargs={"application_id": 12, "deployment_id": 34, "destination_variable": "oncall_phone"},
    )

    async def run() -> list[Any]:
        kwargs = {**callback.kwargs, "context": deadline_context()}
        return [event async for event in CallbackTrigger(callback.path, kwargs).run()]

    events = asyncio.run(run())
    assert events[-1].payload["state"] == "success", events
    another_process()
    asyncio.run(run())  # the same deadline's callback run again (a triggerer restarted)
    assert requests_mock.call_count == 1
    parameters = sent(requests_mock.last_request)[1]
    assert parameters["airflow_event"] == "deadline_missed"
    assert (parameters["airflow_dag_id"], parameters["airflow_run_id"]) == ("billing", "scheduled__1")
    assert parameters["airflow_task_id"] is None


def run_on_an_executor() -> tuple[bool, str | None]:
    """As an executor's callback process runs ``SyncCallback(FuseNotifier, kwargs=...)`` (Airflow >= 3.2)."""
    import structlog

    supervisor = pytest.importorskip("airflow.sdk.execution_time.callback_supervisor")
    execute_callback = supervisor.execute_callback

    kwargs = {"application_id": 12, "deployment_id": 34, "destination_variable": "oncall_phone"}
    path = f"{FuseNotifier.__module__}.FuseNotifier"
    return execute_callback(
        path, {**kwargs, "context": deadline_context()}, "dag.py", None, structlog.get_logger()
    )


def test_a_deadline_alert_on_an_executor_calls_and_writes_no_variable(oncall, store, requests_mock):
    """That process's supervisor answers Variable reads and leaves a write unanswered: none is sent."""
    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    assert run_on_an_executor() == (True, None)
    assert requests_mock.call_count == 1
    assert "GetVariable" in store.sent
    assert "PutVariable" not in store.sent


def test_a_deadline_alert_on_an_executor_reads_what_another_path_recorded(oncall, store, requests_mock):
    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    asyncio.run(notifier().async_notify(deadline_context()))  # the triggerer's path records the call
    another_process()
    assert run_on_an_executor() == (True, None)
    assert requests_mock.call_count == 1


def test_each_question_of_one_try_is_called_about_once(oncall, store, requests_mock):
    """A task asks, waits, resumes in a new process with the same try and may ask again: the approval
    and then an unknown outcome. Each asking phones once, however often the notifier is listed."""
    from airflow_provider_fuse.decisions import Ask

    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    ask = Ask(notifiers=[notifier(event="approval_requested")] * 2)
    for _ in range(2):  # two questions, each asked by its own run of the task's process
        for each in ask.notifiers:
            each(task_context(state="running", try_number=1))
        another_process()
    assert requests_mock.call_count == 2
    assert store.records() == {}


def test_a_hitl_operator_takes_it_as_a_notifier(oncall, store, requests_mock):
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    phone_the_approver = notifier(event="approval_requested")
    task = ApprovalOperator(task_id="approve", subject="Approve calling list", notifiers=[phone_the_approver])
    for each in task.notifiers:  # what HITLOperator.execute does once the question is asked
        each(task_context(state="running", try_number=1))
    assert sent(requests_mock.last_request)[1]["airflow_event"] == "approval_requested"


def test_importing_the_notifier_imports_no_requests():
    script = (
        "import sys; import airflow_provider_fuse.notifications.fuse; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('requests', 'requests_toolbelt')))"
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


# --- the page that documents it ----------------------------------------------------------------------


def test_the_docs_list_every_parameter_with_templating_and_default():
    """The notifier's own parameters in its table; the rest are the queue operator's, named and
    documented (with the same default and templating) in docs/operators.md."""
    from airflow_provider_fuse.operators.fuse import FuseQueueCallOperator
    from tests.test_docs import ROOT, expected_default, parameters, rows_by_name, table

    page = (ROOT / "docs" / "notifications.md").read_text()
    rows = rows_by_name(table(page, "## FuseNotifier\n"))
    params = parameters(FuseNotifier)
    for name in rows:
        default = expected_default(params[name])
        shown = rows[name]["default"]
        assert shown.startswith(default) if default else shown.lower().startswith("none"), name
        assert rows[name]["templated"].startswith("yes") == (name in FuseNotifier.template_fields), name
    shared = set(params) - set(rows)
    operator = parameters(FuseQueueCallOperator)
    for name in shared:
        assert f"`{name}`" in page.split("## FuseNotifier\n", 1)[1].split("\n## ", 1)[0], name
        assert params[name].default == operator[name].default, name
        assert (name in FuseNotifier.template_fields) == (name in FuseQueueCallOperator.template_fields), name


def test_the_docs_example_dag_loads():
    from airflow.sdk import DAG

    from tests.test_docs import ROOT, fenced_blocks

    (example,) = fenced_blocks((ROOT / "docs" / "notifications.md").read_text(), "python")
    names: dict[str, Any] = {}
    exec(example, names)
    dag = names["dag"]
    assert isinstance(dag, DAG)
    (alert,) = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline]
    assert alert.callback.path == "airflow_provider_fuse.notifications.fuse.FuseNotifier"


def test_a_question_of_this_providers_operators_says_which_it_is():
    """``decisions.ask`` calls its notifiers with the question named: no ``event=`` needed."""
    from airflow_provider_fuse.decisions import QUESTION_KEY
    from airflow_provider_fuse.notifications.occurrences import Occurrence

    ti = {"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": -1, "try_number": 1, "state": "running"}
    assert Occurrence.of({"ti": ti, QUESTION_KEY: "approval"}).event == "approval_requested"
    assert Occurrence.of({"ti": ti, QUESTION_KEY: "unknown_outcome"}).event == "decision_requested"
    assert Occurrence.of({"ti": ti}).event == "failure"
    assert Occurrence.of({"ti": ti, QUESTION_KEY: "approval"}, "retry").event == "retry"


# --- review r11: which task a DAG callback is about, reused run ids, slow Fuse, what is masked ---------


def test_a_dag_callback_handed_a_task_that_never_ran_does_not_call_again(oncall, store, requests_mock):
    """Airflow 3.1 hands a DAG's callback the task instance whose id sorts last: here a downstream task
    that never ran. The failed task's own callback already called, and marked the run."""
    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    notifier()(task_context(task_id="a_fails", ti_id="ti-a", try_number=1))
    another_process()
    notifier()(dag_context(task_id="z_after", ti_id="ti-z", state="upstream_failed", try_number=0))
    assert requests_mock.call_count == 1
    assert sent(requests_mock.last_request)[1]["airflow_task_id"] == "a_fails"


def test_a_dag_callback_alone_names_the_task_that_failed_not_the_one_it_is_handed(
    oncall, store, requests_mock, log_text
):
    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    context = dag_context(task_id="second", ti_id="ti-2", state="upstream_failed", try_number=0)
    states = {"manual__1": {"first": "failed", "second": "upstream_failed"}}
    context["ti"].get_task_states = lambda dag_id, run_ids: states
    notifier()(context)
    parameters = sent(requests_mock.last_request)[1]
    assert (parameters["airflow_task_id"], parameters["airflow_try_number"]) == ("first", None)
    assert "failure of DAG billing run manual__1 (task first failed)" in log_text()
    another_process()
    notifier()(context)  # the same run's failure again (the DAG processor retried the callback)
    assert requests_mock.call_count == 1


def test_a_run_created_again_under_the_same_run_id_is_called_about(oncall, store, requests_mock):
    """A deleted run's record does not silence the run created after it with the same id."""
    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    notifier()(task_context(try_number=1, ti_id="ti-first-run"))
    another_process()
    notifier()(task_context(try_number=1, ti_id="ti-second-run"))
    another_process()
    later = RUN_AFTER.replace(hour=9)
    notifier()(dag_context(task_id="z", ti_id="ti-z", state="upstream_failed", try_number=0, run_after=later))
    assert requests_mock.call_count == 3


def test_a_deadline_says_its_run(oncall, store, requests_mock):
    """The deadline's ``dag_run`` is Airflow's REST answer, which names the run ``dag_run_id``."""
    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    asyncio.run(notifier().async_notify(deadline_context()))
    assert sent(requests_mock.last_request)[1]["airflow_run_id"] == "scheduled__1"


def test_the_triggerers_supervisor_is_reached_from_its_event_loop(oncall, store, requests_mock, monkeypatch):
    """Airflow 3.1's triggerer answers a synchronous ``send`` by running ``asend`` through asgiref:
    from a plain thread, on a loop of its own, concurrently with the triggerer's (which then reads
    answers out of order and exits). Every message must be sent from the triggerer's loop."""
    from asgiref.sync import async_to_sync

    loops: list[object] = []

    class TriggerComms:
        async def asend(self, message: Any) -> Any:
            loops.append(asyncio.get_running_loop())
            return store.send(message)

        def send(self, message: Any) -> Any:
            return async_to_sync(self.asend)(message)

    from airflow.sdk.execution_time import task_runner

    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", TriggerComms(), raising=False)
    requests_mock.post(QUEUE_URL, json={"call_id": "77"})

    async def triggerer() -> object:
        await notifier().async_notify(deadline_context())
        return asyncio.get_running_loop()

    loop = asyncio.run(triggerer())
    assert requests_mock.call_count == 1
    assert "PutVariable" in store.sent
    assert loops
    assert all(each is loop for each in loops)


def test_the_request_to_fuse_is_bounded_by_the_notifiers_timeout(oncall, store, requests_mock):
    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    notifier()(task_context())  # the connection allows 10 s to connect, 300 s to read
    connect, read = requests_mock.last_request.timeout
    assert connect <= 30
    assert read <= 30


def test_a_slow_fuse_holds_the_callback_no_longer_than_the_timeout(monkeypatch, store, log_text):
    from airflow_provider_fuse.sandbox import FuseSandbox

    monkeypatch.setenv("AIRFLOW_VAR_ONCALL_PHONE", PHONE)
    with FuseSandbox() as sandbox:
        monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", sandbox.connection_json())
        sandbox.inject_fault(delay=10, endpoint="queue")
        started = time.monotonic()
        notifier(timeout=1)(task_context())
        took = time.monotonic() - started
    assert took < 5
    assert "Fuse did not confirm the call about the failure of task billing.charge" in log_text()


@pytest.mark.parametrize("timeout", [0, -1, float("inf"), float("nan"), True, "30"])
def test_a_timeout_that_is_no_number_of_seconds_is_refused(timeout):
    with pytest.raises(ValueError, match="timeout must be a finite number of seconds"):
        notifier(timeout=timeout)


@pytest.fixture
def masked(monkeypatch) -> list[str]:
    """Every value the provider registers with the secret masker."""
    registered: list[str] = []
    monkeypatch.setattr("airflow_provider_fuse.masking._mask", registered.append)
    return registered


def test_a_huge_variable_is_refused_fast_and_never_registered_as_a_secret(
    monkeypatch, fuse_connection, store, masked
):
    monkeypatch.setenv("AIRFLOW_VAR_ONCALL_PHONE", "6" * 5_000_000)
    started = time.monotonic()
    with pytest.raises(FuseValidationError, match="destination_variable: .* more than 256 characters"):
        notifier().notify(task_context())
    assert time.monotonic() - started < 2
    assert masked == []


def test_only_an_accepted_number_is_registered_as_a_secret(monkeypatch, fuse_connection, store, masked):
    monkeypatch.setenv("AIRFLOW_VAR_ONCALL_PHONE", "617-555-9876 (Ada)")
    with pytest.raises(FuseValidationError):
        notifier().notify(task_context())
    assert masked == []
    monkeypatch.setenv("AIRFLOW_VAR_ONCALL_PHONE", f" tel:+{PHONE};ani=8005550199 ")
    with pytest.raises(FuseValidationError):  # the connection is fine; stop before the request
        notifier(application_id=0).notify(task_context())
    assert masked == []  # the ids are checked before the number is read
    notifier()._destination()
    assert f"tel:+{PHONE};ani=8005550199" in masked
    assert PHONE in masked


def test_call_parameters_are_masked_but_not_the_notifiers_own_values(oncall, store, requests_mock, masked):
    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    notifier(call_parameters={"task": "{{ ti.task_id }}", "dag": "billing", "who": "Ada Lovelace"})(
        task_context()
    )
    assert "Ada Lovelace" in masked
    assert "charge" not in masked
    assert "billing" not in masked
