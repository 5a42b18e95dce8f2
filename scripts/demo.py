"""`make demo`: run the example DAGs end to end against a local Fuse sandbox — no account, no real call.

Starts the sandbox on a free loopback port, points ``fuse_default`` at it, migrates a project-local
AIRFLOW_HOME (SQLite, under .demo/), points the examples' export base (the Airflow Variable
``fuse_example_export_base``) at .demo/exports, and then:

1. runs ``airflow dags test example_fuse_bulk_queue`` and prints the calls queued (from XCom), what
   the sandbox received and whether the export was removed;
2. meanwhile starts ``airflow api-server`` on a free loopback port in the same AIRFLOW_HOME, with
   the provider's plugin (the results receiver under ``/fuse``), a ``[fuse]`` section from the
   environment (``results_base_url`` at that port, a signing key made for this demo) and the results
   connection ``fuse_results_default`` at a SQLite file in the AIRFLOW_HOME; waits for its health
   endpoint and checks that the receiver refuses a forged token;
3. runs ``airflow dags test example_fuse_campaign_results``: the sandbox posts each call's outcome
   to the api-server, the sensor counts them, and a task writes a retry list; prints what arrived
   (numbers shortened to their last four digits), what the api-server's access log shows of those
   requests, and the sensor's summary, ``3 queued → 2 completed, 1 failed``;
4. starts the scheduler (LocalExecutor), the triggerer and the dag-processor beside the api-server
   and triggers ``example_fuse_approval`` through the REST API: its upload asks in Required Actions
   before dialing (``approval=True``), and the approver is phoned through the sandbox. It prints the
   question's subject and body and the Required Actions address a person would open, answers
   *Approve* through the REST API as ``admin`` (saying so), and prints the calls queued.
   (``airflow dags test`` cannot run a task that asks on Airflow 3.1: a running Airflow does.)

The api-server and the other components are stopped (each whole process group) whatever happens,
the sandbox too. Exit status 0 only if the three runs succeeded, no export was left behind, every
queued call's outcome arrived, and the approved list was sent once. Under two minutes here once the
virtualenv exists (the DAG runs take most of it; the sandbox runs 60 times faster than real time,
so the calls themselves end within a second).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.parse
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_fuse.sandbox import FuseSandbox
from harness import (
    AIRFLOW,
    AirflowApi,
    AirflowServices,
    ApiRefused,
    ApiServer,
    Post,
    ProcessExited,
    free_port,
    post_many,
    wait_until,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
# One home per Airflow version: a database migrated by a newer Airflow cannot be used by an older one.
AIRFLOW_HOME = ROOT / ".demo" / f"airflow-home-{version('apache-airflow')}"
# Where the examples write their contact CSVs (their teardowns delete them) and the retry lists.
EXPORT_BASE = ROOT / ".demo" / "exports"
# The results connection's database: the table of call outcomes the receiver writes.
RESULTS_DB = AIRFLOW_HOME / "fuse_results.db"
RESULTS_TABLE = "fuse_call_results"
API_SERVER_LOG = AIRFLOW_HOME / "api-server.log"
BULK_DAG = "example_fuse_bulk_queue"
RESULTS_DAG = "example_fuse_campaign_results"
APPROVAL_DAG = "example_fuse_approval"
# The approver the approval example phones (its Variable fuse_example_approver): a fictional number.
APPROVER = "tel:+16175550123"
# The simple auth manager's password for admin, new for every demo (the file is the only place it is).
PASSWORDS_FILE = AIRFLOW_HOME / "passwords.json"
SERVICES_LOGS = AIRFLOW_HOME / "services"
AWAITS_INPUT = tuple(int(part) for part in version("apache-airflow").split(".")[:2]) >= (3, 3)
# Airflow 3.3.2 can fail a task answered before the scheduler has collected the exit of the try that
# asked: answer once that process has exited and a few scheduler loops later, as a person would.
SETTLE = 3.0
API_SERVER_START_TIMEOUT = 120.0
# A receiver path in an access log. The token must show as ***, in whatever spelling the server
# logs it (uvicorn up to 0.54 URL-quoted it, %2A%2A%2A; 0.55 and Airflow 3.3 write *** as is).
RECEIVER_PATH = re.compile(r"/fuse/results/([^\s\"?]+)")
HIDDEN = "***"
NO_REAL_CALL = "No real call was placed: the Fuse sandbox on this machine stood in for Fuse."
#: The sensor summary's outcome counts, in the order the summary line names them.
ENDS = ("completed", "failed", "canceled", "rejected", "other", "missing")


def airflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run an ``airflow`` command, showing its output only when it fails."""
    result = subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stdout.write(result.stdout[-6000:])
        sys.stderr.write(result.stderr[-6000:])
    return result


def latest_run(dag_id: str) -> tuple[str | None, str | None]:
    """The id and state of the newest run of ``dag_id`` in the demo's Airflow database."""
    with contextlib.closing(sqlite3.connect(AIRFLOW_HOME / "airflow.db")) as db:
        row = db.execute(
            "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
        ).fetchone()
    return (row[0], row[1]) if row else (None, None)


def xcom(dag_id: str, run_id: str | None, task_id: str, key: str = "return_value") -> Any:
    """A task's XCom value in the demo's Airflow database, or ``None``."""
    with contextlib.closing(sqlite3.connect(AIRFLOW_HOME / "airflow.db")) as db:
        row = db.execute(
            "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = ?",
            (dag_id, run_id, task_id, key),
        ).fetchone()
    value = row[0] if row else None
    if isinstance(value, (str, bytes)):  # the JSON column comes back parsed or as text, by version
        value = json.loads(value)
    return value


def outcomes(run_id: str | None) -> list[sqlite3.Row]:
    """The rows the receiver stored for this run of the results example."""
    if not RESULTS_DB.exists():
        return []
    with contextlib.closing(sqlite3.connect(RESULTS_DB)) as db:
        db.row_factory = sqlite3.Row
        try:
            return db.execute(
                f"SELECT * FROM {RESULTS_TABLE} WHERE dag_id = ? AND run_id = ? "  # a constant: no user input
                "ORDER BY received_timestamp",
                (RESULTS_DAG, run_id),
            ).fetchall()
        except sqlite3.OperationalError:  # no table: nothing was ever stored
            return []


def timed(function: Callable[..., object], *args: Any) -> float:
    """Seconds ``function(*args)`` took."""
    started = time.monotonic()
    function(*args)
    return time.monotonic() - started


def stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through every `finally`: the api-server and sandbox are stopped


def receiver_paths(log: str) -> tuple[int, int]:
    """How many receiver paths ``log`` shows with the token hidden, and how many with anything else."""
    tails = [urllib.parse.unquote(tail) for tail in RECEIVER_PATH.findall(log)]
    hidden = tails.count(HIDDEN)
    return hidden, len(tails) - hidden


def summary_line(summary: dict[str, int]) -> str:
    """``3 queued → 2 completed, 1 failed``: the counts that are not zero, in the sensor's order."""
    counted = [f"{summary[key]} {key}" for key in ENDS if summary.get(key)]
    return f"{summary.get('calls_queued', 0)} queued → " + (", ".join(counted) or "no outcome")


def counted(number: int, thing: str) -> str:
    """``1 attempt``, ``2 attempts``: ``number`` and ``thing``, plural unless it is one."""
    return f"{number} {thing}" if number == 1 else f"{number} {thing}s"


def delivery_words(delivery: str | None, status_code: int | None) -> str:
    """What became of a call's outcome, in plain words, from the sandbox's record of posting it."""
    if delivery == "delivered":
        return f"its outcome was posted to the receiver, which answered {status_code}"
    if delivery == "failed" and status_code is not None:
        return f"its outcome was posted to the receiver, which refused it ({status_code})"
    if delivery == "failed":
        return "its outcome could not be posted: the receiver did not answer"
    if delivery == "pending":
        return "its outcome was still being posted"
    return "no outcome was posted"


def receiver_requests(logged: int, leaked: int, posted: int) -> str:
    """The api-server's access log in a sentence: requests to the receiver, and what they were.

    ``posted`` of them were the sandbox posting outcomes; the rest were checks (the demo's made-up
    token, and the bulk task's look at the receiver before it dials).
    """
    total = logged + leaked
    outcomes = min(posted, total)
    checks = total - outcomes
    shown = "each with its token hidden as ***" if not leaked else f"a token visible in {leaked}"
    return (
        f"{counted(total, 'request')} to the receiver ({counted(outcomes, 'outcome')} from the sandbox, "
        f"{counted(checks, 'check')} made before dialing), {shown}"
    )


def main() -> int:
    started = time.monotonic()
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    EXPORT_BASE.mkdir(parents=True, exist_ok=True)
    port = free_port()
    password = secrets.token_urlsafe(16)
    PASSWORDS_FILE.write_text(json.dumps({"admin": password}))
    base = {
        **os.environ,
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_VAR_FUSE_EXAMPLE_EXPORT_BASE": EXPORT_BASE.as_uri(),
        # The results loop: where the sandbox posts outcomes, the key tokens are signed with (new for
        # every demo, never printed), and the database they are stored in (sqlite:// + absolute path).
        "AIRFLOW__FUSE__RESULTS_BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__FUSE__RESULTS_SIGNING_KEY": secrets.token_hex(32),
        "AIRFLOW__FUSE__RESULTS_CONN_ID": "fuse_results_default",
        "AIRFLOW__FUSE__RESULTS_TABLE": RESULTS_TABLE,
        "AIRFLOW_CONN_FUSE_RESULTS_DEFAULT": f"sqlite://{RESULTS_DB}",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        # The approval: admin may log in to Required Actions and answer; the approver's number.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(PASSWORDS_FILE),
        "AIRFLOW_VAR_FUSE_EXAMPLE_APPROVER": APPROVER,
    }
    # One JWT secret and execution API for the api-server and the components started for the approval.
    env = AirflowServices.environment(base, port, secrets.token_urlsafe(32))
    API_SERVER_LOG.unlink(missing_ok=True)  # the log read at the end is this run's only
    api_server = ApiServer(env, port=port, log_path=API_SERVER_LOG, startup_timeout=API_SERVER_START_TIMEOUT)
    with FuseSandbox(time_scale=60.0) as sandbox:
        env["AIRFLOW_CONN_FUSE_DEFAULT"] = sandbox.connection_json()
        print(
            f"No real call will be placed: a Fuse sandbox on this machine stands in for Fuse, "
            f"at {sandbox.url} (account {sandbox.email})."
        )
        print(f"Migrating the demo's Airflow database in {AIRFLOW_HOME} ...")
        if airflow(env, "db", "migrate").returncode != 0:
            print("airflow db migrate failed")
            return 1
        try:
            api_server.launch()
            print(f"Starting `airflow api-server` on {api_server.url} (log: {API_SERVER_LOG}) ...")
            problems = [] if run_bulk_example(env, sandbox) else [f"{BULK_DAG} did not succeed"]
            problems += run_results_example(env, sandbox, api_server)
            if api_server.process is not None:
                api = AirflowApi(api_server.url, "admin", password)
                with AirflowServices(env, SERVICES_LOGS) as services:
                    problems += run_approval_example(api, services, sandbox)
            return verdict(problems, started)
        finally:
            api_server.stop()


def run_bulk_example(env: dict[str, str], sandbox: FuseSandbox) -> bool:
    """Run the bulk example and print what happened; whether it did what it should."""
    print(f"Running `airflow dags test {BULK_DAG}` ...")
    took = timed(airflow, env, "dags", "test", BULK_DAG)
    run_id, state = latest_run(BULK_DAG)
    calls_queued = xcom(BULK_DAG, run_id, "queue_calls")
    uploads = sandbox.uploads()
    print()
    print("What the Fuse sandbox received:")
    for upload in uploads:
        header = upload.csv.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip()
        fields = ", ".join(f"{name}={value}" for name, value in upload.fields.items()) or "none"
        print(
            f"  a contact list for application {upload.application_id} / deployment "
            f"{upload.deployment_id}: {upload.filename}, {counted(upload.rows, 'row')} "
            f"({len(upload.csv)} bytes; columns {header}); options: {fields}. "
            f"The sandbox answered {upload.status_code}: {upload.calls_queued} calls queued"
        )
    if not uploads:
        print("  nothing")
    left_behind = contact_exports()
    print()
    print(f"Contact lists left behind in {EXPORT_BASE} (the example deletes its own): {len(left_behind)}")
    for path in left_behind:
        print(f"  {path.relative_to(EXPORT_BASE)}")
    recorded = uploads[-1].calls_queued if uploads else None
    ok = state == "success" and isinstance(calls_queued, int) and calls_queued == recorded and not left_behind
    verdict = "the DAG run succeeded" if ok else f"DAG run state {state!r}"
    print(f"{BULK_DAG}: {verdict} ({took:.0f} s); the task returned calls_queued = {calls_queued!r}")
    print()
    return ok


def contact_exports() -> list[Path]:
    """Contact CSVs under the export base: the teardowns must have removed every one."""
    return sorted(path for path in EXPORT_BASE.rglob("contacts.csv") if path.is_file())


def run_results_example(env: dict[str, str], sandbox: FuseSandbox, api_server: ApiServer) -> list[str]:
    """Run the results example through the api-server; print what arrived; what went wrong (the
    api-server is stopped when it did not start)."""
    try:
        ready_after = api_server.wait_healthy()
    except (ProcessExited, TimeoutError) as error:
        print(f"The api-server did not start: {str(error).splitlines()[0]}; the end of its log:")
        print(api_server.output()[-4000:])
        api_server.stop()
        return ["the api-server did not start"]
    forged = post_many(
        api_server.url, [Post("/fuse/results/not-a-token", b'{"call_details": {"status": "completed"}}')]
    )[0].status
    print(
        f"The api-server answers on {api_server.url} ({ready_after:.0f} s after it started). Its results "
        f"receiver, {api_server.url}/fuse/results/, "
        + (
            "refused a made-up token (403): it is there and configured"
            if forged == 403
            else f"answered {forged} to a made-up token, not 403"
        )
    )
    uploads_before = len(sandbox.uploads())
    print(f"Running `airflow dags test {RESULTS_DAG}` ...")
    took = timed(airflow, env, "dags", "test", RESULTS_DAG)
    run_id, state = latest_run(RESULTS_DAG)
    summary = xcom(RESULTS_DAG, run_id, "wait_for_outcomes")
    retry = xcom(RESULTS_DAG, run_id, "write_retry_list")
    rows = outcomes(run_id)
    upload_ids = {upload.upload_id for upload in sandbox.uploads()[uploads_before:]}
    calls = [call for call in sandbox.calls() if call.upload_id in upload_ids]

    print(f"{RESULTS_DAG}: DAG run state {state!r} ({took:.0f} s)")
    print(
        "Its campaign view (the bulk task's Fuse tab in Airflow's UI, while an api-server serves this home): "
        f"{api_server.url}/fuse/campaigns/{RESULTS_DAG}/{urllib.parse.quote(run_id or '', safe='')}"
        "/queue_calls"
    )
    print()
    print("The calls the sandbox pretended to place (numbers shortened to their last four digits):")
    for call in calls:
        print(
            f"  call {call.call_id} to …{call.phone_number[-4:]}: {call.status} after "
            f"{counted(call.attempts, 'attempt')}; "
            f"{delivery_words(call.result_delivery, call.result_status_code)}"
        )
    if not calls:
        print("  none")
    elif any(call.status == "failed" for call in calls):
        print("  (the sandbox never answers a number ending in 9: that call ends failed)")
    print(f"Rows in the results database, {RESULTS_DB} (SQLite), table {RESULTS_TABLE}:")
    for row in rows:
        number = row["destination_number"] or row["destination"] or ""
        print(
            f"  …{number[-4:]}  {row['status']:<9} attempts={row['attempts']} duration={row['duration']} "
            f"events={','.join(event['event'] for event in json.loads(row['events'] or '[]'))}"
        )
    if not rows:
        print("  nothing")
    log = API_SERVER_LOG.read_text(errors="replace")
    logged, leaked = receiver_paths(log)
    numbers_logged = sum(call.phone_number[-7:] in log for call in calls)
    posted = sum(call.result_status_code is not None for call in calls)
    print(
        f"The api-server's log ({API_SERVER_LOG}) shows {receiver_requests(logged, leaked, posted)}; "
        + (
            f"the numbers called appear in it {numbers_logged} times"
            if numbers_logged
            else "no number called appears in it"
        )
    )
    if isinstance(retry, dict):
        print(f"Numbers to try again another day: {retry.get('to_retry')}, in {retry.get('retry_list')}")
    if isinstance(summary, dict):
        print(f"The sensor's summary: {summary_line(summary)}")
    print()

    problems = []
    if state != "success":
        problems.append(f"{RESULTS_DAG} run state {state!r}")
    if forged != 403:
        problems.append(f"a forged token was answered {forged}, not 403")
    if not isinstance(summary, dict):
        problems.append("the sensor pushed no summary")
    elif summary.get("missing") or summary.get("calls_queued") != len(rows) or not rows:
        problems.append(f"the loop did not close: {summary_line(summary)}, {len(rows)} rows stored")
    elif (summary.get("completed"), summary.get("failed")) != (2, 1):
        problems.append(f"the sandbox's outcome rule says 2 completed, 1 failed; got {summary_line(summary)}")
    if leaked:
        problems.append("a results token reached the api-server's log")
    if numbers_logged:
        problems.append("a number called reached the api-server's log")
    return problems


def finish_unfinished_runs(api: AirflowApi) -> int:
    """Mark failed any run of the demo's database still queued or running (an interrupted demo's):
    the scheduler just started would otherwise take it up and dial. How many there were."""
    runs = [
        run
        for state in ("queued", "running")
        for run in api.call("GET", "/api/v2/dags/~/dagRuns", state=state, limit=100)["dag_runs"]
    ]
    for run in runs:
        path = f"/api/v2/dags/{quoted(run['dag_id'])}/dagRuns/{quoted(run['dag_run_id'])}"
        api.call("PATCH", path, {"state": "failed"})
    return len(runs)


def quoted(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def run_approval_example(api: AirflowApi, services: AirflowServices, sandbox: FuseSandbox) -> list[str]:
    """Trigger the approval example on the running components, show its question and where a person
    answers it, answer *Approve* through the REST API, and print what was sent; what went wrong."""
    print(
        f"Started the scheduler, triggerer and dag-processor beside the api-server (logs: {SERVICES_LOGS})."
    )
    api.login()
    finish_unfinished_runs(api)

    def triggered() -> str:
        api.call("PATCH", f"/api/v2/dags/{APPROVAL_DAG}", {"is_paused": False})
        return api.trigger(APPROVAL_DAG)

    try:
        run_id = wait_until(
            f"the dag-processor to parse {APPROVAL_DAG}",
            triggered,
            180,
            interval=1,
            alive=services.check_alive,
            retry_on=(ApiRefused,),
        )
        print(f"Triggered {APPROVAL_DAG} through the REST API: its upload asks before dialing ...")
        question = api.wait_for_question(
            APPROVAL_DAG, "queue_calls", run_id=run_id, alive=services.check_alive, timeout=180
        )
        wait_for_the_answer(api, services, question)
    except (ProcessExited, TimeoutError) as error:
        return [f"{APPROVAL_DAG} did not ask: {str(error).splitlines()[0]}"]
    uploads_before = len(sandbox.uploads())
    print()
    print("The question in Required Actions (no phone number in it):")
    print(f"  {question['subject']}")
    for line in question["body"].splitlines():
        print(f"    {line}" if line.strip() else "")
    print(f"A person opens {api.required_actions_url(question)}")
    print(f"  (log in as admin, password in {PASSWORDS_FILE}) and clicks Approve or Reject there.")
    approver = [call for call in sandbox.calls() if call.variables.get("airflow_run_id") == run_id]
    for call in approver:
        print(
            f"  The approver was phoned to say so: a call to …{call.phone_number[-4:]} through the sandbox "
            f"({call.variables.get('airflow_event')}), the number from the Variable fuse_example_approver."
        )
    print("The demo answers Approve through the REST API instead, as admin:")
    ti = question["task_instance"]
    print(
        f"  PATCH {AirflowApi.hitl_path(ti['dag_id'], ti['dag_run_id'], ti['task_id'])}"
        ' {"chosen_options": ["Approve"], "params_input": {}}'
    )
    api.answer(question, ["Approve"])
    try:
        state = api.wait_for_run(APPROVAL_DAG, run_id, 240, alive=services.check_alive)
    except (ProcessExited, TimeoutError) as error:
        return [f"{APPROVAL_DAG} did not finish: {str(error).splitlines()[0]}"]
    calls_queued = api.xcom(APPROVAL_DAG, run_id, "queue_calls")
    sent = sandbox.uploads()[uploads_before:]
    for upload in sent:
        print(
            f"  The sandbox received the approved list: {counted(upload.rows, 'row')}, answered "
            f"{upload.status_code}: {upload.calls_queued} calls queued"
        )
    print(f"{APPROVAL_DAG}: DAG run state {state!r}; the task returned calls_queued = {calls_queued!r}")
    print()
    problems = []
    if state != "success":
        problems.append(f"{APPROVAL_DAG} run state {state!r}")
    if len(sent) != 1 or calls_queued != sent[0].calls_queued:
        problems.append(f"the approved list was sent {len(sent)} times, calls_queued {calls_queued!r}")
    return problems


def wait_for_the_answer(api: AirflowApi, services: AirflowServices, question: dict[str, Any]) -> None:
    """Until the task that asked waits for the answer (``awaiting_input`` on Airflow 3.3, ``deferred``
    before), the asking try's process has exited and :data:`SETTLE` s have passed (an answer before
    that can meet a race in Airflow's scheduler, on 3.1 as on 3.3)."""
    ti = question["task_instance"]
    waiting = "awaiting_input" if AWAITS_INPUT else "deferred"
    wait_until(
        f"{ti['task_id']} to be {waiting}",
        lambda: api.task_instances(ti["dag_id"], ti["dag_run_id"])[ti["task_id"]]["state"] == waiting,
        120,
        interval=0.5,
        alive=services.check_alive,
    )
    pid = ti.get("pid")
    if pid:
        wait_until("the asking try to exit", lambda: not Path(f"/proc/{pid}").exists(), 60, interval=0.2)
    time.sleep(SETTLE)


def verdict(problems: list[str], started: float) -> int:
    """Print how the demo went; its exit status."""
    left_behind = contact_exports()
    if left_behind:
        problems = [*problems, f"{counted(len(left_behind), 'contact export')} left behind"]
    elapsed = time.monotonic() - started
    if problems:
        print(f"FAILED: {'; '.join(problems)} ({elapsed:.0f} s)")
        print(NO_REAL_CALL)
        return 1
    print(
        "SUCCESS: the three DAG runs succeeded, the contact lists were deleted, every call's outcome "
        "came back through the api-server into the results database, and the approved list was sent "
        f"once ({elapsed:.0f} s)."
    )
    print(NO_REAL_CALL)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("Interrupted: the api-server and the sandbox were stopped.", file=sys.stderr)
        sys.exit(130)
