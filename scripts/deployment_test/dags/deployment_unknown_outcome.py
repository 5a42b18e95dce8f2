"""The deployment test's own DAG: a list sent in parts that asks a person after an unknown outcome.

``queue_calls`` sends the CSV the harness put in object storage (``params.csv_path``) two rows a
request, with ``on_unknown_outcome="ask"``: when Fuse's answer to a part is lost, the task asks in
Required Actions whether Fuse queued it, and the harness answers through the REST API. The harness
removes the CSV itself afterwards.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from airflow_provider_fuse.operators.fuse import FuseBulkQueueOperator


@dag(
    dag_id="deployment_unknown_outcome",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"csv_path": "", "application_id": 101, "deployment_id": 202},
    tags=["fuse", "deployment-test"],
)
def deployment_unknown_outcome() -> None:
    @task
    def after_dialing() -> str:
        return "ran"

    queue_calls = FuseBulkQueueOperator(
        task_id="queue_calls",
        application_id="{{ params.application_id }}",
        deployment_id="{{ params.deployment_id }}",
        csv_path="{{ params.csv_path }}",
        chunk_size=2,
        on_unknown_outcome="ask",
    )
    queue_calls >> after_dialing()


deployment_unknown_outcome()
