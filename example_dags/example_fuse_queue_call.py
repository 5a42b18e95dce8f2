"""Queue one call with Plum Fuse, wait for its outcome, report it.

For one urgent call — a fraud alert, a missed appointment — not for a list: Plum warns that looping
the single-call endpoint over many numbers can get every call rejected. For lists, see
``example_fuse_bulk_queue``.

FuseQueueCallOperator queues the call and pushes its call id; FuseCallStatusSensor waits until
the call has ended (deferrable: it waits in the triggerer, not in a worker slot) and pushes the
call's details without the phone number; a downstream task reports them.

Trigger it with ``{"phone_number": "...", "first_name": "..."}``; the defaults are the local
sandbox's deployment and a fictional 555-01xx number. The phone number and the parameters are
masked in the task logs and in the rendered-template view.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

from airflow_provider_fuse.operators.fuse import FuseQueueCallOperator
from airflow_provider_fuse.sensors.fuse import FuseCallStatusSensor

log = logging.getLogger(__name__)


@dag(
    dag_id="example_fuse_queue_call",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["fuse", "example"],
    params={
        "application_id": Param(101, type="integer", minimum=1),
        "deployment_id": Param(202, type="integer", minimum=1),
        # 555-0100..0199 numbers are reserved for fiction: nobody answers them.
        "phone_number": Param("6175550100", type="string"),
        "first_name": Param("Ada", type="string"),
    },
)
def example_fuse_queue_call() -> None:
    queue_call = FuseQueueCallOperator(
        task_id="queue_call",
        application_id="{{ params.application_id }}",
        deployment_id="{{ params.deployment_id }}",
        phone_number="{{ params.phone_number }}",
        call_parameters={"first_name": "{{ params.first_name }}", "reason": "appointment reminder"},
        max_attempts=2,
        reattempt_wait=300,
    )

    wait_for_outcome = FuseCallStatusSensor(
        task_id="wait_for_outcome",
        call_id=queue_call.output,
        poke_interval=30,
        timeout=timedelta(hours=2).total_seconds(),
        deferrable=True,
    )

    @task
    def report(call_details: dict) -> None:
        log.info(
            "Fuse call %s ended %s after %s attempt(s), %s s connected",
            call_details["call_id"],
            call_details["status"],
            call_details["attempts"],
            call_details["duration"],
        )

    report(wait_for_outcome.output)


example_fuse_queue_call()
