"""The results receiver on the deployment, beyond what the examples do: the results role's
privileges, a burst of outcomes through every api-server worker, and a locked results table."""

from __future__ import annotations

import contextlib
import os
import re
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from deployment_test.report import Report, say
from deployment_test.topology import API_WORKERS, RESULTS_DATABASE, RESULTS_ROLE, RESULTS_TABLE, results_db

if TYPE_CHECKING:
    from deployment_test.api import Deployment
    from deployment_test.topology import ReceiverFacts

# A burst through the receiver: distinct outcomes posted at once under one token of a small part.

BURST_ROWS = 20
BURST_OUTCOMES = 200
BURST_THREADS = 32
# The locked database: a superuser holds LOCK TABLE ... IN ACCESS EXCLUSIVE MODE while callbacks arrive
# in waves, one every LOCK_WAVE_EVERY seconds, and until every one is answered (about 15 s in all).
LOCK_WAVES = 3
LOCK_WAVE = 4
LOCK_WAVE_EVERY = 5.0
# What a 503's time may exceed the receiver's STORE_TIMEOUT by on a loaded 2-CPU machine (HTTP,
# scheduling); the e2e tests allow 4 s.
SLACK = 3.0


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU seconds a live process has used, from /proc; None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def campaign_slots(deployment: Deployment, campaign: str) -> list[int]:
    """The slots one campaign's rows hold in the results table, read by the DBA."""
    with contextlib.closing(results_db(deployment)) as db, db.cursor() as cursor:
        cursor.execute(f"SELECT slot FROM {RESULTS_TABLE} WHERE campaign_id = %s ORDER BY slot", (campaign,))
        return [int(slot) for (slot,) in cursor.fetchall()]


def check_least_privilege(deployment: Deployment, report: Report) -> None:
    """What the results role may do, and who the results database's connections came as."""
    with contextlib.closing(results_db(deployment)) as db, db.cursor() as cursor:
        cursor.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants WHERE grantee = %s",
            (RESULTS_ROLE,),
        )
        granted = sorted(privilege for (privilege,) in cursor.fetchall())
        cursor.execute(
            "SELECT rolsuper OR rolcreatedb OR rolcreaterole OR rolbypassrls, "
            "has_schema_privilege(%s, 'public', 'CREATE'), has_database_privilege(%s, %s, 'CREATE') "
            "FROM pg_roles WHERE rolname = %s",
            (RESULTS_ROLE, RESULTS_ROLE, RESULTS_DATABASE, RESULTS_ROLE),
        )
        ((powers, create_in_schema, create_in_database),) = cursor.fetchall()
        cursor.execute(
            "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (RESULTS_DATABASE,),
        )
        users = sorted(user for (user,) in cursor.fetchall())
    report.check(
        granted == ["INSERT", "SELECT"] and not (powers or create_in_schema or create_in_database),
        f"the results role {RESULTS_ROLE} has {granted} on {RESULTS_TABLE} and nothing else "
        f"(no role attribute: {not powers}, no CREATE in the schema or the database: "
        f"{not (create_in_schema or create_in_database)})",
    )
    configured = urllib.parse.urlsplit(deployment.env["AIRFLOW_CONN_FUSE_RESULTS_DEFAULT"]).username
    report.check(
        configured == RESULTS_ROLE and users == [RESULTS_ROLE],
        f"every component's results connection logs in as {configured}, and so does every open "
        f"connection to the results database ({users})",
    )


def callback(number: str, status: str = "completed") -> dict[str, Any]:
    """One outcome's body, as Fuse's documented sample has it: numbers as strings, the number quoted."""
    now = int(time.time())
    return {
        "call_details": {
            "status": status,
            "attempts": "1",
            "max_attempts": "3",
            "reattempt_wait": "60",
            "queued_timestamp": str(now - 90),
            "start_timestamp": str(now - 60),
            "end_timestamp": str(now),
            "duration": "31" if status == "completed" else "",
            "events": [
                {"event": "queued", "timestamp": str(now - 90)},
                {"event": status, "timestamp": str(now)},
            ],
            "phone_number": f"'{number}'",
        }
    }


def harness_part(deployment: Deployment, dag_id: str, rows: int) -> tuple[str, str]:
    """A fresh campaign of one part of ``rows`` rows, and its token signed with the deployment's key."""
    from airflow_provider_fuse.results.tokens import UploadPart, new_campaign, sign

    campaign = new_campaign()
    part = UploadPart(
        dag_id=dag_id,
        run_id=f"manual__{campaign[:12]}",
        task_id="queue_calls",
        map_index=-1,
        campaign=campaign,
        part=0,
        rows=rows,
        expires=int(time.time()) + 3600,
    )
    token = sign(part, deployment.env["AIRFLOW__FUSE__RESULTS_SIGNING_KEY"])
    deployment.harness_tokens.append(token)
    return campaign, token


def harness_numbers(deployment: Deployment, what: str, exchanges: tuple[str, ...], count: int) -> list[str]:
    """``count`` fictional numbers (555-0100 to 555-0199 of the given area codes), for the leak scan."""
    numbers = [f"{exchange}5550{100 + index % 100}" for exchange in exchanges for index in range(100)][:count]
    for index, number in enumerate(numbers):
        deployment.harness_numbers[f"{what} number {index + 1}"] = number
    return numbers


@dataclass(frozen=True)
class Posted:
    status: int
    seconds: float
    stored: str | None
    retry_after: str | None


def post_callback(deployment: Deployment, token: str, body: dict[str, Any]) -> Posted:
    """POST one outcome on a connection of its own (any api-server worker may take it); timed."""
    started = time.monotonic()
    answer = requests.post(f"{deployment.api}/fuse/results/{token}", json=body, timeout=(5, 60))
    seconds = time.monotonic() - started
    stored = None
    if answer.status_code == 200:
        stored = answer.json().get("stored")
    return Posted(answer.status_code, seconds, stored, answer.headers.get("Retry-After"))


def receiver_burst(deployment: Deployment, report: Report) -> None:
    """Many distinct outcomes at once under one token of a small part, through every api-server worker."""
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor

    assert deployment.api_server is not None
    workers = deployment.api_server.worker_pids()
    before = {pid: cpu_seconds(pid) for pid in workers}
    campaign, token = harness_part(deployment, "fuse_deployment_burst", BURST_ROWS)
    numbers = harness_numbers(deployment, "burst", ("617", "212"), BURST_OUTCOMES)
    say(
        f"receiver burst: {BURST_OUTCOMES} distinct outcomes at once ({BURST_THREADS} threads) under one "
        f"token of a {BURST_ROWS}-row part, api-server on {len(workers)} workers"
    )
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=BURST_THREADS) as pool:
        futures = [pool.submit(post_callback, deployment, token, callback(number)) for number in numbers]
        answers = [future.result(timeout=120) for future in futures]
    took = time.monotonic() - started
    busy = 0
    for pid, cpu in before.items():
        after = cpu_seconds(pid)
        busy += cpu is not None and after is not None and after - cpu >= 0.05
    statuses = Counter(answer.status for answer in answers)
    slots = campaign_slots(deployment, campaign)
    report.measured.append(
        f"burst: {BURST_OUTCOMES} outcomes for a {BURST_ROWS}-row part through {len(workers)} workers "
        f"({busy} busy) in {took:.1f} s: {statuses.get(200, 0)} × 200, {statuses.get(409, 0)} × 409, "
        f"{len(slots)} rows stored"
    )
    report.check(
        len(workers) == API_WORKERS and busy >= 2,
        f"the burst was answered by {busy} of the api-server's {len(workers)} worker processes "
        f"(each that used CPU for it), in {took:.1f} s",
    )
    report.check(
        statuses == {200: BURST_ROWS, 409: BURST_OUTCOMES - BURST_ROWS}
        and sum(answer.stored == "stored" for answer in answers) == BURST_ROWS,
        f"{BURST_OUTCOMES} distinct outcomes at once for a {BURST_ROWS}-row part: "
        f"{statuses.get(200, 0)} stored (200), {statuses.get(409, 0)} refused as the part is full (409); "
        f"all answers {dict(statuses)}",
    )
    report.check(
        slots == list(range(1, BURST_ROWS + 1)),
        f"Postgres holds exactly {BURST_ROWS} rows of the burst's campaign, in slots 1 to {BURST_ROWS} "
        f"({len(slots)} rows)",
    )


def locked_database(deployment: Deployment, facts: ReceiverFacts, report: Report) -> None:
    """Callbacks while a superuser holds the results table's ACCESS EXCLUSIVE lock: each is answered 503
    with Retry-After within the receiver's bound; once it is released, the same callbacks are stored once."""
    import statistics
    from concurrent.futures import ThreadPoolExecutor

    campaign, token = harness_part(deployment, "fuse_deployment_locked", 2 * LOCK_WAVES * LOCK_WAVE)
    numbers = harness_numbers(deployment, "locked", ("646",), LOCK_WAVES * LOCK_WAVE)
    bodies = [
        callback(number, "failed" if index % 3 == 0 else "completed") for index, number in enumerate(numbers)
    ]
    say(
        f"locked database: LOCK TABLE {RESULTS_TABLE} IN ACCESS EXCLUSIVE MODE, "
        f"{len(bodies)} callbacks in {LOCK_WAVES} waves, {LOCK_WAVE_EVERY:g} s apart"
    )
    locker = results_db(deployment, autocommit=False)
    try:
        with locker.cursor() as cursor:
            cursor.execute("SET lock_timeout = '10s'")
            cursor.execute(f"LOCK TABLE {RESULTS_TABLE} IN ACCESS EXCLUSIVE MODE")
        locked = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
            futures = []
            for wave in range(LOCK_WAVES):
                if wave:
                    time.sleep(max(0.0, locked + wave * LOCK_WAVE_EVERY - time.monotonic()))
                futures += [
                    pool.submit(post_callback, deployment, token, body)
                    for body in bodies[wave * LOCK_WAVE : (wave + 1) * LOCK_WAVE]
                ]
            answers = [future.result(timeout=120) for future in futures]
        held = time.monotonic() - locked
        locker.rollback()  # releases the lock
    finally:
        locker.close()
    waits = sorted(answer.seconds for answer in answers)
    median, longest = statistics.median(waits), waits[-1]
    report.measured.append(
        f"locked table ({held:.0f} s): {len(answers)} callbacks, time to the answer median {median:.1f} s, "
        f"max {longest:.1f} s ({[round(wait, 1) for wait in waits]})"
    )
    report.check(
        all(answer.status == 503 and (answer.retry_after or "").isdigit() for answer in answers),
        f"with the table locked for {held:.0f} s, {len(answers)} callbacks were answered "
        f"{sorted({answer.status for answer in answers})} with Retry-After",
    )
    report.check(
        longest < facts.store_timeout + SLACK,
        f"each within the receiver's bound of {facts.store_timeout:g} s: time to the 503 median "
        f"{median:.1f} s, max {longest:.1f} s",
    )
    report.check(campaign_slots(deployment, campaign) == [], "nothing was stored while the table was locked")

    # Released: the sender's retries are stored (or found stored by a store that outlived its 503).
    deadline = time.monotonic() + 60
    pending = list(range(len(bodies)))
    resent: dict[int, Posted] = {}
    while pending and time.monotonic() < deadline:
        for index in pending:
            resent[index] = post_callback(deployment, token, bodies[index])
        pending = [index for index in pending if resent[index].status != 200]
        if pending:
            time.sleep(1)
    again = [post_callback(deployment, token, body) for body in bodies]
    slots = campaign_slots(deployment, campaign)
    report.check(
        not pending and all(answer.stored in ("stored", "duplicate") for answer in resent.values()),
        f"the lock released, the same {len(bodies)} callbacks re-sent were answered 200 "
        f"({sum(a.stored == 'stored' for a in resent.values())} stored, "
        f"{sum(a.stored == 'duplicate' for a in resent.values())} found stored by a store that outlived "
        "its 503)",
    )
    report.check(
        all(answer.stored == "duplicate" for answer in again) and slots == list(range(1, len(bodies) + 1)),
        f"each stored exactly once: Postgres holds {len(slots)} rows for the {len(bodies)} callbacks, "
        "and sending them a third time stores nothing (duplicate)",
    )


def slowest_requests(deployment: Deployment) -> str:
    """The api-server's slowest requests, from its access log (how long the app took, in seconds)."""
    log = (deployment.run / "logs" / "api-server.log").read_text(errors="replace")
    found = re.findall(r"duration_us=(\d+) .*? path=(\S+)", log)
    times = sorted(((int(us) / 1e6, path.split("/")[1]) for us, path in found), reverse=True)
    over = sum(seconds > 10 for seconds, _ in times)
    slowest = ", ".join(f"{seconds:.1f} s ({where})" for seconds, where in times[:3])
    return f"api-server: {len(times)} requests, {over} over 10 s; the slowest {slowest}"
