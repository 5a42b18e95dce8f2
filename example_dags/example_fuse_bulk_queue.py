"""Queue today's contacts with Plum Fuse.

An upstream task exports the contact list to a CSV (``destination`` plus a call variable) and
returns its path; FuseBulkQueueOperator hands that CSV to Fuse's ``bulk_queue``; a downstream task
reads how many calls Fuse queued from XCom; the export is removed at the end, whatever happened.

Run it against the local Fuse sandbox with ``make demo``. Against the real Fuse, point the
``fuse_default`` connection at your account and trigger the DAG with your deployment's ids as
params (``application_id``, ``deployment_id``).
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import tempfile
from datetime import datetime

from airflow.sdk import Param, dag, task

from airflow_provider_fuse.operators.fuse import FuseBulkQueueOperator

log = logging.getLogger(__name__)


@dag(
    dag_id="example_fuse_bulk_queue",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["fuse", "example"],
    params={
        # The sandbox's default deployment; use your own ids from Fuse's Deployments page.
        "application_id": Param(101, type="integer", minimum=1),
        "deployment_id": Param(202, type="integer", minimum=1),
    },
)
def example_fuse_bulk_queue() -> None:
    @task
    def export_contacts() -> str:
        """Stand-in for a warehouse export: write today's contacts and return the CSV's path."""
        contacts = [
            # 555-0100..0199 numbers are reserved for fiction: nobody answers them.
            ("6175550100", "Ada"),
            ("16175550101", "Grace"),
            ("tel:+16175550102;ani=8005550199", "Alan"),
        ]
        directory = tempfile.mkdtemp(prefix="fuse-contacts-")
        path = os.path.join(directory, "contacts.csv")
        with open(path, "w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(["destination", "first_name"])
            writer.writerows(contacts)
        return path

    @task
    def report(calls_queued: int) -> None:
        log.info("Fuse queued %d calls", calls_queued)

    @task(trigger_rule="all_done")
    def remove_export(path: str) -> None:
        """The export holds phone numbers: never leave it on the worker, whatever happened."""
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)

    export = export_contacts()
    queue_calls = FuseBulkQueueOperator(
        task_id="queue_calls",
        application_id="{{ params.application_id }}",
        deployment_id="{{ params.deployment_id }}",
        csv_path=export,
        max_attempts=2,
        reattempt_wait=300,
    )
    report(queue_calls.output) >> remove_export(export)


example_fuse_bulk_queue()
