"""Queue one call with Plum Fuse, wait for its outcome, report it.

For one urgent call — a fraud alert, a missed appointment — not for a list: Plum warns that looping
the single-call endpoint over many numbers can get every call rejected. For lists, see
``example_fuse_bulk_queue``.

FuseQueueCallOperator queues the call and pushes its call id; FuseCallStatusSensor waits until
the call has ended (deferrable: it waits in the triggerer, not in a worker slot) and pushes the
call's details without the phone number; a downstream task reports them.

Who to call comes from the JSON Airflow Variable ``fuse_example_contact``
(``{"phone_number": "...", "first_name": "..."}``), never from ``dag_run.conf`` or params: Airflow
stores a run's conf and params in clear (in the run, in the event log of the trigger, in the CLI's
output). Variables are encrypted at rest with the Fernet key, and in production come from a secrets
backend. The operator's templated fields read the Variable with Jinja
(``{{ var.json.fuse_example_contact.phone_number }}``), so it is read only on the worker, when the
task runs, never when the DAG is parsed. For the demo and the tests set the environment variable
``AIRFLOW_VAR_FUSE_EXAMPLE_CONTACT``, e.g. ``{"phone_number": "6175550100", "first_name": "Ada"}``
(555-01xx numbers are fictional). Without the Variable, ``queue_call`` fails before anything is sent.

The phone number and the call parameters are masked in the task logs and in the rendered-template
view; the params hold only the deployment's ids (the defaults are the local sandbox's deployment).
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
    },
)
def example_fuse_queue_call() -> None:
    queue_call = FuseQueueCallOperator(
        task_id="queue_call",
        application_id="{{ params.application_id }}",
        deployment_id="{{ params.deployment_id }}",
        phone_number="{{ var.json.fuse_example_contact.phone_number }}",
        call_parameters={
            "first_name": "{{ var.json.fuse_example_contact.first_name }}",
            "reason": "appointment reminder",
        },
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
        # The details hold no phone number; log only what says how the call went.
        log.info(
            "Fuse call %s ended %s after %s attempt(s), %s s connected",
            call_details["call_id"],
            call_details["status"],
            call_details["attempts"],
            call_details["duration"],
        )

    report(wait_for_outcome.output)


example_fuse_queue_call()
