"""The examples on the deployment, one scenario each, checked through the REST API and the sandbox.

The bulk example six times at once, once handed over between workers, once against a deployment
Fuse does not know, and one upload cleared and run again; the single call and the stop-campaign
example (a sensor deferred to the triggerer); the campaign-results example (each call's outcome back
through the api-server into Postgres); and the connection form the api-server serves.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import requests

from deployment_test.examples import (
    BULK,
    BULK_RUNS,
    RESULTS,
    RESULTS_NUMBERS,
    RESULTS_SENSOR,
    RESULTS_SUMMARY,
    SINGLE,
    STOP,
    UNKNOWN_DEPLOYMENT,
)
from deployment_test.report import Report, say
from deployment_test.topology import BUCKET, RESULTS_TABLE, results_db

if TYPE_CHECKING:
    from collections.abc import Callable

    from deployment_test.api import Deployment


def check_connection_form(deployment: Deployment, report: Report) -> None:
    from airflow_provider_fuse.get_provider_info import get_provider_info

    ours = get_provider_info()["connection-types"][0]
    meta = deployment.call("GET", "/ui/connections/hook_meta")
    fuse = [item for item in meta if item.get("connection_type") == ours["connection-type"]]
    report.check(len(fuse) == 1, "the api-server serves a 'fuse' connection form")
    form = fuse[0]
    behaviour = ours["ui-field-behaviour"]
    standard = form.get("standard_fields") or {}
    relabeled = {key: (standard.get(key) or {}).get("title") for key in behaviour.get("relabeling", {})}
    report.check(
        form.get("hook_name") == ours["hook-name"] and relabeled == behaviour.get("relabeling", {}),
        f"its fields come from the provider's info (hook name {form.get('hook_name')!r}, labels {relabeled})",
    )
    served = form.get("extra_fields") or {}
    typed = {name: (served.get(name) or {}).get("schema", {}).get("type") for name in served}
    declared = {name: spec["schema"]["type"] for name, spec in ours["conn-fields"].items()}
    report.check(
        typed == declared,
        f"its typed extra fields are the provider's conn-fields ({sorted(typed)}, types as declared)",
    )


def csv_run_ids(upload: Any) -> list[str]:
    """The ``airflow_run_id`` column of an upload, row by row (the harness's own reading)."""
    import csv
    import io

    return [row["airflow_run_id"] for row in csv.DictReader(io.StringIO(upload.csv.decode("utf-8-sig")))]


def stored_exports(s3: str) -> list[str]:
    import boto3

    client = boto3.client(
        "s3", endpoint_url=s3, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    listing = client.list_objects_v2(Bucket=BUCKET)
    return [item["Key"] for item in listing.get("Contents", [])]


def bulk_runs(deployment: Deployment, sandbox: Any, s3: str, report: Report) -> list[str]:
    say(f"bulk example: {BULK_RUNS} runs at once")
    run_ids = [deployment.trigger(BULK) for _ in range(BULK_RUNS)]
    for run_id in run_ids:
        deployment.wait_for_run(BULK, run_id, timeout=420)
    crossed = 0
    hosts: set[str] = set()
    for run_id in run_ids:
        row = report.record(deployment, "bulk", BULK, run_id)
        report.check(row.state == "success", f"bulk run {run_id} succeeded (it was {row.state})")
        report.check(
            all(state == "success" for state, _ in row.tasks.values()),
            f"every task of bulk run {run_id} succeeded",
        )
        queued = deployment.xcom(BULK, run_id, "queue_calls")
        report.check(queued == 3, f"run {run_id}: calls_queued in XCom = 3 rows (got {queued!r})")
        export_host, upload_host = row.tasks["export_contacts"][1], row.tasks["queue_calls"][1]
        crossed += export_host != upload_host
        hosts |= {host for _, host in row.tasks.values()}
    report.check(
        {"fuse-worker-1", "fuse-worker-2"} <= hosts,
        f"both workers ran tasks of the bulk runs ({sorted(hosts)})",
    )
    say(f"{crossed} of {BULK_RUNS} runs exported on one worker and uploaded on the other")
    received: dict[str, int] = {}
    for upload in sandbox.uploads():
        if upload.calls_queued is None:
            continue
        ids = set(csv_run_ids(upload))
        report.check(len(ids) == 1, f"upload {upload.upload_id} holds one run's list")
        (run_id,) = ids
        received[run_id] = received.get(run_id, 0) + 1
        report.check(
            upload.calls_queued == upload.rows == 3, f"upload {upload.upload_id}: 3 rows, 3 calls queued"
        )
    report.check(
        all(received.get(run_id) == 1 for run_id in run_ids) and len(received) == BULK_RUNS,
        f"the sandbox received each run's list exactly once ({received})",
    )
    report.check(stored_exports(s3) == [], "no CSV left in object storage after the bulk runs")
    return run_ids


def handover_run(deployment: Deployment, sandbox: Any, s3: str, report: Report) -> None:
    """One bulk run whose export and upload are made to land on different workers.

    Where tasks land is Celery's choice, so the six runs above may or may not cross workers. Here
    the harness tells worker 2 to stop taking tasks (Celery's remote control, through the broker)
    until worker 1 has started the export, then turns the two around: the upload must find the
    CSV written by the other worker, as it would on another machine.
    """
    from celery import Celery

    app = Celery(broker=deployment.env["AIRFLOW__CELERY__BROKER_URL"])
    one, two = (f"{name}@{name}" for name in deployment.worker_tmps)

    def only(worker: str, other: str) -> None:
        app.control.add_consumer("default", destination=[worker], reply=True, timeout=10)
        app.control.cancel_consumer("default", destination=[other], reply=True, timeout=10)

    say("bulk example, handed over: export on worker 1, upload on worker 2")
    try:
        only(one, two)
        run_id = deployment.trigger(BULK)
        # Swap as soon as worker 1 has started the export: the upload is queued only once the
        # export has succeeded, so by then worker 2 is the only one taking tasks.
        deployment.wait_for(
            "the export to start on worker 1",
            lambda: (
                deployment.task_instances(BULK, run_id)["export_contacts"]["state"] in ("running", "success")
            ),
            240,
            interval=0.2,
        )
        only(two, one)
        state = deployment.wait_for_run(BULK, run_id, timeout=300)
    finally:
        for worker in (one, two):
            app.control.add_consumer("default", destination=[worker], reply=True, timeout=10)
        app.close()
    row = report.record(deployment, "handover", BULK, run_id)
    hosts = (row.tasks["export_contacts"][1], row.tasks["queue_calls"][1])
    report.check(
        hosts == ("fuse-worker-1", "fuse-worker-2"), f"the export ran on {hosts[0]}, the upload on {hosts[1]}"
    )
    report.check(state == "success", f"the handed-over run succeeded (it was {state})")
    received = [u for u in sandbox.uploads() if u.calls_queued is not None and run_id in csv_run_ids(u)]
    report.check(
        len(received) == 1 and received[0].calls_queued == 3, "the sandbox received its list once, 3 calls"
    )
    report.check(stored_exports(s3) == [], "no CSV left in object storage after the handover")


def unknown_deployment_run(deployment: Deployment, sandbox: Any, s3: str, report: Report) -> None:
    say(f"bulk example against deployment {UNKNOWN_DEPLOYMENT}, which the sandbox does not know")
    before = len([u for u in sandbox.uploads() if u.calls_queued is not None])
    run_id = deployment.trigger(BULK, {"deployment_id": UNKNOWN_DEPLOYMENT})
    state = deployment.wait_for_run(BULK, run_id, timeout=300)
    row = report.record(deployment, "unknown deployment", BULK, run_id)
    report.check(state == "failed", f"the run against an unknown deployment failed (it was {state})")
    report.check(row.tasks["queue_calls"][0] == "failed", "its queue_calls failed")
    report.check(row.tasks["remove_export"][0] == "success", "its teardown still removed the export")
    after = len([u for u in sandbox.uploads() if u.calls_queued is not None])
    report.check(after == before, "Fuse queued nothing for it")
    log = deployment.task_log(BULK, run_id, "queue_calls", 1)
    report.check("404" in log or "not found" in log.lower(), "the task log gives Fuse's answer")
    report.check(stored_exports(s3) == [], "no CSV left in object storage after the failed run")


def clear_successful_upload(
    deployment: Deployment, sandbox: Any, s3: str, report: Report, run_id: str
) -> None:
    say(f"clearing queue_calls of the successful run {run_id}")
    before = len(sandbox.uploads())
    tries = deployment.task_instances(BULK, run_id)["queue_calls"]["try_number"]
    body = {
        "dry_run": False,
        "dag_run_id": run_id,
        "task_ids": ["queue_calls"],
        "only_failed": False,
        "reset_dag_runs": True,
    }
    deployment.call("POST", f"/api/v2/dags/{BULK}/clearTaskInstances", json=body)

    def ran_again() -> bool:
        ti = deployment.task_instances(BULK, run_id)["queue_calls"]
        return ti["try_number"] > tries and deployment.run_state(BULK, run_id) in ("success", "failed")

    deployment.wait_for("the cleared queue_calls to run again", ran_again, 300, interval=2)
    row = report.record(deployment, "clear queue_calls", BULK, run_id)
    report.check(
        row.state == "success" and row.tasks["queue_calls"][0] == "success",
        "the cleared upload succeeded again",
    )
    report.check(len(sandbox.uploads()) == before, "the clear sent nothing to Fuse")
    log = deployment.task_log(BULK, run_id, "queue_calls", tries + 1)
    report.check("Nothing sent" in log, "its log says it answered from the ledger and sent nothing")
    report.check(stored_exports(s3) == [], "no CSV left in object storage after the clear")


def single_calls(deployment: Deployment, sandbox: Any, report: Report) -> None:
    def deferred(run_id: str) -> Callable[[], bool]:
        return lambda: (
            deployment.task_instances(SINGLE, run_id).get("wait_for_outcome", {}).get("state") == "deferred"
        )

    say("single-call example: the call ends while the sensor waits in the triggerer")
    run_id = deployment.trigger(SINGLE)
    deployment.wait_for("the sensor to defer", deferred(run_id), 240, interval=2)
    report.checks.append("the single call's sensor deferred")
    call_id = deployment.xcom(SINGLE, run_id, "queue_call")
    sandbox.advance(600)  # the sandbox's clock: ring, talk, hang up
    state = deployment.wait_for_run(SINGLE, run_id, timeout=240)
    row = report.record(deployment, "single call", SINGLE, run_id)
    report.check(state == "success", f"the single-call run succeeded (it was {state})")
    details = deployment.xcom(SINGLE, run_id, "wait_for_outcome")
    report.check(
        isinstance(details, dict)
        and str(details.get("call_id")) == str(call_id)
        and details.get("status") == "completed",
        f"the resumed sensor pushed the call's details (completed): {details!r}, call id {call_id!r}",
    )
    report.check("phone_number" not in details, "the call's details carry no phone number")
    log = deployment.task_log(SINGLE, run_id, "wait_for_outcome", 1)
    report.check(
        "Pausing task as DEFERRED" in log and "Trigger fired event" in log,
        "the sensor's log shows it deferred, and the triggerer's trigger fired its event",
    )
    report.check(
        row.tasks["wait_for_outcome"][1].startswith("fuse-worker-"), "the sensor resumed on a worker"
    )

    say("single-call example, then the stop-campaign example cancels the pending call")
    run_id = deployment.trigger(SINGLE)
    deployment.wait_for("the second sensor to defer", deferred(run_id), 240, interval=2)
    call_id = deployment.xcom(SINGLE, run_id, "queue_call")
    stop = deployment.trigger(STOP)
    stopped = deployment.wait_for_run(STOP, stop, timeout=240)
    report.record(deployment, "stop campaign", STOP, stop)
    report.check(stopped == "success", f"the stop-campaign run succeeded (it was {stopped})")
    call = sandbox.call(str(call_id))
    report.check(call is not None and call.status == "canceled", "the pending call was canceled")
    state = deployment.wait_for_run(SINGLE, run_id, timeout=240)
    report.record(deployment, "single call, canceled", SINGLE, run_id)
    details = deployment.xcom(SINGLE, run_id, "wait_for_outcome", key="call_details")
    report.check(
        state == "failed" and isinstance(details, dict) and details.get("status") == "canceled",
        "the sensor resumed, pushed the canceled call's details and failed the run in Fuse's words",
    )


def results_rows(deployment: Deployment, run_id: str) -> list[tuple[Any, ...]]:
    """This run's rows of the results table, read straight from Postgres by the DBA (status, attempts,
    part, destination)."""
    with contextlib.closing(results_db(deployment)) as db, db.cursor() as cursor:
        cursor.execute(
            f"SELECT status, attempts, part, destination FROM {RESULTS_TABLE} "
            "WHERE dag_id = %s AND run_id = %s",
            (RESULTS, run_id),
        )
        return list(cursor.fetchall())


def result_tokens(sandbox: Any) -> list[str]:
    """Every results token the workers gave Fuse (the last segment of each call's ``result_url``)."""
    return sorted({call.result_url.rsplit("/", 1)[-1] for call in sandbox.calls() if call.result_url})


def campaign_results(deployment: Deployment, sandbox: Any, report: Report) -> None:
    say("campaign-results example: each call's outcome comes back through the api-server into Postgres")
    run_id = deployment.trigger(RESULTS)

    def sensor_deferred() -> bool:
        return deployment.task_instances(RESULTS, run_id).get(RESULTS_SENSOR, {}).get("state") == "deferred"

    deployment.wait_for("the results sensor to defer", sensor_deferred, 240, interval=2)
    report.checks.append("the campaign-results sensor deferred to the triggerer")
    sandbox.advance(600)  # the sandbox's clock: the calls ring, are answered or not, end, and report
    state = deployment.wait_for_run(RESULTS, run_id, timeout=300)
    report.record(deployment, "campaign results", RESULTS, run_id)
    report.check(state == "success", f"the campaign-results run succeeded (it was {state})")
    calls = [call for call in sandbox.calls() if call.result_url]
    report.check(
        len(calls) == 3 and all(call.result_delivery == "delivered" for call in calls),
        "the sandbox delivered the 3 calls' outcomes to the api-server "
        f"({[(call.status, call.result_delivery, call.result_status_code) for call in calls]})",
    )
    summary = deployment.xcom(RESULTS, run_id, RESULTS_SENSOR)
    report.check(
        summary == RESULTS_SUMMARY, f"the sensor's summary is 3 queued → 2 completed, 1 failed: {summary}"
    )
    rows = results_rows(deployment, run_id)
    report.check(
        sorted(status for status, *_ in rows) == ["completed", "completed", "failed"]
        and {destination[-10:] for *_, destination in rows} == {n[-10:] for n in RESULTS_NUMBERS},
        f"Postgres holds the run's 3 outcomes, one per number ({len(rows)} rows)",
    )
    # What a token authorises: one part of one upload. A forged one writes nothing.
    (token,) = {call.result_url.rsplit("/", 1)[-1] for call in calls}
    payload, _, signature = token.partition(".")
    forged = f"{payload}.{signature[::-1]}"
    body = {"call_details": {"status": "completed", "attempts": "1", "phone_number": "'6175550142'"}}
    answer = requests.post(f"{deployment.api}/fuse/results/{forged}", json=body, timeout=30)
    report.check(
        answer.status_code in (401, 403) and len(results_rows(deployment, run_id)) == 3,
        f"a forged token is refused ({answer.status_code}) and stores nothing",
    )
    replay = requests.post(calls[0].result_url, json=body, timeout=30)
    report.check(
        replay.status_code == 409 and len(results_rows(deployment, run_id)) == 3,
        f"a genuine token cannot store more outcomes than its part has rows ({replay.status_code})",
    )
