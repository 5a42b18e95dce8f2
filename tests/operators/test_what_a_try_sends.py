"""What one try of a Fuse operator sends, and what a retry, clear or timeout does after it.

Nothing after Fuse's 200 fails the task; an intent is recorded only for a request that left; a failed
part names its rows; a retry or clear is answered from the ledger first; a stale run does not dial.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from airflow_provider_fuse._compat import AirflowFailException
from airflow_provider_fuse.guard import LEDGER_KEY
from airflow_provider_fuse.operators.fuse import FuseQueueCallOperator
from tests.helpers import BASE_URL, MemoryStore, connection_json
from tests.operators.test_fuse import BULK_URL, numbered_csv, operator

QUEUE_URL = f"{BASE_URL}/apps/12/34/queue"


@pytest.fixture(autouse=True)
def _no_connect_backoff(monkeypatch):
    monkeypatch.setattr("airflow_provider_fuse.hooks.fuse.time.sleep", lambda seconds: None)


def states(store: MemoryStore, key: str = LEDGER_KEY) -> list[str | None]:
    value = store.values.get(key)
    return [entry and entry["state"] for entry in value["parts"]] if value else []


# --- nothing after Fuse's 200 fails the task ------------------------------------------------------


class FailsToRecordSuccess(MemoryStore):
    def set(self, key, value, *, retention=None):
        if any(entry and entry["state"] == "queued" for entry in value["parts"]):
            raise ConnectionError("state store unreachable")
        super().set(key, value, retention=retention)


def test_a_ledger_that_cannot_record_success_does_not_fail_the_task(
    fuse_connection, requests_mock, contacts_csv, log_text
):
    requests_mock.post(BULK_URL, json={"calls_queued": 3})
    store = FailsToRecordSuccess()
    assert operator(contacts_csv).execute({"task_state_store": store}) == 3
    assert "ecording part 1 as queued in the task state store" in log_text()
    # The intent stays: a later try refuses to send instead of dialing everyone again.
    with pytest.raises(AirflowFailException, match="outcome of an earlier try is unknown"):
        operator(contacts_csv).execute({"task_state_store": store})
    assert requests_mock.call_count == 1


def test_a_summary_that_cannot_be_logged_does_not_fail_the_task(
    fuse_connection, requests_mock, contacts_csv, monkeypatch
):
    requests_mock.post(BULK_URL, json={"calls_queued": 3})
    monkeypatch.setattr(
        "airflow_provider_fuse.fields.QueueFields.describe_window",
        lambda self: (_ for _ in ()).throw(ValueError("year 33658 is out of range")),
    )
    assert operator(contacts_csv).execute({}) == 3


def test_more_calls_queued_than_rows_sent_is_a_warning_naming_both(
    fuse_connection, requests_mock, contacts_csv, log_text
):
    requests_mock.post(BULK_URL, json={"calls_queued": 5})
    assert operator(contacts_csv).execute({}) == 5
    assert "queued 5 calls for 3 rows sent: more calls than rows" in log_text()


# --- an intent only for a request that left ---------------------------------------------------


def test_a_redirect_keeps_the_intent_so_the_next_try_does_not_send_again(
    fuse_connection, requests_mock, contacts_csv
):
    store = MemoryStore()
    requests_mock.post(BULK_URL, status_code=303, headers={"Location": "/elsewhere"})
    with pytest.raises(AirflowFailException, match="Unknown outcome"):
        operator(contacts_csv).execute({"task_state_store": store})
    assert states(store) == ["sending"]
    with pytest.raises(AirflowFailException, match="outcome of an earlier try is unknown"):
        operator(contacts_csv).execute({"task_state_store": store})
    assert requests_mock.call_count == 1


@pytest.mark.parametrize(
    "connection",
    [
        {"host": "https://fuse.example.com:99999/api"},
        {"port": 99999},
        {"extra": {"proxies": {"https": "socks5://127.0.0.1:1080"}}},
        {"extra": {"timeout": "Infinity"}},
    ],
)
def test_a_request_that_cannot_leave_leaves_no_intent(monkeypatch, requests_mock, contacts_csv, connection):
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json(**connection))
    store = MemoryStore()
    with pytest.raises(AirflowFailException, match="Nothing was sent to Fuse"):
        operator(contacts_csv).execute({"task_state_store": store})
    assert "sending" not in states(store)
    assert not requests_mock.called


def test_a_missing_connection_leaves_no_intent(monkeypatch, requests_mock, contacts_csv):
    monkeypatch.delenv("AIRFLOW_CONN_FUSE_DEFAULT", raising=False)
    store = MemoryStore()
    with pytest.raises(Exception, match="fuse_default"):
        operator(contacts_csv).execute({"task_state_store": store})
    assert "sending" not in states(store)


# --- a failed part names its rows of the file ---------------------------------------------------


def test_a_rejected_part_names_its_rows_of_the_file(fuse_connection, requests_mock, tmp_path):
    path = numbered_csv(tmp_path, 6)
    requests_mock.post(
        BULK_URL,
        [{"json": {"calls_queued": 2}}, {"status_code": 400, "json": {"error": "Invalid row 2."}}],
    )
    with pytest.raises(AirflowFailException) as caught:
        operator(path, chunk_size=2).execute({"task_state_store": MemoryStore()})
    message = str(caught.value)
    assert "part 2 of 3: rows 4-5 of the file" in message
    assert "whose first data row is the file's row 4" in message


# --- a retry or clear after success is answered from the ledger first -------------------------------


def test_a_clear_after_success_answers_from_the_ledger_when_the_csv_is_gone(
    fuse_connection, requests_mock, tmp_path, log_text
):
    path = numbered_csv(tmp_path, 3)
    requests_mock.post(BULK_URL, json={"calls_queued": 3})
    store = MemoryStore()
    assert operator(path).execute({"task_state_store": store}) == 3
    path.unlink()  # the example's cleanup removed the export
    assert operator(path).execute({"task_state_store": store}) == 3
    logs = log_text()
    assert "Nothing sent: an earlier try of this task instance already queued its list (3 calls" in logs
    assert "rows sent" not in logs.split("Nothing sent")[-1]
    assert requests_mock.call_count == 1


def test_a_resend_that_must_compare_says_the_file_is_needed(fuse_connection, requests_mock, tmp_path):
    path = numbered_csv(tmp_path, 3)
    requests_mock.post(BULK_URL, json={"calls_queued": 3})
    store = MemoryStore()
    operator(path).execute({"task_state_store": store})
    path.unlink()
    with pytest.raises(AirflowFailException, match="needed to compare it with the 3 calls") as caught:
        operator(path, allow_resend=True).execute({"task_state_store": store})
    assert "allow_resend is set" in str(caught.value)


# --- stale runs -----------------------------------------------------------------------------------


def test_a_stale_retry_that_finds_parts_queued_fails_naming_them(fuse_connection, requests_mock, tmp_path):
    path = numbered_csv(tmp_path, 4)
    requests_mock.post(BULK_URL, [{"json": {"calls_queued": 2}}, {"status_code": 503}])
    store = MemoryStore()
    with pytest.raises(AirflowFailException, match="Unknown outcome"):
        operator(path, chunk_size=2, on_unknown_outcome="fail").execute({"task_state_store": store})
    ledger = store.values[LEDGER_KEY]
    ledger["parts"][1] = None  # as if part 2 had been rejected: the retry would resume there
    store.values[LEDGER_KEY] = ledger
    old = datetime.now(timezone.utc) - timedelta(days=3)
    stale = {"task_state_store": store, "dag_run": SimpleNamespace(run_after=old, conf={})}
    with pytest.raises(AirflowFailException, match=r"queued parts 1-1 of 2 \(2 calls\)"):
        operator(path, chunk_size=2).execute(stale)


def test_staleness_is_anchored_on_run_after_not_the_data_interval(
    fuse_connection, requests_mock, contacts_csv
):
    requests_mock.post(BULK_URL, json={"calls_queued": 3})
    now = datetime.now(timezone.utc)
    manual_run_of_a_weekly_dag = {
        "dag_run": SimpleNamespace(run_after=now - timedelta(minutes=1), conf={}),
        "data_interval_end": now - timedelta(days=6),
    }
    assert operator(contacts_csv).execute(manual_run_of_a_weekly_dag) == 3


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_timestamp_in_milliseconds_is_refused_before_anything_is_sent(
    fuse_connection, requests_mock, contacts_csv, dry_run
):
    with pytest.raises(AirflowFailException, match="end_timestamp.*milliseconds"):
        operator(contacts_csv, end_timestamp=999999999999, dry_run=dry_run).execute({})
    assert not requests_mock.called


def test_a_list_emptied_after_parts_were_queued_fails_instead_of_skipping(
    fuse_connection, requests_mock, tmp_path
):
    path = numbered_csv(tmp_path, 4)
    requests_mock.post(
        BULK_URL, [{"json": {"calls_queued": 2}}, {"status_code": 400, "json": {"error": "No."}}]
    )
    store = MemoryStore()
    with pytest.raises(AirflowFailException):
        operator(path, chunk_size=2).execute({"task_state_store": store})
    path.write_text("destination,n\n")
    with pytest.raises(AirflowFailException, match="queued 2 calls"):
        operator(path, chunk_size=2).execute({"task_state_store": store})


def _times_out(request, context):
    from airflow_provider_fuse._compat import AirflowTaskTimeout

    raise AirflowTaskTimeout("execution_timeout")


def test_a_timeout_after_the_request_left_is_not_retried_without_the_guard(
    fuse_connection, requests_mock, contacts_csv
):
    requests_mock.post(BULK_URL, json=_times_out)
    with pytest.raises(AirflowFailException, match="execution_timeout ended this task after a request"):
        operator(contacts_csv).execute({})


def test_a_timeout_after_the_request_left_keeps_the_intent_with_the_guard(
    fuse_connection, requests_mock, contacts_csv
):
    from airflow_provider_fuse._compat import AirflowTaskTimeout

    requests_mock.post(BULK_URL, json=_times_out)
    store = MemoryStore()
    with pytest.raises(AirflowTaskTimeout):
        operator(contacts_csv).execute({"task_state_store": store})
    assert states(store) == ["sending"]


def test_a_timeout_of_a_single_call_after_it_left_is_not_retried_without_the_guard(
    fuse_connection, requests_mock
):
    requests_mock.post(QUEUE_URL, json=_times_out)
    task = FuseQueueCallOperator(
        task_id="call", application_id=12, deployment_id=34, phone_number="16175551234"
    )
    with pytest.raises(AirflowFailException, match="execution_timeout ended this task after a request"):
        task.execute({})
