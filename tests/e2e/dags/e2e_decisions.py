"""DAGs whose tasks ask a person, for the end-to-end tests that answer through the REST API.

``e2e_hitl_approval`` is the standard provider's own ``ApprovalOperator``: it proves the tests'
way of answering (an ``airflow api-server`` on the same database as ``airflow dags test``) before
the provider's operator is put through it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import dag, task


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
