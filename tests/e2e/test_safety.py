"""Campaign safety end to end: retries, crashes, changed lists, chunks, repeats, stale runs, dry runs.

Each scenario runs through real Airflow against the sandbox and is checked from the sandbox's own
record of what it received: zero duplicate uploads, zero lost rows.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from collections import Counter
from pathlib import Path

import airflow
import pytest

from airflow_provider_fuse.sandbox import FuseSandbox

GUARDED = tuple(int(part) for part in airflow.__version__.split(".")[:2]) >= (3, 3)
needs_guard = pytest.mark.skipif(not GUARDED, reason="the duplicate guard needs Airflow >= 3.3")


@pytest.fixture
def contacts(tmp_path: Path) -> Path:
    path = tmp_path / "contacts.csv"
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["destination", "first_name", "account", "note"])
        for index in range(1000):
            writer.writerow([f"1617555{index:04d}", f"Name {index}", f"A-{index:05d}", ""])
    return path


def run(airflow_env, sandbox, dag_id, contacts, **conf):
    return airflow_env.dags_test(
        dag_id, connection=sandbox.connection_json(), conf={"csv_path": str(contacts), **conf}
    )


def uploads_answered(sandbox: FuseSandbox) -> list:
    return [upload for upload in sandbox.uploads() if upload.status_code is not None]


@needs_guard
def test_a_retry_after_success_sends_nothing_and_returns_the_recorded_count(airflow_env, sandbox, contacts):
    result = run(airflow_env, sandbox, "e2e_crash_after_queued", contacts)
    assert (result.task_state, result.try_number, result.xcom) == ("success", 2, 1000), result.output[-3000:]
    assert len(sandbox.uploads()) == 1
    assert len(sandbox.calls()) == 1000
    assert "already queued its list (1000 calls" in result.output


@needs_guard
def test_a_death_between_fuses_answer_and_the_record_blocks_the_retry(airflow_env, sandbox, contacts):
    result = run(airflow_env, sandbox, "e2e_crash_before_recording", contacts)
    assert (result.task_state, result.try_number) == ("failed", 2)
    assert "outcome of an earlier try is unknown" in result.output
    assert len(sandbox.uploads()) == 1


@needs_guard
def test_an_unknown_outcome_is_not_resent_by_a_later_try(airflow_env, sandbox, contacts):
    # Fuse queues the list and the connection drops before the answer; the task has retries.
    sandbox.inject_fault(drop=True, after_queue=True, endpoint="bulk_queue")
    result = run(airflow_env, sandbox, "e2e_bulk_queue", contacts)
    assert (result.task_state, result.try_number) == ("failed", 1)
    assert len(sandbox.uploads()) == 1
    assert len(sandbox.calls()) == 1000


@needs_guard
def test_an_unknown_outcome_is_resent_once_when_retry_is_chosen(airflow_env, sandbox, contacts):
    sandbox.inject_fault(drop=True, endpoint="bulk_queue")
    result = run(airflow_env, sandbox, "e2e_bulk_queue_retry_unknown", contacts)
    assert (result.task_state, result.try_number, result.xcom) == ("success", 2, 1000), result.output[-3000:]
    assert len(sandbox.uploads()) == 2
    assert len(sandbox.calls()) == 1000


@needs_guard
def test_a_chunked_upload_failing_at_chunk_3_resumes_there_and_queues_every_row_once(
    airflow_env, sandbox, contacts
):
    sandbox.inject_fault(status=429, skip=2, endpoint="bulk_queue", message="Too many requests.")
    result = run(airflow_env, sandbox, "e2e_chunked", contacts)
    assert (result.task_state, result.try_number, result.xcom) == ("success", 2, 1000), result.output[-3000:]
    assert [upload.rows for upload in sandbox.uploads()] == [300, 300, 300, 300, 100]
    assert [upload.status_code for upload in sandbox.uploads()] == [200, 200, 429, 200, 200]
    assert "Resuming at part 3 of 4" in result.output
    # The summary compares the rows this try sent with the calls this try's requests queued.
    assert "400 rows sent, 400 calls queued (1000 in all, with earlier tries)" in result.output
    assert "more calls than rows" not in result.output
    dialled = Counter(call.destination for call in sandbox.calls())
    assert len(dialled) == 1000
    assert set(dialled.values()) == {1}


@needs_guard
def test_a_changed_list_after_success_is_answered_from_the_ledger_without_sending(
    airflow_env, sandbox, contacts
):
    result = run(airflow_env, sandbox, "e2e_list_changes", contacts)
    assert (result.task_state, result.try_number, result.xcom) == ("success", 2, 1000), result.output[-3000:]
    assert "the CSV was not read" in result.output
    assert len(sandbox.uploads()) == 1


@needs_guard
def test_the_explicit_resend_sends_the_changed_list(airflow_env, sandbox, contacts):
    result = run(airflow_env, sandbox, "e2e_list_changes", contacts, fuse_allow_resend=True)
    assert (result.task_state, result.try_number, result.xcom) == ("success", 2, 1001), result.output[-3000:]
    assert [upload.rows for upload in sandbox.uploads()] == [1000, 1001]


def test_without_the_guard_the_log_says_so(airflow_env, sandbox, contacts):
    result = run(airflow_env, sandbox, "e2e_bulk_queue", contacts)
    assert result.task_state == "success"
    assert ("The duplicate guard needs Airflow >= 3.3" in result.output) is not GUARDED


def with_repeats(contacts: Path) -> Path:
    """The 1,000 contacts, then rows 1-25 again in other formats of the same numbers."""
    extra = "".join(f"tel:+1617555{index:04d},Again {index},A-{index:05d},\r\n" for index in range(25))
    contacts.write_bytes(contacts.read_bytes() + extra.encode())
    return contacts


def test_repeated_destinations_are_counted_by_default(airflow_env, sandbox, contacts):
    result = run(airflow_env, sandbox, "e2e_bulk_queue", with_repeats(contacts))
    assert result.task_state == "success"
    assert "25 of 1025 rows repeat the destination of an earlier row" in result.output
    assert [upload.rows for upload in sandbox.uploads()] == [1025]


def test_repeated_destinations_fail_when_asked(airflow_env, sandbox, contacts):
    result = run(airflow_env, sandbox, "e2e_duplicates_fail", with_repeats(contacts))
    assert (result.task_state, result.try_number) == ("failed", 1)
    assert sandbox.requests() == []


def test_repeated_destinations_are_dropped_when_asked(airflow_env, sandbox, contacts):
    original = contacts.read_bytes()
    result = run(airflow_env, sandbox, "e2e_duplicates_drop", with_repeats(contacts))
    assert (result.task_state, result.xcom) == ("success", 1000), result.output[-3000:]
    (upload,) = sandbox.uploads()
    assert upload.csv == original


def test_a_run_due_long_ago_is_skipped_instead_of_dialing(airflow_env, sandbox, contacts):
    # A catch-up or backfill run: due (run_after) days ago. `airflow dags test` always makes a run due
    # now, so the DAG's own test() is called with an old run_after, in a process of its own.
    script = (
        "import importlib.util, sys\n"
        "from datetime import datetime, timedelta, timezone\n"
        "spec = importlib.util.spec_from_file_location('e2e_fuse', sys.argv[1])\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "due = datetime.now(timezone.utc) - timedelta(days=3)\n"
        "module.e2e_bulk_queue.test(run_after=due, logical_date=due, run_conf={'csv_path': sys.argv[2]})\n"
    )
    env = {**airflow_env.env, "AIRFLOW_CONN_FUSE_DEFAULT": sandbox.connection_json()}
    done = subprocess.run(
        [sys.executable, "-c", script, str(airflow_env.dags / "e2e_fuse.py"), str(contacts)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    result = airflow_env.last_run("e2e_bulk_queue", done.stdout + done.stderr)
    assert result.task_state == "skipped", result.output[-3000:]
    assert "Catch-up and backfill runs do not call people from an old list" in result.output
    assert sandbox.requests() == []


def test_a_manual_run_with_an_old_logical_date_is_todays_run(airflow_env, sandbox, contacts):
    result = airflow_env.dags_test(
        "e2e_bulk_queue",
        connection=sandbox.connection_json(),
        conf={"csv_path": str(contacts)},
        logical_date="2026-01-05T00:00:00+00:00",
    )
    assert (result.task_state, result.xcom) == ("success", 1000), result.output[-3000:]


def test_a_dry_run_sends_nothing_and_returns_the_row_count(airflow_env, sandbox, contacts):
    result = run(airflow_env, sandbox, "e2e_dry_run", contacts)
    assert (result.task_state, result.xcom) == ("success", 1000), result.output[-3000:]
    assert "Dry run, nothing sent: would queue 1000 rows" in result.output
    assert sandbox.requests() == []
