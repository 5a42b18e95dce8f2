"""Questions a person answers, on the deployment: a task waits in Required Actions, the harness reads the
question through the REST API as the UI shows it and answers as ``admin``, as a person would click.

The approval example asks before its first send (and phones the approver through Fuse); the
deployment test's own DAG asks after Fuse's answer to a part of its list was lost. On Airflow 3.3 the
task waits ``awaiting_input``; the answer puts it back to ``scheduled`` and a Celery worker runs it on.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployment_test.examples import APPROVAL, APPROVER, UNKNOWN_ASK, UNKNOWN_NUMBERS, phone_numbers
from deployment_test.report import Failed, Report, say
from deployment_test.scenarios import stored_exports
from deployment_test.topology import BUCKET
from harness import AirflowApi

if TYPE_CHECKING:
    from deployment_test.api import Deployment

APPROVAL_SUBJECT = "Approve calling list"
UNKNOWN_SUBJECT = "Unknown outcome"
# On Airflow 3.3.2 an answer that comes before the scheduler has collected the exit of the try that
# asked can fail the task (the resumed try and the first share one key): answer once that try's
# process has exited and the scheduler has been round its loop a few times, as a person would.
SETTLE = 3.0
#: A run of digits as a text may spell a phone number: with spaces, dots, dashes, brackets or a +.
DIGIT_RUN = re.compile(r"\+?\(?\d[\d\s().\-]{5,}\d")


def numbers_shown(text: str) -> list[str]:
    """The names of the dialed numbers ``text`` shows in any spelling of their digits (their last
    seven digits, with or without separators and a country code)."""
    runs = ["".join(ch for ch in run if ch.isdigit()) for run in DIGIT_RUN.findall(text)]
    runs.append("".join(ch for ch in text if ch.isdigit()))
    return sorted({name for name, number in phone_numbers().items() if any(number[-7:] in r for r in runs)})


def s3_client(s3: str) -> Any:
    import boto3

    return boto3.client(
        "s3", endpoint_url=s3, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def rest(deployment: Deployment) -> AirflowApi:
    """The REST API as ``admin``, with the harness's question methods."""
    return AirflowApi(deployment.api, "admin", deployment.admin_password).login()


def wait_for_question(deployment: Deployment, api: AirflowApi, dag_id: str, run_id: str, subject: str) -> Any:
    """Until ``queue_calls`` of the run asks (a subject starting ``subject``) and waits for the answer:
    ``awaiting_input``, the asking try's process gone, :data:`SETTLE` s more; the question's detail."""

    def still_running() -> None:
        deployment.processes.check_alive()
        if deployment.run_state(dag_id, run_id) in ("success", "failed"):
            raise Failed(f"{dag_id} run {run_id} ended before asking")

    try:
        question = api.wait_for_question(
            dag_id, "queue_calls", run_id=run_id, subject_starts=subject, alive=still_running, timeout=240
        )
    except TimeoutError as error:
        raise Failed(str(error)) from None
    deployment.wait_for(
        "queue_calls to wait for the answer",
        lambda: deployment.task_instances(dag_id, run_id)["queue_calls"]["state"] == "awaiting_input",
        120,
        interval=0.5,
    )
    pid = question["task_instance"].get("pid")
    if pid:  # the workers share this machine's process ids: their namespaces are mount and host name
        deployment.wait_for("the asking try's process to exit", lambda: not Path(f"/proc/{pid}").exists(), 60)
    time.sleep(SETTLE)
    return question


def approval_run(deployment: Deployment, sandbox: Any, s3: str, report: Report) -> None:
    say("approval example: the list waits in Required Actions until admin approves it")
    api = rest(deployment)
    run_id = deployment.trigger(APPROVAL)
    question = wait_for_question(deployment, api, APPROVAL, run_id, APPROVAL_SUBJECT)
    report.checks.append("the approval example's queue_calls waits in awaiting_input for an answer")
    say(f"a person would answer at {api.required_actions_url(question)}")
    detail = api.call("GET", api.hitl_path(APPROVAL, run_id, "queue_calls"))
    shown = f"{detail['subject']}\n{detail['body']}"
    report.check(
        detail["options"] == ["Approve", "Reject"] and detail["defaults"] == ["Reject"],
        f"the question offers Approve / Reject, Reject when unanswered: {detail['subject']!r}",
    )
    report.check("202" in shown, "the question names the deployment (202)")
    report.check(not numbers_shown(shown), f"no phone number in its subject or body {numbers_shown(shown)}")
    listing = s3_client(s3).list_objects_v2(Bucket=BUCKET, Prefix=f"exports/{APPROVAL}/")
    (key,) = [item["Key"] for item in listing.get("Contents", [])]
    shown_list = s3_client(s3).get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def approver_called() -> list[Any]:
        return [
            call
            for call in sandbox.calls()
            if call.phone_number[-10:] == APPROVER[-10:] and call.variables.get("airflow_run_id") == run_id
        ]

    calls = deployment.wait_for("the notifier to phone the approver", approver_called, 60)
    report.check(
        len(calls) == 1 and calls[0].variables.get("airflow_event") == "approval_requested",
        "the approver (a number in a Variable) was phoned once through Fuse: approval_requested",
    )
    report.check(not sent_for(sandbox, run_id), "nothing was sent to Fuse before the answer")

    api.answer(question, ["Approve"])
    state = deployment.wait_for_run(APPROVAL, run_id, timeout=300)
    row = report.record(deployment, "approval", APPROVAL, run_id)
    report.check(
        state == "success" and all(s == "success" for s, _ in row.tasks.values()),
        f"the approved run succeeded, every task too ({row.tasks})",
    )
    answered = api.call("GET", api.hitl_path(APPROVAL, run_id, "queue_calls"))
    by = (answered["responded_by_user"] or {}).get("name")
    report.check(
        answered["chosen_options"] == ["Approve"] and by == "admin", "Airflow records Approve, by admin"
    )
    uploads = sent_for(sandbox, run_id)
    report.check(
        len(uploads) == 1 and uploads[0].csv == shown_list and uploads[0].calls_queued == 3,
        "the sandbox received exactly the list the question was about, once: its bytes, 3 calls queued",
    )
    report.check(deployment.xcom(APPROVAL, run_id, "queue_calls") == 3, "calls_queued in XCom = 3")
    left = [key for key in stored_exports(s3) if key.startswith(f"exports/{APPROVAL}/")]
    report.check(left == [], f"the approval run's teardown removed its export from object storage {left}")


def sent_for(sandbox: Any, run_id: str) -> list[Any]:
    """The uploads whose rows carry ``run_id`` (the approval example's ``airflow_run_id`` column)."""
    found = []
    for upload in sandbox.uploads():
        rows = list(csv.DictReader(io.StringIO(upload.csv.decode("utf-8-sig"))))
        if rows and all(row.get("airflow_run_id") == run_id for row in rows):
            found.append(upload)
    return found


def destinations(upload: Any) -> list[str]:
    return [row["destination"] for row in csv.DictReader(io.StringIO(upload.csv.decode("utf-8-sig")))]


def unknown_outcome_run(deployment: Deployment, sandbox: Any, s3: str, report: Report) -> None:
    say("a list in 3 parts whose second part's answer is lost: admin answers 'Fuse did not queue it'")
    api = rest(deployment)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(("destination", "first_name"))
    writer.writerows((number, f"Name {index}") for index, number in enumerate(UNKNOWN_NUMBERS))
    key = f"exports/{UNKNOWN_ASK}/{secrets.token_hex(4)}/contacts.csv"
    client = s3_client(s3)
    client.put_object(Bucket=BUCKET, Key=key, Body=text.getvalue().encode("utf-8"))
    before = len(sandbox.uploads())
    try:
        # The second bulk_queue request is lost before Fuse queues it: the task cannot know that.
        sandbox.inject_fault(drop=True, skip=1, endpoint="bulk_queue")
        run_id = deployment.trigger(UNKNOWN_ASK, {"csv_path": f"s3://aws_default@{BUCKET}/{key}"})
        question = wait_for_question(deployment, api, UNKNOWN_ASK, run_id, UNKNOWN_SUBJECT)
        detail = api.call("GET", api.hitl_path(UNKNOWN_ASK, run_id, "queue_calls"))
        shown = f"{detail['subject']}\n{detail['body']}"
        report.check(
            detail["options"] == ["Fuse queued it", "Fuse did not queue it", "Stop"]
            and detail["defaults"] == ["Stop"],
            f"the question offers Fuse queued it / did not queue it / Stop, Stop when unanswered: "
            f"{detail['subject']!r}",
        )
        report.check(
            not numbers_shown(shown), f"no phone number in its subject or body {numbers_shown(shown)}"
        )
        api.answer(question, ["Fuse did not queue it"])
        state = deployment.wait_for_run(UNKNOWN_ASK, run_id, timeout=300)
    finally:
        sandbox.clear_faults()
        client.delete_object(Bucket=BUCKET, Key=key)
    row = report.record(deployment, "unknown outcome, asked", UNKNOWN_ASK, run_id)
    report.check(
        state == "success" and all(s == "success" for s, _ in row.tasks.values()),
        f"the run answered 'Fuse did not queue it' succeeded, every task too ({row.tasks})",
    )
    uploads = sandbox.uploads()[before:]
    report.check(
        [(u.rows, u.calls_queued) for u in uploads] == [(2, 2), (2, None), (2, 2), (2, 2)],
        "the sandbox saw part 1 queued, part 2 lost, part 2 again and part 3 queued "
        f"({[(u.rows, u.calls_queued) for u in uploads]})",
    )
    parts = [destinations(upload) for upload in uploads]
    report.check(parts[2] == parts[1] and parts.count(parts[0]) == 1, "only the unknown part was sent again")
    upload_ids = {upload.upload_id for upload in uploads}
    dialed = sorted(call.phone_number[-10:] for call in sandbox.calls() if call.upload_id in upload_ids)
    report.check(
        dialed == sorted(number[-10:] for number in UNKNOWN_NUMBERS), "each of the 6 numbers was queued once"
    )
    report.check(deployment.xcom(UNKNOWN_ASK, run_id, "queue_calls") == 6, "calls_queued in XCom = 6")
    answered = api.call("GET", api.hitl_path(UNKNOWN_ASK, run_id, "queue_calls"))
    report.check(
        (answered["responded_by_user"] or {}).get("name") == "admin",
        "Airflow records who answered: admin",
    )
