"""The example DAGs import cleanly in a DagBag, as the DAG processor would load them."""

from __future__ import annotations

from pathlib import Path

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
