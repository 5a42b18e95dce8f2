"""DAGs the campaign-results end-to-end tests run: a list queued with collect_results=True, then the
results sensor waiting for its outcomes (deferred, or poking until a short dialing timeout).

The CSV comes in as a param (``airflow dags test -c`` / ``airflow tasks test -t``); the outcomes are
stored in the results table by the test itself, as the receiver would store Fuse's callbacks.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

from airflow_provider_fuse.operators.fuse import FuseBulkQueueOperator
from airflow_provider_fuse.sensors.fuse import FuseCampaignResultsSensor


class LeakyBulkQueue(FuseBulkQueueOperator):
    """Logs each result_url it sends and the signing key, as careless user code might: the masker
    must hide the tokens and the key."""

    def _hook(self) -> Any:
        from airflow_provider_fuse._compat import conf

        hook = super()._hook()
        send = hook.bulk_queue

        def leaky_bulk_queue(*args: Any, **kwargs: Any) -> int:
            key = conf.get("fuse", "results_signing_key")
            self.log.info("LEAK result_url=%s key=%s", kwargs.get("result_url"), key)
            return send(*args, **kwargs)

        hook.bulk_queue = leaky_bulk_queue  # type: ignore[method-assign]
        return hook


def campaign_dag(
    dag_id: str, operator_class: type[FuseBulkQueueOperator] = FuseBulkQueueOperator, **sensor_kwargs: Any
) -> Any:
    @dag(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        params={"csv_path": ""},
        tags=["fuse", "e2e"],
    )
    def campaign() -> None:
        queued = operator_class(
            task_id="queue_calls",
            application_id=101,
            deployment_id=202,
            csv_path="{{ params.csv_path }}",
            collect_results=True,
            retries=0,
        )
        waited = FuseCampaignResultsSensor(
            task_id="wait_for_outcomes",
            bulk_task_id="queue_calls",
            poke_interval=1,
            timeout=180,
            **sensor_kwargs,
        )
        queued >> waited

    return campaign()


e2e_campaign_results_deferrable = campaign_dag("e2e_campaign_results_deferrable", deferrable=True)
# Without an end_timestamp the window is the dialing timeout from the upload: ten seconds here.
e2e_campaign_results_deadline = campaign_dag(
    "e2e_campaign_results_deadline",
    deferrable=False,
    grace_period=timedelta(0),
    dialing_timeout=timedelta(seconds=10),
)
e2e_campaign_results_leaky = campaign_dag("e2e_campaign_results_leaky", LeakyBulkQueue, deferrable=False)


@dag(
    dag_id="e2e_campaign_results_mapped",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"csv_paths": []},
    tags=["fuse", "e2e"],
)
def e2e_campaign_results_mapped() -> None:
    """One list per map index of the bulk task; the sensor waits for all of them."""

    @task
    def lists(**context: Any) -> list[str]:
        return list(context["params"]["csv_paths"])

    queued = FuseBulkQueueOperator.partial(
        task_id="queue_calls", application_id=101, deployment_id=202, collect_results=True, retries=0
    ).expand(csv_path=lists())
    waited = FuseCampaignResultsSensor(
        task_id="wait_for_outcomes",
        bulk_task_id="queue_calls",
        poke_interval=1,
        timeout=180,
        deferrable=False,
    )
    queued >> waited


e2e_campaign_results_mapped()
