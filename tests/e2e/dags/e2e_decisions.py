"""DAGs whose tasks ask a person, for the end-to-end tests that answer through the REST API.

``e2e_hitl_approval`` is the standard provider's own ``ApprovalOperator``: it proves the tests' way of
answering before the provider's operator is put through it. The others ask before dialing
(``approval=True``) or after an unknown outcome (``on_unknown_outcome="ask"``); the CSV comes in as a
param.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import dag, task

from airflow_provider_fuse.decisions import Ask
from airflow_provider_fuse.operators.fuse import FuseBulkQueueOperator


@dag(
    dag_id="e2e_hitl_approval",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["fuse", "e2e"],
)
def e2e_hitl_approval() -> None:
    @task
    def after_approval() -> str:
        return "ran"

    approve = ApprovalOperator(
        task_id="approve",
        subject="Approve the harness check",
        body="Nothing is sent: this task only proves that an answer given through the REST API arrives.",
        response_timeout=timedelta(minutes=10),
    )
    approve >> after_approval()


e2e_hitl_approval()


def decision_dag(dag_id: str, **operator_kwargs: Any) -> Any:
    """A DAG whose ``queue_calls`` asks (as ``operator_kwargs`` say) and a task after it."""

    @dag(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        params={"csv_path": "", "application_id": 101, "deployment_id": 202},
        tags=["fuse", "e2e"],
    )
    def decision() -> None:
        @task
        def after_dialing() -> str:
            return "ran"

        queue_calls = FuseBulkQueueOperator(
            task_id="queue_calls",
            application_id="{{ params.application_id }}",
            deployment_id="{{ params.deployment_id }}",
            csv_path="{{ params.csv_path }}",
            **operator_kwargs,
        )
        queue_calls >> after_dialing()

    return decision()


ADMIN = [{"id": "admin", "name": "admin"}]
e2e_approval = decision_dag("e2e_approval", approval=True, ask=Ask(assigned_users=ADMIN))
e2e_approval_timeout = decision_dag(
    "e2e_approval_timeout", approval=True, ask=Ask(timeout=timedelta(seconds=10))
)
e2e_unknown_ask = decision_dag("e2e_unknown_ask", on_unknown_outcome="ask", chunk_size=300)
