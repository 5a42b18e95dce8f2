"""The results receiver through a real ``airflow api-server`` with the plugin, into SQLite.

One api-server per module (per xdist worker that runs any of these tests), started from the
worker's migrated AIRFLOW_HOME with a signing key and a SQLite results connection. What it proves:
every accepted body format is stored; forged (another key, a flipped character, truncated) and
expired tokens are refused with nothing stored; a replayed delivery is stored once; a burst of
10,000 callbacks loses nothing and stores nothing twice; and nothing the server prints — its access
log included — holds a token or a phone number (checked by a test, and again over the whole output
when the server stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from airflow_provider_fuse.results.receiver import BODY_TIMEOUT, STORE_THREADS, STORE_TIMEOUT
from airflow_provider_fuse.results.tokens import UploadPart, new_campaign, sign
from tests.e2e.api_server import ApiServer, Post, free_port, post_many
from tests.e2e.conftest import AirflowEnv
from tests.helpers import MASKED_FUSE_PATHS, logged_fuse_paths
from tests.results.outcomes import signed_token

pytestmark = pytest.mark.e2e

KEY = secrets.token_hex(32)
BURST = 10_000
BURST_PARTS = 10
BURST_CONCURRENCY = 48
# Numbers sent in this module: 617 and a 7-digit local number starting 2-9 (valid NANP numbers).
_numbers = itertools.count(2_000_000)
NUMBER = re.compile(r"617[2-9]\d{6}")


class Receiver:
    """The running api-server, what this module sent it, and the results database."""

    def __init__(self, server: ApiServer, database: Path) -> None:
        self.server = server
        self.database = database
        self.tokens: list[str] = []
        self.numbers: set[str] = set()
        self._runs = itertools.count()
        self.campaign = new_campaign()

    def run_id(self, name: str) -> str:
        return f"{name}__{next(self._runs)}"

    def token(
        self, run_id: str, *, part: int = 0, rows: int = 100, expires: int | None = None, key: str = KEY
    ) -> str:
        upload = UploadPart(
            dag_id="campaign",
            run_id=run_id,
            task_id="queue_calls",
            map_index=-1,
            campaign=self.campaign,
            part=part,
            rows=rows,
            expires=int(time.time()) + 3600 if expires is None else expires,
        )
        token = sign(upload, key)
        self.tokens.append(token)
        return token

    def number(self) -> str:
        number = f"617{next(_numbers):07d}"
        self.numbers.add(number)
        return number

    def post(self, token: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(f"{self.server.url}/fuse/results/{token}", timeout=30, **kwargs)

    def rows(self, run_id: str) -> list[dict[str, Any]]:
        with sqlite3.connect(self.database) as db:
            db.row_factory = sqlite3.Row
            try:
                found = db.execute("SELECT * FROM fuse_call_results WHERE run_id = ?", (run_id,)).fetchall()
            except sqlite3.OperationalError:  # the receiver has not created the table yet
                return []
        return [dict(row) for row in found]

    def leaks(self) -> list[str]:
        """What of the tokens and numbers sent appears in the server's output (empty: nothing)."""
        output = self.server.output()
        found = [f"token #{index}" for index, token in enumerate(self.tokens) if token and token in output]
        found += [
            f"token #{index} signature"
            for index, token in enumerate(self.tokens)
            if token.split(".")[-1] in output
        ]
        found += [f"number {number}" for number in set(NUMBER.findall(output)) & self.numbers]
        return found


@pytest.fixture(scope="module")
def receiver(airflow_env: AirflowEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    database = tmp_path_factory.mktemp("fuse-results") / "results.db"
    # WAL, as docs/results.md advises for a SQLite results database (a commit is about three times
    # cheaper); the receiver creates the table in it.
    with sqlite3.connect(database) as db:
        db.execute("PRAGMA journal_mode=WAL")
    env = {
        **airflow_env.env,
        "AIRFLOW__FUSE__RESULTS_SIGNING_KEY": KEY,
        "AIRFLOW_CONN_FUSE_RESULTS_DEFAULT": f"sqlite://{database}",
        # Each line reaches the captured output when it is written.
        "PYTHONUNBUFFERED": "1",
    }
    server = ApiServer(env, workers=1)
    running = Receiver(server, database)
    try:
        server.start()
        yield running
    finally:
        server.stop()
        leaks = running.leaks()
        output = server.output()
        server.close()
    assert not leaks, f"the api-server's output holds {leaks}:\n{output[-3000:]}"


def details(number: str, status: str = "completed", attempts: int = 1) -> dict[str, Any]:
    """call_details as the documented sample has them: numbers as strings, the number quoted."""
    now = int(time.time())
    return {
        "status": status,
        "attempts": str(attempts),
        "max_attempts": "3",
        "reattempt_wait": "60",
        "queued_timestamp": str(now - 90),
        "start_timestamp": str(now - 60),
        "end_timestamp": str(now),
        "duration": "31" if status == "completed" else "",
        "events": [{"event": "queued", "timestamp": str(now - 90)}, {"event": status, "timestamp": str(now)}],
        "phone_number": f"'{number}'",
    }


def xml(fields: dict[str, Any]) -> str:
    scalars = "".join(f"<{name}>{value}</{name}>" for name, value in fields.items() if name != "events")
    events = "".join(
        f"<event><event>{item['event']}</event><timestamp>{item['timestamp']}</timestamp></event>"
        for item in fields["events"]
    )
    return f"<call_details>{scalars}<events>{events}</events></call_details>"


def form_fields(fields: dict[str, Any], prefix: str | None = None) -> list[tuple[str, str]]:
    def name(key: str) -> str:
        return f"{prefix}[{key}]" if prefix else key

    pairs = [(name(key), str(value)) for key, value in fields.items() if key != "events"]
    return [*pairs, (name("events"), json.dumps(fields["events"]))]


def bodies(receiver: Receiver) -> list[tuple[str, str, dict[str, Any]]]:
    """(format, number, what to send with httpx.post) for every accepted format, each its own call."""
    formats: list[tuple[str, str, dict[str, Any]]] = []

    def add(name: str, make: Any) -> None:
        number = receiver.number()
        formats.append((name, number, make(details(number, status=random.choice(["completed", "failed"])))))

    add("json call_details", lambda d: {"json": {"call_details": d}})
    add(
        "json bare, native numbers",
        lambda d: {"json": {**d, "attempts": 1, "phone_number": d["phone_number"].strip("'")}},
    )
    add("json, no content type", lambda d: {"content": json.dumps({"call_details": d}).encode()})
    add(
        "xml result",
        lambda d: {"content": f"<result>{xml(d)}</result>", "headers": {"content-type": "application/xml"}},
    )
    add(
        "xml call_details root",
        lambda d: {"content": xml(d), "headers": {"content-type": "text/xml; charset=utf-8"}},
    )
    add("form fields", lambda d: {"data": dict(form_fields(d))})
    add("form call_details json", lambda d: {"data": {"call_details": json.dumps(d)}})
    add(
        "form call_details[...]",
        lambda d: {
            "content": urlencode(form_fields(d, "call_details")),
            "headers": {"content-type": "application/x-www-form-urlencoded"},
        },
    )
    add("multipart fields", lambda d: {"files": {key: (None, value) for key, value in form_fields(d)}})
    add(
        "multipart call_details xml",
        lambda d: {"files": {"call_details": (None, f"<result>{xml(d)}</result>")}},
    )
    return formats


def test_every_accepted_body_format_is_stored(receiver: Receiver) -> None:
    run_id = receiver.run_id("formats")
    token = receiver.token(run_id)
    sent = bodies(receiver)

    answers = {name: receiver.post(token, **request) for name, _, request in sent}

    assert {name: (a.status_code, a.json()) for name, a in answers.items()} == {
        name: (200, {"stored": "stored"}) for name, _, _ in sent
    }
    stored = {row["destination_number"]: row for row in receiver.rows(run_id)}
    assert set(stored) == {f"+1{number}" for _, number, _ in sent}
    for _, number, _ in sent:
        row = stored[f"+1{number}"]
        assert row["destination"] == number
        assert row["attempts"] == 1
        assert row["max_attempts"] == 3
        assert [event["event"] for event in json.loads(row["events"])] == ["queued", row["status"]]


def flip(token: str) -> str:
    index = len(token) // 2
    return token[:index] + ("A" if token[index] != "A" else "B") + token[index + 1 :]


def test_forged_tokens_are_refused_and_nothing_is_stored(receiver: Receiver) -> None:
    run_id = receiver.run_id("forged")
    genuine = receiver.token(run_id)
    forged = {
        "another key": receiver.token(run_id, key=secrets.token_hex(32)),
        "a flipped character": flip(genuine),
        "truncated": genuine[:-4],
        "payload only": genuine.split(".")[0],
    }
    receiver.tokens.extend(forged.values())

    answers = {
        kind: receiver.post(token, json={"call_details": details(receiver.number())}).status_code
        for kind, token in forged.items()
    }

    assert answers == dict.fromkeys(forged, 403)
    assert receiver.rows(run_id) == []


def test_a_token_past_its_run_expiry_is_refused(receiver: Receiver) -> None:
    run_id = receiver.run_id("expired")
    expired = receiver.token(run_id, expires=int(time.time()) - 60)

    answer = receiver.post(expired, json={"call_details": details(receiver.number())})

    assert answer.status_code == 403
    assert receiver.rows(run_id) == []


def test_a_replayed_delivery_is_stored_once(receiver: Receiver) -> None:
    run_id = receiver.run_id("replayed")
    token = receiver.token(run_id)
    body = {"call_details": details(receiver.number())}

    answers = [receiver.post(token, json=body).json() for _ in range(3)]

    assert answers == [{"stored": "stored"}, {"stored": "duplicate"}, {"stored": "duplicate"}]
    assert len(receiver.rows(run_id)) == 1


def test_nothing_the_server_prints_holds_a_token_or_a_number(receiver: Receiver) -> None:
    run_id = receiver.run_id("logs")
    token = receiver.token(run_id, rows=1)
    expired = receiver.token(run_id, expires=int(time.time()) - 60)
    body = {"call_details": details(receiver.number())}
    requests = [
        ("POST", token, {"json": body}, 200),
        ("POST", token, {"json": body}, 200),  # duplicate
        ("POST", token, {"json": {"call_details": details(receiver.number())}}, 409),  # the part is full
        ("POST", flip(token), {"json": body}, 403),
        ("POST", expired, {"json": body}, 403),
        ("POST", token, {"content": b"<result>", "headers": {"content-type": "application/xml"}}, 400),
        (
            "POST",
            token,
            {"content": b"x" * (65 * 1024), "headers": {"content-type": "application/json"}},
            413,
        ),
        ("GET", token, {}, 405),
        ("POST", token + "/extra", {"json": body}, 403),
    ]
    receiver.tokens.append(flip(token))
    before = len(access_lines(receiver.server.output()))

    statuses = [
        httpx.request(method, f"{receiver.server.url}/fuse/results/{tok}", timeout=30, **kwargs).status_code
        for method, tok, kwargs, _ in requests
    ]
    assert httpx.post(f"{receiver.server.url}/fuse/result/{token}", timeout=30).status_code == 404

    assert statuses == [status for *_, status in requests]
    output = wait_for_access_lines(receiver.server, before + len(requests) + 1)
    assert receiver.leaks() == []
    assert "Refused a call outcome" in output


def access_lines(output: str) -> list[str]:
    """The access log's lines for requests below /fuse: Airflow's own (3.2+), or uvicorn's (3.1)."""
    return [
        line
        for line in output.splitlines()
        if ("request finished" in line and "path=/fuse/" in line) or re.search(r'"(GET|POST) /fuse/', line)
    ]


def wait_for_access_lines(server: ApiServer, count: int, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while True:
        output = server.output()
        lines = access_lines(output)
        if len(lines) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    masked = [line for line in lines if set(logged_fuse_paths(line)) <= MASKED_FUSE_PATHS]
    assert len(lines) >= count, output[-3000:]
    assert masked == lines
    return output


def test_a_burst_of_10000_callbacks_loses_nothing_and_stores_nothing_twice(receiver: Receiver) -> None:
    run_id = receiver.run_id("burst")
    rows_per_part = BURST // BURST_PARTS
    tokens = [receiver.token(run_id, part=part, rows=rows_per_part) for part in range(BURST_PARTS)]
    posts = [
        Post(
            f"/fuse/results/{tokens[index // rows_per_part]}",
            json.dumps({"call_details": details(receiver.number(), attempts=1 + index % 3)}).encode(),
        )
        for index in range(BURST)
    ]

    answers = post_many(receiver.server.url, posts, concurrency=BURST_CONCURRENCY)

    assert [(answer.status, answer.body) for answer in answers] == [(200, b'{"stored":"stored"}')] * BURST
    with sqlite3.connect(receiver.database) as db:
        count, keys, numbers = db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT delivery_key), COUNT(DISTINCT destination) "
            "FROM fuse_call_results WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        by_part = dict(
            db.execute(
                "SELECT part, COUNT(*) FROM fuse_call_results WHERE run_id = ? GROUP BY part", (run_id,)
            ).fetchall()
        )
    assert (count, keys, numbers) == (BURST, BURST, BURST)
    assert by_part == dict.fromkeys(range(BURST_PARTS), rows_per_part)

    replayed = post_many(receiver.server.url, random.sample(posts, 1000), concurrency=BURST_CONCURRENCY)
    one_more = Post(posts[0].path, json.dumps({"call_details": details(receiver.number())}).encode())
    [refused] = post_many(receiver.server.url, [one_more])

    assert [(answer.status, answer.body) for answer in replayed] == [(200, b'{"stored":"duplicate"}')] * 1000
    assert refused.status == 409
    assert len(receiver.rows(run_id)) == BURST


# --- Every wait is bounded (issue 18, items 8 and 9) ------------------------------------------------

#: What the tests allow beyond the receiver's bound (STORE_TIMEOUT, BODY_TIMEOUT): the server's own
#: scheduling on a small, shared machine.
SLACK = 4.0


async def _timed_posts(url: str, requests: list[tuple[str, dict[str, Any]]]) -> list[tuple[int, float]]:
    """POST them all at once; (status, seconds to the answer) of each."""
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=len(requests))) as client:

        async def one(token: str, body: dict[str, Any]) -> tuple[int, float]:
            started = time.monotonic()
            answer = await client.post(f"{url}/fuse/results/{token}", json=body)
            return answer.status_code, time.monotonic() - started

        return await asyncio.gather(*(one(token, body) for token, body in requests))


def test_a_held_sqlite_write_lock_is_answered_503_within_the_bound(receiver: Receiver) -> None:
    run_id = receiver.run_id("locked")
    token = receiver.token(run_id)
    bodies = [{"call_details": details(receiver.number())} for _ in range(2 * STORE_THREADS)]
    holder = sqlite3.connect(receiver.database, timeout=0, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, held as long as this test needs
    try:
        answers = asyncio.run(_timed_posts(receiver.server.url, [(token, body) for body in bodies]))
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    took = sorted(seconds for _, seconds in answers)
    print(f"\nSQLite write lock held: {len(answers)} callbacks answered {[s for s, _ in answers]} in {took}")
    assert {status for status, _ in answers} == {503}
    assert took[-1] < STORE_TIMEOUT + SLACK
    # The lock gone, the sender's retries are stored (or found stored by a thread that outlived its
    # request), each once.
    deadline = time.monotonic() + 30
    while True:
        retried = [receiver.post(token, json=body).status_code for body in bodies]
        if retried == [200] * len(bodies) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert retried == [200] * len(bodies)
    assert len(receiver.rows(run_id)) == len(bodies)


def test_a_body_that_stalls_is_dropped_within_the_bound(receiver: Receiver) -> None:
    token = receiver.token(receiver.run_id("stalled"))
    host, port = receiver.server.url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=BODY_TIMEOUT + 30) as sock:
        sock.sendall(
            f"POST /fuse/results/{token} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            "Content-Length: 200\r\n\r\n".encode()
            + b'{"call_'  # 7 bytes, then nothing
        )
        received = b""
        while chunk := sock.recv(65536):  # until the server closes the connection
            received += chunk
    took = time.monotonic() - started

    print(f"\nA body stalled after 7 bytes: answered and closed after {took:.1f} s")
    assert received.startswith(b"HTTP/1.1 408 ")
    assert took < BODY_TIMEOUT + SLACK


# --- Refused for good, never quoted, never flooding the log (items 12, 14, 15) ----------------------


@pytest.mark.parametrize("character", ["\u0000", "\ud800"], ids=["NUL", "lone surrogate"])
def test_a_number_no_database_stores_is_refused_with_400(receiver: Receiver, character: str) -> None:
    run_id = receiver.run_id("unstorable")
    number = receiver.number()
    body = {"call_details": {**details(number), "phone_number": f"'{number[:3]}{character}{number[3:]}'"}}

    answer = receiver.post(
        receiver.token(run_id),
        content=json.dumps(body).encode(),  # ASCII: \u0000, \ud800
        headers={"content-type": "application/json"},
    )

    assert answer.status_code == 400
    assert "retry-after" not in answer.headers
    assert receiver.rows(run_id) == []


def test_a_form_field_named_with_a_number_is_never_quoted(receiver: Receiver) -> None:
    number = receiver.number()
    body = urlencode([("status", "completed"), (number, "1"), (number, "2")])

    answer = receiver.post(
        receiver.token(receiver.run_id("quoted")),
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )

    assert answer.status_code == 400
    assert number not in answer.text
    assert "given twice" in answer.text


def test_a_flood_for_a_full_part_logs_a_bounded_number_of_lines(receiver: Receiver) -> None:
    run_id = receiver.run_id("full")
    token = receiver.token(run_id, rows=1)
    assert receiver.post(token, json={"call_details": details(receiver.number())}).status_code == 200
    before = receiver.server.output().count("already holds as many outcomes")
    posts = [
        Post(f"/fuse/results/{token}", json.dumps({"call_details": details(receiver.number())}).encode())
        for _ in range(500)
    ]

    answers = post_many(receiver.server.url, posts, concurrency=16)

    assert {answer.status for answer in answers} == {409}
    time.sleep(1)  # the last lines reach the captured output
    assert 1 <= receiver.server.output().count("already holds as many outcomes") - before <= 3


def test_a_flood_against_an_unconfigured_receiver_logs_a_bounded_number_of_lines(
    airflow_env: AirflowEnv,
) -> None:
    env = {**airflow_env.env, "PYTHONUNBUFFERED": "1"}  # no [fuse] signing key
    server = ApiServer(env, workers=1)
    try:
        server.start()
        token = sign(
            UploadPart(
                dag_id="campaign",
                run_id="unconfigured",
                task_id="queue_calls",
                map_index=-1,
                campaign=new_campaign(),
                part=0,
                rows=10,
                expires=int(time.time()) + 3600,
            ),
            KEY,
        )
        posts = [Post(f"/fuse/results/{token}", b'{"call_details": {"status": "completed"}}')] * 500
        answers = post_many(server.url, posts, concurrency=16)
        time.sleep(1)
        output = server.output()
    finally:
        server.close()

    assert {answer.status for answer in answers} == {503}
    lines = [line for line in output.splitlines() if "cannot accept call outcomes" in line]
    assert 1 <= len(lines) <= 3, lines
    assert token not in output


# --- A real Postgres, locked and frozen (item 8) ----------------------------------------------------

POSTGRES_BINARIES = Path("/usr/lib/postgresql/15/bin")


@dataclass
class Postgres:
    """A throwaway Postgres cluster on loopback: its URI and its data directory."""

    uri: str
    data: Path

    def processes(self) -> list[int]:
        """The postmaster and its children (the backends, the checkpointer, ...)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
        return [postmaster, *map(int, children)]


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    """As tests/results/test_table.py's fixture (as the postgres user when root: Postgres refuses
    root), with the data directory known, to freeze the cluster."""
    if not (POSTGRES_BINARIES / "initdb").exists():
        pytest.skip("Postgres binaries (initdb, pg_ctl) are not installed")
    pytest.importorskip("airflow.providers.postgres.hooks.postgres")
    user = "postgres" if os.geteuid() == 0 else None
    home = Path(tempfile.mkdtemp(prefix="fuse-e2e-postgres-"))
    if user:
        shutil.chown(home, user, user)
    data = home / "data"
    run = functools.partial(subprocess.run, user=user, group=user, capture_output=True, timeout=120)
    run([POSTGRES_BINARIES / "initdb", "-D", data, "-U", "fuse", "-A", "trust", "--no-sync"], check=True)
    port = free_port()
    options = f"-h 127.0.0.1 -p {port} -k {home} -c fsync=off"
    run(
        [POSTGRES_BINARIES / "pg_ctl", "-D", data, "-o", options, "-l", home / "log", "-w", "start"],
        check=True,
    )
    try:
        yield Postgres(f"postgres://fuse@127.0.0.1:{port}/postgres", data)
    finally:
        run([POSTGRES_BINARIES / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"])
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_receiver(airflow_env: AirflowEnv, postgres: Postgres) -> Iterator[ApiServer]:
    env = {
        **airflow_env.env,
        "AIRFLOW__FUSE__RESULTS_SIGNING_KEY": KEY,
        "AIRFLOW_CONN_FUSE_RESULTS_DEFAULT": postgres.uri,
        "PYTHONUNBUFFERED": "1",
    }
    server = ApiServer(env, workers=1)
    try:
        server.start()
        yield server
    finally:
        server.close()


def _postgres_part(run_id: str) -> str:
    return signed_token(KEY, run_id=run_id, rows=100, lifetime=3600)


def _outcomes(count: int, first: int) -> list[dict[str, Any]]:
    return [{"call_details": details(f"617{first + index:07d}")} for index in range(count)]


def test_a_postgres_table_lock_is_answered_503_within_the_bound(
    postgres: Postgres, postgres_receiver: ApiServer
) -> None:
    import psycopg2

    token = _postgres_part("pg_locked")
    [first, *bodies] = _outcomes(1 + 2 * STORE_THREADS, 3_000_000)
    assert (
        httpx.post(f"{postgres_receiver.url}/fuse/results/{token}", json=first, timeout=30).status_code == 200
    )
    locker = psycopg2.connect(postgres.uri)
    try:
        with locker.cursor() as cursor:
            cursor.execute("LOCK TABLE fuse_call_results IN ACCESS EXCLUSIVE MODE")
            answers = asyncio.run(_timed_posts(postgres_receiver.url, [(token, body) for body in bodies]))
        locker.rollback()
    finally:
        locker.close()

    took = sorted(seconds for _, seconds in answers)
    print(f"\nPostgres LOCK TABLE: {len(answers)} callbacks answered {[s for s, _ in answers]} in {took}")
    assert {status for status, _ in answers} == {503}
    assert took[-1] < STORE_TIMEOUT + SLACK


def test_a_frozen_postgres_is_answered_503_within_the_bound(
    postgres: Postgres, postgres_receiver: ApiServer
) -> None:
    token = _postgres_part("pg_frozen")
    [first, *bodies] = _outcomes(1 + 2 * STORE_THREADS, 4_000_000)
    assert (
        httpx.post(f"{postgres_receiver.url}/fuse/results/{token}", json=first, timeout=30).status_code == 200
    )
    frozen = postgres.processes()
    try:
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        answers = asyncio.run(_timed_posts(postgres_receiver.url, [(token, body) for body in bodies]))
        # Every store thread may be stuck now: a later callback is answered at once.
        [(later, later_took)] = asyncio.run(_timed_posts(postgres_receiver.url, [(token, bodies[0])]))
    finally:
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    took = sorted(seconds for _, seconds in answers)
    print(
        f"\nPostgres frozen (SIGSTOP): {len(answers)} callbacks answered {[s for s, _ in answers]} in "
        f"{took}; one more: {later} in {later_took:.2f} s"
    )
    assert {status for status, _ in answers} == {503}
    assert took[-1] < STORE_TIMEOUT + SLACK
    assert later == 503
    assert later_took < STORE_TIMEOUT + SLACK
    # Thawed: the retries are stored, each once, within a bounded time.
    deadline = time.monotonic() + 60
    while True:
        retried = [
            httpx.post(f"{postgres_receiver.url}/fuse/results/{token}", json=body, timeout=30).status_code
            for body in bodies
        ]
        if retried == [200] * len(bodies) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert retried == [200] * len(bodies)
