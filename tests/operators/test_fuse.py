"""FuseBulkQueueOperator without a scheduler: validation, preflight, and each failure's task outcome."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from airflow_provider_fuse._compat import AirflowException, AirflowFailException, AirflowSkipException
from airflow_provider_fuse.operators.fuse import FuseBulkQueueOperator
from tests.helpers import BASE_URL, MemoryStore, assert_retryable, decode_multipart

BULK_URL = f"{BASE_URL}/apps/12/34/bulk_queue"
PHONES = ("6175551234", "16175551235", "16175551236")


@pytest.fixture(autouse=True)
def _no_connect_backoff(monkeypatch):
    monkeypatch.setattr("airflow_provider_fuse.hooks.fuse.time.sleep", lambda seconds: None)


def operator(csv_path, **kwargs) -> FuseBulkQueueOperator:
    arguments = {
        "task_id": "queue_calls",
        "application_id": 12,
        "deployment_id": 34,
        "csv_path": str(csv_path),
    }
    arguments.update(kwargs)
    return FuseBulkQueueOperator(**arguments)


def test_template_fields_are_the_documented_ones():
    assert tuple(FuseBulkQueueOperator.template_fields) == (
        "application_id",
        "deployment_id",
        "csv_path",
        "start_timestamp",
        "end_timestamp",
        "max_attempts",
        "reattempt_wait",
        "result_url",
        "fuse_conn_id",
        "suppression_list",
    )


def test_success_returns_calls_queued_and_logs_one_summary(
    fuse_connection, requests_mock, contacts_csv, log_text
):
    requests_mock.post(BULK_URL, json={"calls_queued": 3})
    assert operator(contacts_csv).execute({}) == 3
    logs = log_text()
    assert "3 rows sent, 3 calls queued, application 12 / deployment 34, window now → open" in logs
    assert not any(phone in logs for phone in PHONES)


def test_fewer_calls_queued_than_rows_is_a_warning_with_both_numbers(
    fuse_connection, requests_mock, contacts_csv, log_text
):
    requests_mock.post(BULK_URL, json={"calls_queued": 2})
    assert operator(contacts_csv).execute({}) == 2
    assert "Fuse queued 2 calls for 3 rows sent" in log_text()


def test_rendered_templates_are_validated_and_sent(fuse_connection, requests_mock, contacts_csv):
    # Derived from the clock, never a fixed date: a run that ended an hour ago is not stale.
    interval_end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    seen = {}
    requests_mock.post(
        BULK_URL, json=lambda request, context: seen.update(decode_multipart(request)) or {"calls_queued": 3}
    )
    task = operator(
        "{{ params.csv }}",
        application_id="{{ params.app }}",
        start_timestamp="{{ data_interval_end }}",
        end_timestamp="{{ params.end }}",
        max_attempts="{{ params.attempts }}",
        reattempt_wait="{{ params.wait }}",
    )
    context = {
        "params": {
            "csv": str(contacts_csv),
            "app": 12,
            "end": "2099-01-01T00:00:00+00:00",
            "attempts": 2,
            "wait": 60,
        },
        "data_interval_end": interval_end,
    }
    task.render_template_fields(context)
    assert task.execute(context) == 3
    assert requests_mock.last_request.url == BULK_URL
    assert seen["start_timestamp"][0] == str(int(interval_end.timestamp())).encode()
    assert seen["end_timestamp"][0] == b"4070908800"
    assert seen["max_attempts"][0] == b"2"
    assert seen["reattempt_wait"][0] == b"60"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"application_id": 0}, "application_id: must be a positive integer"),
        ({"max_attempts": 3}, "reattempt_wait: must be supplied"),
        ({"end_timestamp": "2001-01-01T00:00:00+00:00"}, "end_timestamp: is already past"),
        ({"start_timestamp": datetime(2030, 1, 1)}, "start_timestamp: is a naive datetime"),
        ({"result_url": "not a url"}, "result_url: must be an absolute"),
        ({"is_pci": 5}, "is_pci: must be a bool or 0/1"),
    ],
)
def test_invalid_arguments_fail_without_retries_and_send_nothing(
    fuse_connection, requests_mock, contacts_csv, kwargs, match
):
    with pytest.raises(AirflowFailException, match=match):
        operator(contacts_csv, **kwargs).execute({})
    assert not requests_mock.called


def test_a_given_template_that_rendered_none_is_refused(fuse_connection, requests_mock, contacts_csv):
    task = operator(contacts_csv, start_timestamp="{{ params.start }}")
    task.start_timestamp = None  # what native rendering of a None gives
    with pytest.raises(AirflowFailException, match="start_timestamp: rendered None"):
        task.execute({})
    assert not requests_mock.called


def test_bad_rows_fail_with_row_numbers_and_no_numbers(fuse_connection, requests_mock, tmp_path, log_text):
    path = tmp_path / "bad.csv"
    path.write_text("destination,name\n6175551234,a\n555-0199,b\n6175551235,c\n617555,d\n")
    with pytest.raises(AirflowFailException) as caught:
        operator(path).execute({})
    message = str(caught.value)
    assert "2 of 4 data rows are invalid" in message
    assert "row 3" in message
    assert "row 5" in message
    assert "555-0199" not in message + log_text()
    assert not requests_mock.called


def test_a_csv_path_that_rendered_none_is_refused(fuse_connection, requests_mock):
    with pytest.raises(AirflowFailException, match="csv_path: must be the path"):
        operator("None").execute({})
    assert not requests_mock.called


def test_a_missing_file_fails_naming_it(fuse_connection, requests_mock, tmp_path):
    with pytest.raises(AirflowFailException, match="no such file"):
        operator(tmp_path / "nope.csv").execute({})
    assert not requests_mock.called


def test_a_header_without_contacts_skips_and_sends_nothing(fuse_connection, requests_mock, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("destination,name\n")
    with pytest.raises(AirflowSkipException):
        operator(path).execute({})
    assert not requests_mock.called


def test_a_bom_and_destination_not_first_are_accepted_with_warnings(
    fuse_connection, requests_mock, tmp_path, log_text
):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffname,destination\nAda,6175551234\n".encode())
    requests_mock.post(BULK_URL, json={"calls_queued": 1})
    assert operator(path).execute({}) == 1
    logs = log_text()
    assert "byte-order mark" in logs
    assert "'destination' is column 2" in logs


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409])
def test_a_rejection_fails_without_retries_in_fuses_words(
    fuse_connection, requests_mock, contacts_csv, status
):
    requests_mock.post(BULK_URL, status_code=status, json={"error": "No deployment was found."})
    with pytest.raises(AirflowFailException) as caught:
        operator(contacts_csv, retries=3).execute({})
    assert str(caught.value).startswith(f"Fuse API answered {status}: No deployment was found.")
    assert requests_mock.call_count == 1


def test_too_many_requests_is_left_to_the_task_retries(fuse_connection, requests_mock, contacts_csv):
    requests_mock.post(BULK_URL, status_code=429, json={"error": "Too many requests"})
    with pytest.raises(AirflowException) as caught:
        operator(contacts_csv).execute({})
    assert_retryable(caught.value)


def test_not_sent_is_left_to_the_task_retries(fuse_connection, requests_mock, contacts_csv):
    refused = requests.ConnectionError(MaxRetryError(None, "/", NewConnectionError(None, "refused")))
    requests_mock.post(BULK_URL, exc=refused)
    with pytest.raises(AirflowException, match="not sent") as caught:
        operator(contacts_csv).execute({})
    assert_retryable(caught.value)
    assert requests_mock.call_count == 3  # the hook's own connect retries


@pytest.mark.parametrize(
    "answer",
    [
        {"status_code": 500, "json": {"error": "database error"}},
        {"status_code": 502, "text": "<html><title>502 Bad Gateway</title></html>"},
        {"status_code": 200, "text": "<html>login page</html>"},
        {"exc": requests.exceptions.ReadTimeout("read timed out")},
    ],
)
def test_an_unknown_outcome_fails_without_retries_and_says_to_check_fuse(
    fuse_connection, requests_mock, contacts_csv, answer
):
    requests_mock.post(BULK_URL, **answer)
    with pytest.raises(AirflowFailException) as caught:
        operator(contacts_csv, retries=3).execute({})
    message = str(caught.value)
    assert "Fuse may have queued some or all of the calls" in message
    assert "application 12 / deployment 34" in message
    assert "could dial every contact twice" in message
    assert requests_mock.call_count == 1


def test_on_unknown_outcome_retry_leaves_it_to_the_task_retries(fuse_connection, requests_mock, contacts_csv):
    requests_mock.post(BULK_URL, status_code=503, json={"error": "unavailable"})
    with pytest.raises(AirflowException, match="retrying") as caught:
        operator(contacts_csv, on_unknown_outcome="retry").execute({})
    assert_retryable(caught.value)


def test_on_unknown_outcome_must_be_fail_or_retry(contacts_csv):
    with pytest.raises(ValueError, match="on_unknown_outcome"):
        operator(contacts_csv, on_unknown_outcome="ignore")


def test_a_bad_connection_fails_without_retries(monkeypatch, requests_mock, contacts_csv):
    monkeypatch.setenv(
        "AIRFLOW_CONN_FUSE_DEFAULT",
        '{"conn_type": "fuse", "login": "a@b.c", "password": "k3y-value", "host": "http://fuse.example.com"}',
    )
    with pytest.raises(AirflowFailException, match="plain http"):
        operator(contacts_csv).execute({})
    assert not requests_mock.called


# --- Campaign safety: duplicates, stale runs, dry run, chunks and the duplicate guard ------------------


def numbered_csv(tmp_path, rows: int, repeat_first: int = 0, name: str = "numbered.csv"):
    path = tmp_path / name
    lines = ["destination,n"] + [f"1617555{index:04d},{index}" for index in range(rows)]
    lines += [f"1617555{index:04d},again" for index in range(repeat_first)]
    path.write_text("\n".join(lines) + "\n")
    return path


def queued_rows(requests_mock) -> list[int]:
    return [len(body["csv"][0].splitlines()) - 1 for body in requests_mock.bodies]


@pytest.fixture
def fuse_counts_rows(fuse_connection, requests_mock):
    """Fuse answers each upload with as many calls as it had rows; bodies are kept on the mocker."""
    requests_mock.bodies = []

    def answer(request, context):
        body = decode_multipart(request)
        requests_mock.bodies.append(body)
        return {"calls_queued": len(body["csv"][0].splitlines()) - 1}

    requests_mock.post(BULK_URL, json=answer)
    return requests_mock


def test_repeated_destinations_are_counted_in_a_warning_without_numbers(fuse_counts_rows, tmp_path, log_text):
    path = numbered_csv(tmp_path, 5, repeat_first=2)
    assert operator(path).execute({}) == 7
    logs = log_text()
    assert "2 of 7 rows repeat the destination of an earlier row (rows 7, 8" in logs
    assert "16175550000" not in logs


def test_repeated_destinations_fail_when_asked(fuse_counts_rows, tmp_path):
    with pytest.raises(AirflowFailException, match="2 of 7 rows repeat"):
        operator(numbered_csv(tmp_path, 5, repeat_first=2), on_duplicate_destinations="fail").execute({})
    assert not fuse_counts_rows.called


def test_repeated_destinations_are_dropped_when_asked(fuse_counts_rows, tmp_path):
    path = numbered_csv(tmp_path, 5, repeat_first=2)
    assert operator(path, on_duplicate_destinations="drop").execute({}) == 5
    (body,) = fuse_counts_rows.bodies
    assert b"again" not in body["csv"][0]
    assert path.read_text().count("again") == 2  # the user's file is untouched


def test_a_stale_run_is_skipped_with_a_warning(fuse_counts_rows, contacts_csv, log_text):
    old = {"data_interval_end": datetime(2026, 1, 1, tzinfo=timezone.utc)}
    with pytest.raises(AirflowSkipException, match="Stale run"):
        operator(contacts_csv).execute(old)
    assert not fuse_counts_rows.called
    assert "max_run_age" in log_text()


def test_max_run_age_none_sends_an_old_run(fuse_counts_rows, contacts_csv):
    old = {"data_interval_end": datetime(2026, 1, 1, tzinfo=timezone.utc)}
    assert operator(contacts_csv, max_run_age=None).execute(old) == 3


def test_a_recent_run_is_sent(fuse_counts_rows, contacts_csv):
    recent = {"data_interval_end": datetime.now(timezone.utc)}
    assert operator(contacts_csv).execute(recent) == 3


def test_dry_run_checks_everything_sends_nothing_and_returns_the_row_count(
    fuse_counts_rows, tmp_path, log_text
):
    path = numbered_csv(tmp_path, 5, repeat_first=1)
    task = operator(path, dry_run=True, max_attempts=2, reattempt_wait=60, on_duplicate_destinations="drop")
    assert task.execute({}) == 5
    assert not fuse_counts_rows.called
    logs = log_text()
    assert "Dry run, nothing sent: would queue 5 rows in 1 request(s)" in logs
    assert "max_attempts=2, reattempt_wait=60" in logs
    assert "16175550000" not in logs


def test_dry_run_checks_the_connection_too(monkeypatch, requests_mock, contacts_csv):
    monkeypatch.setenv(
        "AIRFLOW_CONN_FUSE_DEFAULT",
        '{"conn_type": "fuse", "login": "a@b.c", "password": "k3y-value", "host": "http://fuse.example.com"}',
    )
    with pytest.raises(AirflowFailException, match="plain http"):
        operator(contacts_csv, dry_run=True).execute({})
    assert not requests_mock.called


def test_dry_run_still_fails_on_bad_input(fuse_counts_rows, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("destination\nnope\n")
    with pytest.raises(AirflowFailException, match="row 2"):
        operator(path, dry_run=True).execute({})


def test_chunks_are_sent_as_csvs_with_the_header_and_the_total_returned(fuse_counts_rows, tmp_path):
    path = numbered_csv(tmp_path, 10)
    assert operator(path, chunk_size=4).execute({}) == 10
    assert queued_rows(fuse_counts_rows) == [4, 4, 2]
    assert all(body["csv"][0].startswith(b"destination,n\n") for body in fuse_counts_rows.bodies)
    sent = b"".join(body["csv"][0].removeprefix(b"destination,n\n") for body in fuse_counts_rows.bodies)
    assert sent == path.read_bytes().removeprefix(b"destination,n\n")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"chunk_size": 0}, "chunk_size"),
        ({"chunk_size": "10"}, "chunk_size"),
        ({"on_duplicate_destinations": "ignore"}, "on_duplicate_destinations"),
        ({"max_run_age": 3600}, "max_run_age"),
    ],
)
def test_safety_arguments_are_checked_when_the_dag_is_parsed(contacts_csv, kwargs, match):
    with pytest.raises(ValueError, match=match):
        operator(contacts_csv, **kwargs)


def test_without_a_state_store_the_guard_says_it_is_off(fuse_counts_rows, contacts_csv, log_text):
    operator(contacts_csv).execute({})
    assert "The duplicate guard needs Airflow >= 3.3" in log_text()


def test_a_later_try_after_success_sends_nothing_and_returns_the_recorded_count(
    fuse_counts_rows, contacts_csv, log_text
):
    context = {"task_state_store": MemoryStore()}
    assert operator(contacts_csv).execute(context) == 3
    assert operator(contacts_csv).execute(context) == 3
    assert fuse_counts_rows.call_count == 1
    assert "already queued its list (3 calls" in log_text()


def test_an_unknown_outcome_blocks_a_later_try(fuse_connection, requests_mock, contacts_csv):
    context = {"task_state_store": MemoryStore()}
    requests_mock.post(BULK_URL, status_code=502, text="<html>Bad Gateway</html>")
    with pytest.raises(AirflowFailException, match="Unknown outcome"):
        operator(contacts_csv).execute(context)
    requests_mock.post(BULK_URL, json={"calls_queued": 3})
    with pytest.raises(AirflowFailException, match="outcome of an earlier try is unknown") as caught:
        operator(contacts_csv).execute(context)
    assert "state-store key 'airflow_provider_fuse.bulk_queue'" in str(caught.value)
    assert requests_mock.call_count == 1


def test_a_rejection_clears_the_intent_so_a_fixed_retry_sends(fuse_connection, requests_mock, contacts_csv):
    context = {"task_state_store": MemoryStore()}
    requests_mock.post(BULK_URL, status_code=429, json={"error": "Too many requests"})
    with pytest.raises(AirflowException):
        operator(contacts_csv).execute(context)
    requests_mock.post(BULK_URL, json={"calls_queued": 3})
    assert operator(contacts_csv).execute(context) == 3


def test_a_changed_list_after_success_is_answered_from_the_ledger_unless_resend_is_allowed(
    fuse_counts_rows, tmp_path, log_text
):
    context = {"task_state_store": MemoryStore()}
    path = numbered_csv(tmp_path, 3)
    operator(path).execute(context)
    path.write_text(path.read_text() + "16175559999,new\n")
    # Without allow_resend the ledger answers first: the list is not read, nothing is sent.
    assert operator(path).execute(context) == 3
    assert "the CSV was not read" in log_text()
    with pytest.raises(AirflowFailException, match="parameters of the list changed"):
        operator(numbered_csv(tmp_path, 3, name="same.csv"), max_attempts=1).execute(context)
    assert fuse_counts_rows.call_count == 1
    assert operator(path, allow_resend=True).execute(context) == 4
    assert fuse_counts_rows.call_count == 2


def test_resend_can_be_asked_for_in_the_dag_run_conf(fuse_counts_rows, tmp_path):
    from types import SimpleNamespace

    store = MemoryStore()
    path = numbered_csv(tmp_path, 3)
    operator(path).execute({"task_state_store": store})
    path.write_text(path.read_text() + "16175559999,new\n")
    context = {"task_state_store": store, "dag_run": SimpleNamespace(conf={"fuse_allow_resend": True})}
    assert operator(path).execute(context) == 4


def test_a_chunked_retry_resumes_at_the_first_part_not_queued(fuse_connection, requests_mock, tmp_path):
    context = {"task_state_store": MemoryStore()}
    path = numbered_csv(tmp_path, 10)
    bodies = []

    def ok(request, ctx):
        body = decode_multipart(request)["csv"][0]
        bodies.append(body)
        return {"calls_queued": len(body.splitlines()) - 1}

    requests_mock.post(
        BULK_URL,
        [{"json": ok}, {"json": ok}, {"status_code": 429, "json": {"error": "slow down"}}, {"json": ok}],
    )
    with pytest.raises(AirflowException, match=r"part 3 of 4") as caught:
        operator(path, chunk_size=3).execute(context)
    assert_retryable(caught.value)
    assert operator(path, chunk_size=3).execute(context) == 10
    assert [len(body.splitlines()) - 1 for body in bodies] == [3, 3, 3, 1]
    sent_rows = [line for body in bodies for line in body.splitlines()[1:]]
    assert sorted(sent_rows) == sorted(path.read_bytes().splitlines()[1:])


def test_without_the_guard_a_failure_after_a_queued_part_is_not_retried(
    fuse_connection, requests_mock, tmp_path
):
    requests_mock.post(
        BULK_URL, [{"json": {"calls_queued": 3}}, {"status_code": 429, "json": {"error": "slow down"}}]
    )
    with pytest.raises(AirflowFailException, match="Parts 1-1 were queued \\(3 calls\\)"):
        operator(numbered_csv(tmp_path, 6), chunk_size=3).execute({})


def test_a_state_store_that_clears_on_success_is_warned_about(
    fuse_counts_rows, contacts_csv, log_text, monkeypatch
):
    import airflow

    if airflow.__version__.startswith(("3.1.", "3.2.")):
        pytest.skip("the [state_store] section exists from Airflow 3.3")
    monkeypatch.setenv("AIRFLOW__STATE_STORE__CLEAR_ON_SUCCESS", "True")
    operator(contacts_csv).execute({"task_state_store": MemoryStore()})
    assert "clear_on_success is on" in log_text()


def test_airflows_own_dry_run_method_still_works(contacts_csv):
    """``dry_run=True`` must not shadow BaseOperator.dry_run(), which renders the templates."""
    task = operator(contacts_csv, dry_run=True)
    assert callable(task.dry_run)
    task.dry_run()


def test_without_the_guard_an_unknown_outcome_after_a_queued_part_is_not_retried_even_if_asked(
    fuse_connection, requests_mock, tmp_path
):
    requests_mock.post(BULK_URL, [{"json": {"calls_queued": 3}}, {"status_code": 502, "text": "<html/>"}])
    task = operator(numbered_csv(tmp_path, 6), chunk_size=3, on_unknown_outcome="retry")
    with pytest.raises(AirflowFailException, match="Unknown outcome.*Parts 1-1 were queued"):
        task.execute({})


def test_a_clear_after_success_returns_the_count_even_once_the_window_closed_or_the_run_is_stale(
    fuse_counts_rows, contacts_csv, monkeypatch
):
    import time

    store = MemoryStore()
    end = int(time.time()) + 3600
    assert operator(contacts_csv, end_timestamp=end).execute({"task_state_store": store}) == 3
    monkeypatch.setattr("airflow_provider_fuse.fields.time.time", lambda: end + 60)
    later = {"task_state_store": store, "data_interval_end": datetime(2026, 1, 1, tzinfo=timezone.utc)}
    assert operator(contacts_csv, end_timestamp=end).execute(later) == 3
    assert fuse_counts_rows.call_count == 1


def test_a_resend_conf_that_says_false_does_not_resend(fuse_counts_rows, tmp_path):
    from types import SimpleNamespace

    store = MemoryStore()
    path = numbered_csv(tmp_path, 3)
    operator(path).execute({"task_state_store": store})
    path.write_text(path.read_text() + "16175559999,new\n")
    context = {"task_state_store": store, "dag_run": SimpleNamespace(conf={"fuse_allow_resend": "false"})}
    assert operator(path).execute(context) == 3
    assert fuse_counts_rows.call_count == 1
