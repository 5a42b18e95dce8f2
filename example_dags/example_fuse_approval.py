"""Ask a person before dialing: the list waits in Airflow's Required Actions until someone approves it.

``export_contacts`` (a setup) writes the contact list as a CSV object, as in
``example_fuse_bulk_queue``; ``queue_calls`` (``FuseBulkQueueOperator`` with ``approval=True``)
checks it and asks in **Required Actions** (Browse → Required Actions, or the task instance's
*Required Actions* tab) before its first request. The question names the deployment, the dialing
window, the rows, repeated destinations and what the policy does with them, the requests and where
outcomes go — never a phone number or another CSV value. *Approve* sends exactly the list that was
shown (a file changed meanwhile is not sent: the task fails saying so); *Reject*, or no answer within
four hours, sends nothing and skips ``queue_calls`` and ``report``; ``remove_export`` (the setup's
teardown) deletes the export either way.

While the question waits no worker slot is held: the task is ``awaiting_input`` (Airflow 3.3) or
deferred (3.1/3.2, on the triggerer). Run it on a running Airflow (``make demo`` does): on 3.1,
``airflow dags test`` cannot run a task that asks.

The approver is phoned when the question is asked: ``Ask(notifiers=[FuseNotifier(...)])`` places one
call through Fuse to the number in the Variable ``fuse_example_approver`` (one of Fuse's destination
formats, e.g. ``tel:+16175550123``; kept out of DAG code, masked in every log), with the call
parameter ``airflow_event`` = ``approval_requested``; docs/notifications.md says what the Fuse
application reads. Without the Variable the notifier logs that it could not call and the question
stands. Anyone allowed to answer the DAG's human-in-the-loop tasks may answer here;
``Ask(assigned_users=[{"id": "<user id>", "name": "<user name>"}])`` names who may instead.

``retries=0``: on Airflow < 3.3 a task that asks must not retry (docs/safety.md, "A person approves
the list"). On 3.3 the ledger records the approval and who gave it; a clear after the approved send
answers from the ledger and asks nothing.

Against the real Fuse, point ``fuse_default`` at your account, set ``fuse_example_export_base`` and
``fuse_example_approver``, and trigger the DAG with your deployment's ids as params.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import tempfile
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from airflow.sdk import Param, dag, task

from airflow_provider_fuse.decisions import Ask
from airflow_provider_fuse.notifications.fuse import FuseNotifier
from airflow_provider_fuse.operators.fuse import FuseBulkQueueOperator

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

EXPORT_BASE_VARIABLE = "fuse_example_export_base"
APPROVER_VARIABLE = "fuse_example_approver"
HEADER = ("destination", "first_name", "airflow_run_id")
CONTACTS = [
    # 555-0100..0199 numbers are reserved for fiction: nobody answers them.
    ("6175550110", "Ada"),
    ("16175550111", "Grace"),
    ("tel:+16175550112", "Alan"),
]


def path_safe(run_id: str) -> str:
    """``run_id`` as one path segment: ``:``, ``+`` and the like become ``_``, and so does a leading dot."""
    return re.sub(r"^\.", "_", re.sub(r"[^A-Za-z0-9._-]", "_", run_id))


def is_local(path: ObjectStoragePath) -> bool:
    """Whether ``path`` is on this machine's disk, where directories must be made and removed."""
    return path.protocol in ("file", "local")


@dag(
    dag_id="example_fuse_approval",
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
def example_fuse_approval() -> None:
    @task
    def export_contacts() -> str:
        """Stand-in for a warehouse export: write this run's contacts as a CSV object, return its URI."""
        from airflow.sdk import ObjectStoragePath, Variable, get_current_context

        context = get_current_context()
        local_default = "file://" + os.path.join(tempfile.gettempdir(), "fuse-example-exports")
        base = ObjectStoragePath(Variable.get(EXPORT_BASE_VARIABLE, default=local_default).strip())
        export = base / context["dag"].dag_id / path_safe(context["run_id"]) / "contacts.csv"
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(HEADER)
        writer.writerows((destination, name, context["run_id"]) for destination, name in CONTACTS)
        if is_local(export):  # object stores have no directories
            os.makedirs(export.parent.path, exist_ok=True)
        with export.open("wb") as file:
            file.write(text.getvalue().encode("utf-8"))
        log.info("Exported %d contacts to %s", len(CONTACTS), export)
        return str(export)  # str() keeps the connection id (s3://conn_id@bucket/...)

    @task
    def report(calls_queued: int) -> None:
        log.info("Approved, and Fuse queued %d calls", calls_queued)

    @task
    def remove_export(uri: str) -> None:
        """Delete the export (it holds phone numbers), approved or not; raises if it is not there."""
        from airflow.sdk import ObjectStoragePath

        export = ObjectStoragePath(uri)
        export.unlink()
        if is_local(export):
            os.rmdir(export.parent.path)
        log.info("Removed the contact export %s", uri)

    export = export_contacts()
    queue_calls = FuseBulkQueueOperator(
        task_id="queue_calls",
        application_id="{{ params.application_id }}",
        deployment_id="{{ params.deployment_id }}",
        csv_path=export,
        max_attempts=2,
        reattempt_wait=300,
        approval=True,
        on_reject="skip",  # Reject or no answer: queue_calls and report are skipped, nothing is sent
        ask=Ask(
            timeout=timedelta(hours=4),
            notifiers=[
                FuseNotifier(
                    application_id="{{ params.application_id }}",
                    deployment_id="{{ params.deployment_id }}",
                    destination_variable=APPROVER_VARIABLE,
                )
            ],
        ),
        retries=0,
    )
    report(queue_calls.output)
    queue_calls >> remove_export(export).as_teardown(setups=export, on_failure_fail_dagrun=True)


example_fuse_approval()
