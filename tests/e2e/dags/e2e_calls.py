"""DAGs the single-call end-to-end tests run through real Airflow against the Fuse sandbox.

The number, its parameters and the deployment come in as params; every task has retries, so the
tests can prove that what must not be retried is not.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag

from airflow_provider_fuse.operators.fuse import FuseQueueCallOperator
from airflow_provider_fuse.sensors.fuse import FuseCallStatusSensor

PARAMS = {"application_id": 101, "deployment_id": 202, "phone_number": "", "name": ""}


class LeakyQueueCall(FuseQueueCallOperator):
    """Logs the number and a parameter from the params, as careless user code might: the masker must
    hide them."""

    def execute(self, context: Any) -> str:
        params = context["params"]
        self.log.info("LEAK phone=%s name=%s", params["phone_number"], params["name"])
        return super().execute(context)


class CrashAfterQueuedCall(FuseQueueCallOperator):
    """On its first try the call is queued (and recorded), then the task dies before returning."""

    def execute(self, context: Any) -> str:
        call_id = super().execute(context)
        if context["ti"].try_number == 1:
            raise RuntimeError("simulated crash after Fuse queued the call")
        return call_id


def call_dag(
    dag_id: str, operator_class: type[FuseQueueCallOperator] = FuseQueueCallOperator, **sensor_kwargs
):
    @dag(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        params=PARAMS,
        tags=["fuse", "e2e"],
    )
    def calls() -> None:
        queue_call = operator_class(
            task_id="queue_call",
            application_id="{{ params.application_id }}",
            deployment_id="{{ params.deployment_id }}",
            phone_number="{{ params.phone_number }}",
            call_parameters={"name": "{{ params.name }}", "account": "A-31415"},
            retries=2,
            retry_delay=timedelta(seconds=1),
        )
        FuseCallStatusSensor(
            task_id="wait",
            call_id=queue_call.output,
            poke_interval=1,
            timeout=120,
            retries=2,
            retry_delay=timedelta(seconds=1),
            **sensor_kwargs,
        )

    return calls()


e2e_call_poke = call_dag("e2e_call_poke")
e2e_call_deferrable = call_dag("e2e_call_deferrable", deferrable=True)
e2e_call_deferrable_skip = call_dag("e2e_call_deferrable_skip", deferrable=True, on_failure_status="skip")
e2e_call_leaky = call_dag("e2e_call_leaky", LeakyQueueCall)
e2e_call_crash_after_queued = call_dag("e2e_call_crash_after_queued", CrashAfterQueuedCall)


@dag(
    dag_id="e2e_call_mapped",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["fuse", "e2e"],
)
def e2e_call_mapped() -> None:
    """Two single calls from one mapped task: Airflow renders mapped tasks through another path."""
    FuseQueueCallOperator.partial(
        task_id="queue_call",
        application_id=101,
        deployment_id=202,
        call_parameters={"first_name": "Ada"},
    ).expand(phone_number=["{{ '617555' }}1234", "{{ '617555' }}1235"])


e2e_call_mapped()
