"""DAGs the end-to-end tests run through real Airflow against the Fuse sandbox.

The CSV and the deployment come in as params (``airflow dags test -c`` / ``airflow tasks test -t``);
every task has retries, so the tests can prove that what must not be retried is not.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag

from airflow_provider_fuse.operators.fuse import FuseBulkQueueOperator


def bulk_queue_dag(dag_id: str, **operator_kwargs: Any) -> Any:
    @dag(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        params={"csv_path": "", "application_id": 101, "deployment_id": 202},
        tags=["fuse", "e2e"],
    )
    def bulk_queue() -> None:
        FuseBulkQueueOperator(
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
