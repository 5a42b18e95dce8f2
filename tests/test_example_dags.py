"""The example DAGs import cleanly in a DagBag, as the DAG processor would load them."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLE_DAGS = Path(__file__).resolve().parents[1] / "example_dags"


def dag_bag():
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.3
        from airflow.models.dagbag import DagBag
    import inspect

    accepts_examples = "include_examples" in inspect.signature(DagBag).parameters
    options = {"include_examples": False} if accepts_examples else {}
    return DagBag(dag_folder=str(EXAMPLE_DAGS), **options)


def test_example_dags_import_without_errors():
    bag = dag_bag()
    assert bag.import_errors == {}
    assert "example_fuse_bulk_queue" in bag.dag_ids


def test_the_bulk_queue_example_hands_the_export_to_the_operator():
    dag = dag_bag().dags["example_fuse_bulk_queue"]
    queue_calls = dag.get_task("queue_calls")
    assert type(queue_calls).__name__ == "FuseBulkQueueOperator"
    assert {task.task_id for task in queue_calls.upstream_list} == {"export_contacts"}
    assert {task.task_id for task in queue_calls.downstream_list} == {"report", "remove_export"}


def test_the_bulk_queue_examples_export_is_removed_by_a_teardown_of_its_setup():
    dag = dag_bag().dags["example_fuse_bulk_queue"]
    export, remove = dag.get_task("export_contacts"), dag.get_task("remove_export")
    assert export.is_setup
    assert remove.is_teardown
    assert remove.upstream_task_ids == {"export_contacts", "queue_calls"}


def test_the_bulk_queue_examples_run_state_is_decided_by_report_and_the_teardown():
    """A failed upload leaves report upstream_failed; an export that cannot be removed fails the teardown."""
    dag = dag_bag().dags["example_fuse_bulk_queue"]
    assert {task.task_id for task in dag.leaves} == {"report", "remove_export"}
    assert dag.get_task("remove_export").on_failure_fail_dagrun


def test_the_bulk_queue_examples_report_says_there_is_no_count_after_a_mark_success(caplog):
    """After an unknown outcome the documented recovery marks the upload success: no count in XCom."""
    report = dag_bag().dags["example_fuse_bulk_queue"].get_task("report").python_callable
    with caplog.at_level("INFO"):
        report(None)
        report(3)
    messages = [record.getMessage() for record in caplog.records]
    assert not any("None" in message for message in messages)
    assert any("no count" in message for message in messages)
    assert "Fuse queued 3 calls" in messages


def test_clearing_the_bulk_queue_examples_upload_clears_its_export_and_teardown_too():
    dag = dag_bag().dags["example_fuse_bulk_queue"]
    cleared = dag.partial_subset("queue_calls", include_upstream=False, include_downstream=False)
    assert set(cleared.task_ids) == {"export_contacts", "queue_calls", "remove_export"}


def test_the_single_call_example_takes_no_contact_from_params():
    dag = dag_bag().dags["example_fuse_queue_call"]
    assert set(dag.params) == {"application_id", "deployment_id"}
    queue_call = dag.get_task("queue_call")
    assert "var.json.fuse_example_contact.phone_number" in queue_call.phone_number
    assert "params" not in repr(queue_call.call_parameters)
    assert [task.task_id for task in dag.leaves] == ["report"]


# --- example_fuse_campaign_results: list → calls → outcomes → a table a downstream task reads ------


def campaign_example():
    return dag_bag().dags["example_fuse_campaign_results"]


def test_the_results_example_queues_with_collect_results_then_waits_for_the_outcomes():
    dag = campaign_example()
    queue_calls, wait = dag.get_task("queue_calls"), dag.get_task("wait_for_outcomes")
    assert type(queue_calls).__name__ == "FuseBulkQueueOperator"
    assert queue_calls.collect_results is True
    assert queue_calls.result_url is None
    assert queue_calls.on_duplicate_destinations == "drop"
    assert queue_calls.upstream_task_ids == {"export_contacts"}
    assert type(wait).__name__ == "FuseCampaignResultsSensor"
    assert wait.bulk_task_id == "queue_calls"
    assert wait.deferrable is True
    assert wait.upstream_task_ids == {"queue_calls"}
    assert dag.get_task("write_retry_list").upstream_task_ids == {"wait_for_outcomes"}


def test_the_results_examples_export_is_removed_by_a_teardown_as_soon_as_the_upload_is_done():
    dag = campaign_example()
    export, remove = dag.get_task("export_contacts"), dag.get_task("remove_export")
    assert export.is_setup
    assert remove.is_teardown
    assert remove.on_failure_fail_dagrun
    assert remove.upstream_task_ids == {"export_contacts", "queue_calls"}


def test_the_results_examples_run_state_is_decided_by_the_retry_list_and_the_teardown():
    """A failed upload or a failed wait leaves write_retry_list failed or upstream_failed: the run fails."""
    assert {task.task_id for task in campaign_example().leaves} == {"write_retry_list", "remove_export"}


def test_the_results_examples_list_ends_two_completed_one_failed_in_the_sandbox():
    """Fictional 555-01xx numbers, exactly one ending in 9 (never answered), one attempt each."""
    from airflow_provider_fuse.preflight import destination_number

    dag = campaign_example()
    contacts = module_of(dag.get_task("write_retry_list"))["CONTACTS"]
    numbers = [str(destination_number(destination)) for destination, _ in contacts]
    assert len(set(numbers)) == len(numbers) == 3
    assert all(number[-7:-2] == "55501" for number in numbers)
    assert sum(number.endswith("9") for number in numbers) == 1
    assert dag.get_task("queue_calls").max_attempts == 1


def module_of(task) -> dict:
    """The globals of the example module a @task was defined in (the DagBag loads it under its own name)."""
    return task.python_callable.__globals__


def outcome(status: str, number: str, *, queued: int = 1_767_225_600, attempts: int = 1) -> dict:
    return {
        "status": status,
        "attempts": str(attempts),
        "max_attempts": "1",
        "queued_timestamp": str(queued),
        "start_timestamp": str(queued),
        "end_timestamp": None,
        "reattempt_wait": None,
        "events": [
            {"event": "queued", "timestamp": str(queued)},
            {"event": status, "timestamp": str(queued)},
        ],
        "duration": "30" if status == "completed" else None,
        "phone_number": f"'{number}'",
    }


def test_the_retry_list_holds_each_unanswered_number_once_and_never_one_that_completed():
    retry_list = module_of(campaign_example().get_task("write_retry_list"))["retry_list"]
    rows = [
        {"destination_number": "+16175550100", "status": "completed", "attempts": 1},
        {"destination_number": "+16175550109", "status": "failed", "attempts": 2},
        {"destination_number": "+16175550109", "status": "failed", "attempts": 2},
        {"destination_number": "+16175550107", "status": "canceled", "attempts": 0},
        {"destination_number": "+16175550108", "status": "rejected", "attempts": 0},
        {"destination_number": "+16175550100", "status": "failed", "attempts": 1},
        {"destination_number": None, "status": "failed", "attempts": 1},
    ]
    assert retry_list(rows) == [("tel:+16175550109", "failed", 2), ("tel:+16175550107", "canceled", 0)]


# Airflow 3.1's ObjectStoragePath joins paths through universal-pathlib's __fspath__, which warns.
@pytest.mark.filterwarnings("ignore:in a future version of UPath:PendingDeprecationWarning")
def test_the_retry_list_task_reads_the_runs_rows_and_logs_and_returns_no_number(
    tmp_path, monkeypatch, caplog
):
    """The task reads this run's rows through the results connection (a SQLite file here), writes the
    retry list to object storage, and puts only counts and the list's URI in its log and its XCom."""
    import csv
    import logging

    import airflow.sdk

    from airflow_provider_fuse.calls import CallDetails
    from airflow_provider_fuse.results.table import ResultsTable
    from airflow_provider_fuse.results.tokens import UploadPart

    monkeypatch.setenv("AIRFLOW_CONN_FUSE_RESULTS_DEFAULT", f"sqlite://{tmp_path / 'results.db'}")
    monkeypatch.setenv("AIRFLOW_VAR_FUSE_EXAMPLE_EXPORT_BASE", (tmp_path / "exports").as_uri())
    dag = campaign_example()
    run_id = "manual__2026-01-01T00:00:00+00:00"
    campaign, deleted_runs = "c" * 32, "d" * 32
    table = ResultsTable("fuse_results_default", "fuse_call_results")
    for run, status, number, sent_by in [
        (run_id, "completed", "6175550100", campaign),
        (run_id, "completed", "16175550104", campaign),
        (run_id, "failed", "tel:+16175550109", campaign),
        ("another_run", "failed", "6175550105", campaign),
        # A run deleted before this one was triggered under the same run id: another campaign.
        (run_id, "failed", "6175550106", deleted_runs),
    ]:
        part = UploadPart(
            dag_id=dag.dag_id,
            run_id=run,
            task_id="queue_calls",
            map_index=-1,
            campaign=sent_by,
            part=0,
            rows=3,
            expires=2**40,
        )
        table.store(part, CallDetails.from_answer({"call_details": outcome(status, number)}), received=1.0)
    table.close()

    class TaskInstance:
        def xcom_pull(self, task_ids=None, key="return_value", **kwargs):
            assert (task_ids, key) == (["queue_calls"], "fuse_results")
            return [
                {"campaign": campaign, "confirmed": True, "calls_queued": 3, "rows": 3, "queued_timestamp": 1}
            ]

    monkeypatch.setattr(
        airflow.sdk, "get_current_context", lambda: {"dag": dag, "run_id": run_id, "ti": TaskInstance()}
    )

    summary = {
        "calls_queued": 3,
        "completed": 2,
        "failed": 1,
        "canceled": 0,
        "rejected": 0,
        "other": 0,
        "missing": 0,
    }
    with caplog.at_level(logging.INFO):
        returned = dag.get_task("write_retry_list").python_callable(summary)

    retry_file = tmp_path / "exports" / "retry-lists" / dag.dag_id / "manual__2026-01-01T00_00_00_00_00.csv"
    assert returned == {"outcomes": 3, "to_retry": 1, "retry_list": f"file://{retry_file}"}
    with retry_file.open(newline="") as file:
        assert list(csv.reader(file)) == [
            ["destination", "last_status", "attempts"],
            ["tel:+16175550109", "failed", "1"],
        ]
    said = caplog.text + repr(returned)
    assert "3 outcomes" in caplog.text
    for digits in ("5550100", "5550104", "5550109", "5550105", "5550106"):
        assert digits not in said


# --- example_fuse_approval: a person approves the list before it is dialed -------------------------


def test_the_approval_example_asks_before_dialing_and_phones_the_approver_from_a_variable():
    dag = dag_bag().dags["example_fuse_approval"]
    queue_calls = dag.get_task("queue_calls")
    assert type(queue_calls).__name__ == "FuseBulkQueueOperator"
    assert queue_calls.approval is True
    assert queue_calls.on_reject == "skip"
    assert queue_calls.retries == 0  # Airflow < 3.3 refuses a task that asks and retries
    (notifier,) = queue_calls.ask.notifiers
    assert type(notifier).__name__ == "FuseNotifier"
    assert notifier.destination_variable == "fuse_example_approver"
    assert set(dag.params) == {"application_id", "deployment_id"}


def test_the_approval_examples_export_is_removed_by_a_teardown_whatever_the_answer():
    dag = dag_bag().dags["example_fuse_approval"]
    export, remove = dag.get_task("export_contacts"), dag.get_task("remove_export")
    assert export.is_setup
    assert remove.is_teardown
    assert remove.on_failure_fail_dagrun
    assert remove.upstream_task_ids == {"export_contacts", "queue_calls"}
    assert {task.task_id for task in dag.leaves} == {"report", "remove_export"}
