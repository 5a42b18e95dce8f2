"""Queue a contact list with Plum Fuse, wait for every call's outcome, and turn them into a retry list.

``export_contacts`` (a setup) writes the contact list as a CSV object, as in
``example_fuse_bulk_queue``; ``queue_calls`` hands it to Fuse's ``bulk_queue`` with
``collect_results=True``, so each call's outcome is POSTed back to the results receiver on Airflow's
api-server and stored in the results table; ``wait_for_outcomes`` (a deferrable
``FuseCampaignResultsSensor``) waits until every queued call has an outcome there and pushes the
counts by status; ``write_retry_list`` reads this run's rows from the table with ``FuseResultsHook``
(its campaign's only, ``bulk_campaigns``: a run deleted and triggered again under the same run id is
another campaign) and writes the numbers to try again (no answer, or canceled) as a CSV object that
can be the next campaign's list; ``remove_export`` (the setup's teardown) deletes the contact export
once the upload is done.

What it needs besides the example's own Variable (``fuse_example_export_base``, see
``example_fuse_bulk_queue``): the ``[fuse]`` options ``results_base_url`` (where Fuse reaches the
api-server) and ``results_signing_key`` in the workers and the api-server, and the results
connection (``fuse_results_default``, any SQL database with a DbApiHook) in the workers, the
triggerer and the api-server. docs/results.md has the whole setup.

Where files land: the contact export at ``<base>/<dag_id>/<run_id>/contacts.csv`` (removed by the
teardown), the retry list at ``<base>/retry-lists/<dag_id>/<run_id>.csv`` (kept: it is the product;
both hold phone numbers, so keep the bucket private and let a lifecycle rule expire old lists). The
run id is made path-safe as in the bulk example.

The run's state is decided by ``write_retry_list`` and by the teardown. A failed upload leaves the
sensor and ``write_retry_list`` ``upstream_failed``; fewer answered calls than
``min_completed_ratio`` fails the sensor, and so the run; so does no outcome at all by the deadline
(whatever the ratio: a receiver Fuse could not reach or that stored nothing), the log saying why.
The teardown hangs off ``queue_calls`` (not the last task), for two reasons: the export is deleted
as soon as Fuse has it, not hours later when the calls have ended; and a teardown below
``write_retry_list`` would take its place as the only leaf that counts, so a failed wait would show
``success``. Nothing here logs or returns a
phone number: the tasks log counts, the XComs hold counts and the retry list's URI.

Run it against the local Fuse sandbox with ``make demo``, which also starts the api-server with the
receiver. With max_attempts 1 and three fictional 555-01xx numbers, one ending in 9 (the sandbox
never answers those), the outcome is 2 completed, 1 failed, and the retry list holds that one.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import tempfile
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import Param, dag, task

from airflow_provider_fuse.operators.fuse import FuseBulkQueueOperator
from airflow_provider_fuse.results.campaign import bulk_campaigns
from airflow_provider_fuse.sensors.fuse import FuseCampaignResultsSensor

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

EXPORT_BASE_VARIABLE = "fuse_example_export_base"
HEADER = ("destination", "first_name", "airflow_run_id")
CONTACTS = [
    # 555-0100..0199 numbers are reserved for fiction. In the sandbox a number ending in 9 never
    # answers, so this list ends 2 completed, 1 failed; Fuse's three destination formats.
    ("6175550100", "Ada"),
    ("16175550104", "Grace"),
    ("tel:+16175550109", "Alan"),
]
#: Outcomes worth another try tomorrow: not answered (failed) or canceled. A rejected call was refused
#: by Fuse; calling it again would be refused again.
RETRY_STATUSES = frozenset({"failed", "canceled"})
RETRY_HEADER = ("destination", "last_status", "attempts")


def path_safe(run_id: str) -> str:
    """``run_id`` as one path segment: ``:``, ``+`` and the like become ``_``, and so does a leading dot."""
    return re.sub(r"^\.", "_", re.sub(r"[^A-Za-z0-9._-]", "_", run_id))


def is_local(path: ObjectStoragePath) -> bool:
    """Whether ``path`` is on this machine's disk, where directories must be made and removed."""
    return path.protocol in ("file", "local")


def export_base() -> ObjectStoragePath:
    """The Variable ``fuse_example_export_base``, read when the task runs; a local default for one machine."""
    from airflow.sdk import ObjectStoragePath, Variable

    local_default = "file://" + os.path.join(tempfile.gettempdir(), "fuse-example-exports")
    return ObjectStoragePath(Variable.get(EXPORT_BASE_VARIABLE, default=local_default).strip())


def write_object(path: ObjectStoragePath, text: str) -> str:
    """Write ``text`` (UTF-8) to ``path``; its URI, with the connection id (``s3://conn_id@bucket/...``)."""
    # Object stores have no directories (and creating one can create a missing bucket).
    if is_local(path):
        os.makedirs(path.parent.path, exist_ok=True)
    with path.open("wb") as file:
        file.write(text.encode("utf-8"))
    return str(path)


def retry_list(rows: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, int | None]]:
    """The numbers to call again, one row each: ``(destination, last_status, attempts)``.

    A number is called again when one of its calls ended ``failed`` or ``canceled`` and none ended
    ``completed`` (a list may dial a number twice). The destination is the canonical number of the
    results table as a ``tel:+`` URI, a form Fuse's ``bulk_queue`` accepts; a row whose destination
    did not parse (``destination_number`` NULL) is left out.
    """
    answered = {row["destination_number"] for row in rows if row["status"] == "completed"}
    chosen: dict[str, tuple[str, str, int | None]] = {}
    for row in rows:
        number = row["destination_number"]
        if number and row["status"] in RETRY_STATUSES and number not in answered:
            chosen[number] = (f"tel:{number}", row["status"], row["attempts"])
    return list(chosen.values())


@dag(
    dag_id="example_fuse_campaign_results",
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
def example_fuse_campaign_results() -> None:
    @task
    def export_contacts() -> str:
        """Stand-in for a warehouse export: write this run's contacts as a CSV object, return its URI."""
        from airflow.sdk import get_current_context

        context = get_current_context()
        run_id = context["run_id"]
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(HEADER)
        writer.writerows((destination, first_name, run_id) for destination, first_name in CONTACTS)
        export = export_base() / context["dag"].dag_id / path_safe(run_id) / "contacts.csv"
        uri = write_object(export, text.getvalue())
        log.info("Exported %d contacts to %s", len(CONTACTS), uri)
        return uri

    @task
    def write_retry_list(outcomes: dict[str, int]) -> dict[str, Any]:
        """Read this run's outcomes from the results table; write the numbers to call again.

        ``outcomes`` is the sensor's summary (counts only). The rows come through
        ``FuseResultsHook`` (the table ``[fuse]`` names, behind its connection's DbApiHook); only
        counts and the retry list's URI are logged and returned.
        """
        from airflow.sdk import get_current_context

        from airflow_provider_fuse.hooks.results import FuseResultsHook

        context = get_current_context()
        dag_id, run_id = context["dag"].dag_id, context["run_id"]
        # This run's campaign: a run deleted and triggered again under the same run id is another.
        campaigns = bulk_campaigns(context["ti"], "queue_calls")
        rows = FuseResultsHook().get_outcomes(dag_id, run_id, "queue_calls", campaigns)
        retry = retry_list(rows)

        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(RETRY_HEADER)
        writer.writerows(retry)
        target = export_base() / "retry-lists" / dag_id / f"{path_safe(run_id)}.csv"
        uri = write_object(target, text.getvalue())
        log.info(
            "%d outcomes in the table for %d calls queued (%s); %d numbers to call again, listed in %s",
            len(rows),
            outcomes["calls_queued"],
            ", ".join(f"{key} {value}" for key, value in outcomes.items() if key != "calls_queued"),
            len(retry),
            uri,
        )
        return {"outcomes": len(rows), "to_retry": len(retry), "retry_list": uri}

    @task
    def remove_export(uri: str) -> None:
        """Delete the export: it holds phone numbers. Raises if it cannot, or if the export is not there."""
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
        max_attempts=1,
        # Each call's outcome comes back to the receiver on the api-server, under a signed result_url.
        collect_results=True,
        # Two rows with one number could end with identical outcomes, which the table cannot tell
        # apart: send each number once.
        on_duplicate_destinations="drop",
    )
    wait_for_outcomes = FuseCampaignResultsSensor(
        task_id="wait_for_outcomes",
        bulk_task_id="queue_calls",
        # Without an end_timestamp, the calls may take this long; then the sensor counts what arrived.
        dialing_timeout=timedelta(hours=4),
        grace_period=timedelta(minutes=30),
        min_completed_ratio=0.5,
        deferrable=True,
        poke_interval=10,  # a count over an indexed table, in the triggerer: cheap
    )
    queue_calls >> wait_for_outcomes
    write_retry_list(wait_for_outcomes.output)
    queue_calls >> remove_export(export).as_teardown(setups=export, on_failure_fail_dagrun=True)


example_fuse_campaign_results()
