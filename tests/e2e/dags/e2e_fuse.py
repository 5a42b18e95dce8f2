"""DAGs the end-to-end tests run through real Airflow against the Fuse sandbox.

The CSV and the deployment come in as params (``airflow dags test -c`` / ``airflow tasks test -t``);
every task has retries, so the tests can prove that what must not be retried is not.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag

from airflow_provider_fuse.operators.fuse import FuseBulkQueueOperator


def bulk_queue_dag(
    dag_id: str, operator_class: type[FuseBulkQueueOperator] = FuseBulkQueueOperator, **operator_kwargs: Any
) -> Any:
    @dag(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        params={"csv_path": "", "application_id": 101, "deployment_id": 202},
        tags=["fuse", "e2e"],
    )
    def bulk_queue() -> None:
        operator_class(
            task_id="queue_calls",
            application_id="{{ params.application_id }}",
            deployment_id="{{ params.deployment_id }}",
            csv_path="{{ params.csv_path }}",
            retries=2,
            retry_delay=timedelta(seconds=1),
            **operator_kwargs,
        )

    return bulk_queue()


e2e_bulk_queue = bulk_queue_dag("e2e_bulk_queue")
e2e_bulk_queue_retry_unknown = bulk_queue_dag("e2e_bulk_queue_retry_unknown", on_unknown_outcome="retry")


# --- Campaign safety -----------------------------------------------------------------------------------


class CrashAfterQueued(FuseBulkQueueOperator):
    """On its first try the list is queued (and recorded), then the task dies before returning."""

    def execute(self, context: Any) -> int:
        result = super().execute(context)
        if context["ti"].try_number == 1:
            raise RuntimeError("simulated crash after Fuse queued the list")
        return result


class SimulatedWorkerDeath(BaseException):
    """A worker dying: not an ``Exception``, so nothing in the operator catches it."""


class CrashBeforeRecording(FuseBulkQueueOperator):
    """On its first try the task dies between Fuse's 200 and recording it: the intent stays."""

    def execute(self, context: Any) -> int:
        self.first_try = context["ti"].try_number == 1
        return super().execute(context)

    def _ledger(self, *args: Any) -> Any:
        ledger = super()._ledger(*args)
        if ledger is not None and self.first_try:

            def die(index: int, calls_queued: int) -> None:
                raise SimulatedWorkerDeath("simulated worker death before the result was recorded")

            ledger.queued = die
        return ledger


class ListChangesAfterQueued(FuseBulkQueueOperator):
    """On its first try the list is queued, then the upstream file gains a row and the task dies."""

    def execute(self, context: Any) -> int:
        result = super().execute(context)
        if context["ti"].try_number == 1:
            with open(self.csv_path, "a", encoding="utf-8") as file:
                file.write("16175559999,Late,A-99999,\r\n")
            raise RuntimeError("simulated crash; the list changes before the retry")
        return result


e2e_crash_after_queued = bulk_queue_dag("e2e_crash_after_queued", CrashAfterQueued)
e2e_crash_before_recording = bulk_queue_dag("e2e_crash_before_recording", CrashBeforeRecording)
e2e_list_changes = bulk_queue_dag("e2e_list_changes", ListChangesAfterQueued)
e2e_chunked = bulk_queue_dag("e2e_chunked", FuseBulkQueueOperator, chunk_size=300)
e2e_duplicates_fail = bulk_queue_dag(
    "e2e_duplicates_fail", FuseBulkQueueOperator, on_duplicate_destinations="fail"
)
e2e_duplicates_drop = bulk_queue_dag(
    "e2e_duplicates_drop", FuseBulkQueueOperator, on_duplicate_destinations="drop"
)
e2e_dry_run = bulk_queue_dag("e2e_dry_run", FuseBulkQueueOperator, dry_run=True)


# --- Calling hours and a suppression list --------------------------------------------------------------

#: Each zone group in parts of its own, within 08:00-21:00 local time; the numbers in
#: ``<csv_path>.suppressed.csv`` are never called; a number with no time zone is left out, counted.
e2e_bulk_queue_calling_hours = bulk_queue_dag(
    "e2e_bulk_queue_calling_hours",
    calling_hours=("08:00", "21:00"),
    on_unknown_time_zone="skip",
    suppression_list="{{ params.csv_path }}.suppressed.csv",
    chunk_size=2,
)
