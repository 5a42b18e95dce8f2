"""Queue today's contacts with Plum Fuse, handing the list between tasks through object storage.

``export_contacts`` (a setup) writes the contact list as a CSV object and returns its URI;
FuseBulkQueueOperator hands that CSV to Fuse's ``bulk_queue``; ``report`` reads how many calls Fuse
queued from XCom; ``remove_export`` (the setup's teardown) deletes the object, whatever happened.

Where tasks land decides the design: on a deployment with several workers, ``export_contacts`` and
``queue_calls`` may run on different machines, so the CSV goes to object storage, never to a
worker's local disk. Its base is the Airflow Variable ``fuse_example_export_base``, read when the
task runs, e.g. ``s3://aws_default@my-bucket/fuse-exports`` (the connection id before the ``@``).
Without it the export goes to a ``file://`` directory in the worker's temporary directory, which
only works when every task runs on one machine (``make demo``, ``airflow dags test``).

The object's key is ``<base>/<dag_id>/<run_id>/contacts.csv``, the run id made path-safe (every
character outside ``A-Za-z0-9._-``, and a leading dot, becomes ``_``); its rows carry the run id in
``airflow_run_id``, so whoever reconciles the calls in Fuse can tell which run's list it was.

The teardown runs once ``queue_calls`` is done, whether it succeeded or failed, and raises if it
cannot delete the export: phone numbers must not be left behind. The run's state is decided by
``report`` (a failed upload fails it) and by the teardown (an export left behind fails it too).
Clearing ``queue_calls`` clears its setup and teardown with it: the export is written again (the
same bytes), the operator answers from its ledger without reading it and sends nothing (Airflow >=
3.3), and the teardown deletes the export again.

Run it against the local Fuse sandbox with ``make demo``. Against the real Fuse, point the
``fuse_default`` connection at your account, set ``fuse_example_export_base`` and trigger the DAG
with your deployment's ids as params (``application_id``, ``deployment_id``).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import tempfile
from datetime import datetime
from typing import TYPE_CHECKING

from airflow.sdk import Param, dag, task

from airflow_provider_fuse.operators.fuse import FuseBulkQueueOperator

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

EXPORT_BASE_VARIABLE = "fuse_example_export_base"
HEADER = ("destination", "first_name", "airflow_run_id")
CONTACTS = [
    # 555-0100..0199 numbers are reserved for fiction: nobody answers them. One row per format Fuse
    # accepts: ten digits, eleven digits, and a tel: URI with a caller id (ani).
    ("6175550100", "Ada"),
    ("16175550101", "Grace"),
    ("tel:+16175550102;ani=8005550199", "Alan"),
]


def path_safe(run_id: str) -> str:
    """``run_id`` as one path segment: ``:``, ``+`` and the like become ``_``, and so does a leading dot."""
    return re.sub(r"^\.", "_", re.sub(r"[^A-Za-z0-9._-]", "_", run_id))


def is_local(path: ObjectStoragePath) -> bool:
    """Whether ``path`` is on this machine's disk, where directories must be made and removed."""
    return path.protocol in ("file", "local")


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
        """Stand-in for a warehouse export: write this run's contacts as a CSV object, return its URI.

        The bytes depend only on the run, so a clear that runs the export again writes the same list.
        """
        from airflow.sdk import ObjectStoragePath, Variable, get_current_context

        context = get_current_context()
        run_id = context["run_id"]
        local_default = "file://" + os.path.join(tempfile.gettempdir(), "fuse-example-exports")
        base = ObjectStoragePath(Variable.get(EXPORT_BASE_VARIABLE, default=local_default).strip())
        export = base / context["dag"].dag_id / path_safe(run_id) / "contacts.csv"

        text = io.StringIO(newline="")
        writer = csv.writer(text)  # CRLF line ends, as the csv module writes them
        writer.writerow(HEADER)
        writer.writerows((destination, first_name, run_id) for destination, first_name in CONTACTS)
        # Object stores have no directories (and creating one can create a missing bucket).
        if is_local(export):
            os.makedirs(export.parent.path, exist_ok=True)
        with export.open("wb") as file:
            file.write(text.getvalue().encode("utf-8"))
        # str() keeps the connection id (s3://conn_id@bucket/...), which the operator needs to read it.
        uri = str(export)
        log.info("Exported %d contacts to %s", len(CONTACTS), uri)
        return uri

    @task
    def report(calls_queued: int | None) -> None:
        if calls_queued is None:
            # The upload returned no count: it was marked success by hand after an unknown outcome
            # (docs/safety.md, "After an unknown outcome"), so only Fuse's own records say how many.
            log.warning("The upload task returned no count of queued calls: see Fuse's records")
            return
        log.info("Fuse queued %d calls", calls_queued)

    @task
    def remove_export(uri: str) -> None:
        """Delete the export: it holds phone numbers. Raises if it cannot, or if the export is not there.

        A missing export was deleted already or written to another machine's local disk (a
        ``file://`` base on a deployment with several workers): either way, say so loudly.
        """
        from airflow.sdk import ObjectStoragePath

        export = ObjectStoragePath(uri)
        try:
            export.unlink()
        except FileNotFoundError:
            raise FileNotFoundError(
                f"No contact export to remove at {uri}: it was removed already, or written to another "
                f"worker's local disk. With more than one worker, set the Variable {EXPORT_BASE_VARIABLE} "
                "to object storage (s3://, gs://, ...)."
            ) from None
        if is_local(export):
            os.rmdir(export.parent.path)  # the run's directory, empty now; raises if it is not
        log.info("Removed the contact export %s", uri)

    export = export_contacts()
    queue_calls = FuseBulkQueueOperator(
        task_id="queue_calls",
        application_id="{{ params.application_id }}",
        deployment_id="{{ params.deployment_id }}",
        csv_path=export,
        max_attempts=2,
        reattempt_wait=300,
    )
    report(queue_calls.output)
    # The run's state is decided by report (a failed upload fails the run) and by the teardown: an
    # export left behind fails the run too. The teardown hangs off queue_calls, not report: below
    # report, a teardown that can fail the run would take report's place as the leaf that decides.
    queue_calls >> remove_export(export).as_teardown(setups=export, on_failure_fail_dagrun=True)


example_fuse_bulk_queue()
