"""Emergency stop: cancel every pending call of a Fuse deployment.

The companion of ``example_fuse_bulk_queue``: when a campaign went wrong (the wrong list, the wrong
message, the wrong hour), trigger this DAG by hand with the same ``application_id`` and
``deployment_id`` and Fuse cancels every call of that deployment that has not ended yet.

It has no schedule and never runs by itself. Fuse documents no per-call cancel: every pending
call of the deployment is canceled, whichever DAG (or person) queued it. An unknown outcome (Fuse
answered 5xx, or its answer was lost) is retried: canceling twice is harmless.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag

from airflow_provider_fuse.operators.fuse import FuseCancelCallsOperator


@dag(
    dag_id="example_fuse_stop_campaign",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["fuse", "example", "emergency"],
    params={
        # The deployment example_fuse_bulk_queue queues to; use your own ids from Fuse's Deployments page.
        "application_id": Param(101, type="integer", minimum=1),
        "deployment_id": Param(202, type="integer", minimum=1),
    },
)
def example_fuse_stop_campaign() -> None:
    FuseCancelCallsOperator(
        task_id="cancel_pending_calls",
        application_id="{{ params.application_id }}",
        deployment_id="{{ params.deployment_id }}",
        retries=3,
        retry_delay=timedelta(seconds=30),
    )


example_fuse_stop_campaign()
