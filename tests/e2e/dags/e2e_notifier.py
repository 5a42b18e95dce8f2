"""DAGs for the FuseNotifier's paths in a running Airflow: a deadline alert run by the triggerer, and a
DAG's failure callback run by the DAG processor beside the failed task's own."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from airflow.sdk import DAG, task
from airflow.sdk.definitions.deadline import AsyncCallback, DeadlineAlert, DeadlineReference

from airflow_provider_fuse.notifications.fuse import FuseNotifier

ONCALL = {"application_id": 101, "deployment_id": 202, "destination_variable": "e2e_oncall_phone"}

with DAG(
    "e2e_notifier_deadline",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(seconds=2),
        callback=AsyncCallback(FuseNotifier, kwargs=ONCALL),
    ),
):

    @task
    def outlasts_its_deadline() -> None:
        time.sleep(20)

    outlasts_its_deadline()


with DAG(
    "e2e_notifier_failure",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    on_failure_callback=FuseNotifier(**ONCALL),
):

    @task(on_failure_callback=FuseNotifier(**ONCALL))
    def a_fails() -> None:
        raise RuntimeError("e2e: the failure a person is phoned about")

    @task
    def z_after() -> None:
        """Sorts last by task id and never runs: Airflow 3.1 hands it to the DAG's callback."""

    a_fails() >> z_after()
