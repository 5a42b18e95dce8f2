"""ResultsTable: outcomes stored once each, through a real SQLite file behind an Airflow connection
(and a throwaway Postgres when its binaries and driver are here)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_fuse.calls import CallDetails, CallEvent, CallStatus
from airflow_provider_fuse.results.config import ResultsConfigError
from airflow_provider_fuse.results.table import (
    COLUMNS,
    CONNECT_TIMEOUT_SECONDS,
    DATABASE_WAIT_SECONDS,
    PART_COLUMNS,
    SQLITE_BUSY_TIMEOUT_MS,
    WATCHDOG_GRACE_SECONDS,
    ResultsStoreError,
    ResultsTable,
    Stored,
    canonical_destination,
    delivery_key,
)
from airflow_provider_fuse.results.tokens import UploadPart
from harness import free_port

PHONE = "6173720293"
CONN_ID = "fuse_results_test"
TABLE = "fuse_call_results"
CAMPAIGN = "c0ffee00c0ffee00c0ffee00c0ffee00"
CAMPAIGNS = (CAMPAIGN,)


def a_part(rows: int = 3, **fields: object) -> UploadPart:
    values: dict[str, object] = {
        "dag_id": "campaign",
        "run_id": "manual__1",
        "task_id": "bulk_queue",
        "map_index": -1,
        "campaign": CAMPAIGN,
        "part": 0,
        "rows": rows,
        # Expiry plays no part in storing: derived from the clock all the same.
        "expires": int(time.time()) + 86400,
    }
    values.update(fields)
    return UploadPart(**values)  # type: ignore[arg-type]


def an_outcome(phone: str = PHONE, status: str = "completed", **fields: object) -> CallDetails:
    values: dict[str, object] = {
        "status": CallStatus(status),
        "attempts": 1,
        "max_attempts": 3,
        "reattempt_wait": 300,
        "queued_timestamp": 1430769441,
        "start_timestamp": 1430769441,
        "end_timestamp": 1430769476,
        "duration": 35,
        "events": (CallEvent("queued", 1430769441), CallEvent(CallStatus(status).value, 1430769476)),
        "phone_number": phone,
    }
    values.update(fields)
    return CallDetails(**values)  # type: ignore[arg-type]


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SQLite file behind the connection CONN_ID (``sqlite://`` and the absolute path)."""
    path = tmp_path / "results.db"
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", f"sqlite://{path}")
    return path


@pytest.fixture
def table(database: Path):
    table = ResultsTable(CONN_ID, TABLE)
    yield table
    table.close()


def rows_in(path: Path, table: str = TABLE) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return connection.execute(f"SELECT * FROM {table} ORDER BY delivery_key").fetchall()


def in_threads(worker: Callable[[int], object], count: int, timeout: float | None = None) -> None:
    """Run ``worker(0)`` to ``worker(count - 1)`` at once, each in a thread of its own; return when
    each has ended, or has had ``timeout`` seconds to."""
    threads = [threading.Thread(target=worker, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)


# --- The table --------------------------------------------------------------------------------------


def test_ensure_creates_the_table_with_the_documented_columns(table, database):
    table.ensure()
    with contextlib.closing(sqlite3.connect(database)) as connection:
        columns = [row[1] for row in connection.execute(f"PRAGMA table_info({TABLE})")]
        unique = [
            tuple(column[2] for column in connection.execute(f"PRAGMA index_info({row[1]})"))
            for row in connection.execute(f"PRAGMA index_list({TABLE})")
            if row[2]
        ]
    assert tuple(columns) == COLUMNS
    # The per-part bound and the index of every read: no two outcomes of a part share a slot.
    assert (*PART_COLUMNS, "slot") in unique
    assert PART_COLUMNS[:4] == ("dag_id", "run_id", "task_id", "campaign_id")


def test_ensure_is_idempotent_across_instances(database):
    for _ in range(2):
        table = ResultsTable(CONN_ID, TABLE)
        table.ensure()
        table.ensure()
        table.close()
    assert rows_in(database) == []


def test_a_new_sqlite_results_database_is_switched_to_wal(table, database):
    table.ensure()
    with contextlib.closing(sqlite3.connect(database)) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_sqlite_database_that_already_holds_tables_keeps_its_journal_mode(database):
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.execute("CREATE TABLE contacts (destination TEXT)")
        connection.commit()
    table = ResultsTable(CONN_ID, TABLE)
    try:
        table.ensure()
    finally:
        table.close()
    with contextlib.closing(sqlite3.connect(database)) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)


def test_ensure_keeps_the_rows_of_an_existing_table(table, database):
    table.store(a_part(), an_outcome(), received=time.time())
    again = ResultsTable(CONN_ID, TABLE)
    again.ensure()
    assert len(rows_in(database)) == 1
    again.close()


def test_a_schema_qualified_name_works_on_sqlite(table, database):
    qualified = ResultsTable(CONN_ID, "main.outcomes")
    assert qualified.store(a_part(), an_outcome(), received=time.time()) is Stored.STORED
    assert len(rows_in(database, "outcomes")) == 1
    qualified.close()


@pytest.mark.parametrize("name", ["results; DROP TABLE x", "a.b.c", "1table", "", "naïve"])
def test_a_table_name_that_is_not_an_identifier_is_refused(name):
    with pytest.raises(ResultsConfigError):
        ResultsTable(CONN_ID, name)


# --- Storing ----------------------------------------------------------------------------------------


def test_an_outcome_is_stored_with_every_column(table, database):
    received = time.time()
    assert table.store(a_part(), an_outcome(phone=f"1{PHONE}"), received=received) is Stored.STORED
    (row,) = table.rows("campaign", "manual__1", "bulk_queue", CAMPAIGNS)
    assert row == {
        "delivery_key": delivery_key(a_part(), an_outcome(phone=f"1{PHONE}")),
        "dag_id": "campaign",
        "run_id": "manual__1",
        "task_id": "bulk_queue",
        "map_index": -1,
        "campaign_id": CAMPAIGN,
        "part": 0,
        "slot": 1,
        "destination": f"1{PHONE}",
        "destination_number": f"+1{PHONE}",
        "status": "completed",
        "attempts": 1,
        "max_attempts": 3,
        "reattempt_wait": 300,
        "queued_timestamp": 1430769441,
        "start_timestamp": 1430769441,
        "end_timestamp": 1430769476,
        "duration": 35,
        "events": [
            {"event": "queued", "timestamp": 1430769441},
            {"event": "completed", "timestamp": 1430769476},
        ],
        "received_timestamp": pytest.approx(received),
    }


def test_a_repeated_delivery_is_a_duplicate_and_stored_once(table, database):
    assert table.store(a_part(), an_outcome(), received=time.time()) is Stored.STORED
    assert table.store(a_part(), an_outcome(), received=time.time() + 5) is Stored.DUPLICATE
    assert len(rows_in(database)) == 1


def test_a_repeat_written_another_way_is_the_same_delivery(table, database):
    # 6173720293, 16173720293 and tel:+16173720293 are one number; "Cancelled" is canceled.
    table.store(a_part(), an_outcome(phone=PHONE, status="canceled"), received=time.time())
    for phone in (f"1{PHONE}", f"tel:+1{PHONE}"):
        outcome = an_outcome(phone=phone, status="Cancelled")
        assert table.store(a_part(), outcome, received=time.time()) is Stored.DUPLICATE
    assert len(rows_in(database)) == 1


def test_one_number_dialed_twice_with_different_outcomes_is_two_rows(table, database):
    first = an_outcome(status="failed", queued_timestamp=1000)
    second = an_outcome(status="completed", queued_timestamp=2000)
    assert table.store(a_part(), first, received=time.time()) is Stored.STORED
    assert table.store(a_part(), second, received=time.time()) is Stored.STORED
    assert len(rows_in(database)) == 2


def test_one_number_dialed_twice_with_identical_outcomes_is_one_row(table, database):
    # The documented limit: Fuse sends no call id, so identical outcomes cannot be told apart.
    assert table.store(a_part(), an_outcome(), received=time.time()) is Stored.STORED
    assert table.store(a_part(), an_outcome(), received=time.time() + 60) is Stored.DUPLICATE
    assert len(rows_in(database)) == 1


def test_the_same_outcome_in_two_parts_or_runs_is_two_rows(table, database):
    for part in (a_part(), a_part(part=1), a_part(map_index=0), a_part(run_id="manual__2")):
        assert table.store(part, an_outcome(), received=time.time()) is Stored.STORED
    assert len(rows_in(database)) == 4


def test_a_part_is_full_after_as_many_outcomes_as_it_sent_calls(table, database):
    part = a_part(rows=2)
    assert table.store(part, an_outcome(phone="6175550001"), received=time.time()) is Stored.STORED
    assert table.store(part, an_outcome(phone="6175550002"), received=time.time()) is Stored.STORED
    assert table.store(part, an_outcome(phone="6175550003"), received=time.time()) is Stored.FULL
    assert len(rows_in(database)) == 2


def test_a_store_reads_one_index_entry_of_its_part_and_never_counts_it(table, database):
    # A count costs in proportion to the part (6 ms a store late in a 100,000-row part on SQLite):
    # a store reads the part's highest slot instead, one entry of the unique index.
    part = a_part(rows=2000)
    statements: list[str] = []
    for number in range(2000):
        assert table.store(part, an_outcome(phone=f"617555{number:04d}"), received=time.time()) is (
            Stored.STORED
        )
        if number == 0:
            table._connection().set_trace_callback(statements.append)
    assert table.store(part, an_outcome(phone="6175559999"), received=time.time()) is Stored.FULL
    assert len(rows_in(database)) == 2000
    assert not [statement for statement in statements if "COUNT(" in statement.upper()]
    with contextlib.closing(sqlite3.connect(database)) as connection:
        slots = [row[0] for row in connection.execute(f"SELECT slot FROM {TABLE} ORDER BY slot")]
        (plan,) = {
            row[3]
            for row in connection.execute(
                f"EXPLAIN QUERY PLAN SELECT slot FROM {TABLE} WHERE "
                + " AND ".join(f"{column} = ?" for column in PART_COLUMNS)
                + " ORDER BY slot DESC LIMIT 1",
                ("campaign", "manual__1", "bulk_queue", CAMPAIGN, -1, 0),
            )
        }
    assert slots == list(range(1, 2001))
    assert "USING COVERING INDEX" in plan


def test_two_processes_storing_for_one_part_do_not_overfill_it(database):
    # Two table objects stand for two api-server workers: each sees only its own stores between
    # counts, and each stores at most a quarter of the room its last count left.
    part = a_part(rows=100)
    first, second = ResultsTable(CONN_ID, TABLE), ResultsTable(CONN_ID, TABLE)
    answers = []
    try:
        for number in range(150):
            writer = first if number % 2 else second
            answers.append(writer.store(part, an_outcome(phone=f"617555{number:04d}"), received=time.time()))
    finally:
        first.close()
        second.close()
    assert answers.count(Stored.STORED) == 100
    assert len(rows_in(database)) == 100


def test_a_repeat_into_a_full_part_is_a_duplicate_not_full(table):
    part = a_part(rows=1)
    table.store(part, an_outcome(), received=time.time())
    assert table.store(part, an_outcome(), received=time.time()) is Stored.DUPLICATE


def test_other_parts_do_not_count_towards_a_part_being_full(table):
    table.store(a_part(rows=1, part=0), an_outcome(phone="6175550001"), received=time.time())
    assert table.store(a_part(rows=1, part=1), an_outcome(phone="6175550002"), received=time.time()) is (
        Stored.STORED
    )


def test_a_destination_outside_the_grammar_is_stored_without_a_number(table):
    table.store(a_part(), an_outcome(phone="+44 20 7946 0018"), received=time.time())
    table.store(a_part(), an_outcome(phone=None), received=time.time())
    rows = table.rows("campaign", "manual__1", "bulk_queue", CAMPAIGNS)
    assert sorted((row["destination"] or "", row["destination_number"]) for row in rows) == [
        ("", None),
        ("+44 20 7946 0018", None),
    ]


def test_an_outcome_is_committed_before_store_returns(table, database):
    table.store(a_part(), an_outcome(), received=time.time())
    # Another connection (another process, say) sees it at once.
    assert len(rows_in(database)) == 1


def test_concurrent_stores_lose_nothing_and_store_nothing_twice(database):
    threads, per_thread = 8, 500
    table = ResultsTable(CONN_ID, TABLE)
    table.ensure()
    part = a_part(rows=threads * per_thread)
    results: list[list[Stored]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            for number in range(per_thread):
                # Each outcome is delivered by two threads: one stores it, the other finds it there.
                outcome = an_outcome(phone=f"617{(index // 2) * per_thread + number:07d}")
                results[index].append(table.store(part, outcome, received=time.time()))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    in_threads(worker, threads)
    table.close()
    assert errors == []
    outcomes = [result for per in results for result in per]
    assert outcomes.count(Stored.STORED) == threads * per_thread // 2
    assert outcomes.count(Stored.DUPLICATE) == threads * per_thread // 2
    assert len(rows_in(database)) == threads * per_thread // 2


def test_concurrent_stores_never_overfill_a_part(database):
    table = ResultsTable(CONN_ID, TABLE)
    part = a_part(rows=50)
    stored: list[Stored] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        for number in range(25):
            result = table.store(part, an_outcome(phone=f"617{index:03d}{number:04d}"), received=time.time())
            with lock:
                stored.append(result)

    in_threads(worker, 8)
    table.close()
    assert stored.count(Stored.STORED) == 50
    assert stored.count(Stored.FULL) == 8 * 25 - 50
    assert len(rows_in(database)) == 50


def test_each_thread_reuses_one_connection(table, monkeypatch):
    table.ensure()  # opens this thread's connection
    opened: list[object] = []
    open_one = ResultsTable._open

    def recording(self, hook, **kwargs):
        opened.append(open_one(self, hook, **kwargs))
        return opened[-1]

    monkeypatch.setattr(ResultsTable, "_open", recording)
    for number in range(20):
        table.store(a_part(rows=100), an_outcome(phone=f"617555{number:04d}"), received=time.time())
    assert opened == []

    def another_thread() -> None:
        for number in range(20):
            table.store(a_part(rows=100), an_outcome(phone=f"617556{number:04d}"), received=time.time())

    thread = threading.Thread(target=another_thread)
    thread.start()
    thread.join()
    assert len(opened) == 1


def test_sqlite_connections_wait_for_a_busy_writer(table):
    table.ensure()
    (timeout,) = table._connection().execute("PRAGMA busy_timeout").fetchone()
    assert timeout >= 5000


def test_a_writer_holding_the_lock_briefly_is_waited_for(table, database):
    table.ensure()
    blocker = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    released = threading.Timer(0.5, lambda: blocker.execute("COMMIT"))
    released.start()
    try:
        assert table.store(a_part(), an_outcome(), received=time.time()) is Stored.STORED
    finally:
        released.join()
        blocker.close()


def test_close_then_store_reconnects(table, database):
    table.store(a_part(), an_outcome(phone="6175550001"), received=time.time())
    table.close()
    assert table.store(a_part(), an_outcome(phone="6175550002"), received=time.time()) is Stored.STORED
    assert len(rows_in(database)) == 2


# --- Reading ----------------------------------------------------------------------------------------


def test_summary_counts_every_map_index_and_part_of_the_task(table):
    outcomes = [
        (a_part(map_index=0), "completed"),
        (a_part(map_index=0, part=1), "completed"),
        (a_part(map_index=1), "failed"),
        (a_part(map_index=1), "canceled"),
        (a_part(map_index=2), "rejected"),
        (a_part(map_index=2), "voicemail"),
        (a_part(task_id="other_task"), "completed"),
        (a_part(run_id="manual__2"), "completed"),
    ]
    for number, (part, status) in enumerate(outcomes):
        table.store(part, an_outcome(phone=f"617555{number:04d}", status=status), received=time.time())
    summary = table.summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS)
    assert summary == {
        "completed": 2,
        "failed": 1,
        "canceled": 1,
        "rejected": 1,
        "other": 1,
        "received": 6,
    }
    assert PHONE not in json.dumps(summary)


def test_summary_of_a_task_with_no_outcomes_is_zeros(table):
    assert table.summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS) == dict.fromkeys(
        ("completed", "failed", "canceled", "rejected", "other", "received"), 0
    )


def test_rows_are_those_of_the_task_in_part_order(table):
    table.store(a_part(map_index=1), an_outcome(phone="6175550002"), received=time.time())
    table.store(a_part(map_index=0, part=1), an_outcome(phone="6175550001"), received=time.time())
    table.store(a_part(map_index=0), an_outcome(phone="6175550000"), received=time.time())
    table.store(a_part(task_id="other"), an_outcome(phone="6175550009"), received=time.time())
    rows = table.rows("campaign", "manual__1", "bulk_queue", CAMPAIGNS)
    assert [row["destination"] for row in rows] == ["6175550000", "6175550001", "6175550002"]


def test_a_run_id_used_again_is_another_campaign(table):
    # A run deleted and triggered again under the same run id dials a new list: its outcomes are
    # stored beside the first campaign's (even identical ones), and counted and read apart.
    first, second = a_part(rows=1), a_part(rows=1, campaign="5ec0nd00" * 4)
    assert table.store(first, an_outcome(status="failed"), received=time.time()) is Stored.STORED
    assert table.store(second, an_outcome(status="failed"), received=time.time()) is Stored.STORED
    assert table.store(second, an_outcome(phone="6175550001"), received=time.time()) is Stored.FULL
    assert table.summary("campaign", "manual__1", "bulk_queue", [second.campaign])["failed"] == 1
    assert table.summary("campaign", "manual__1", "bulk_queue", [first.campaign, second.campaign]) == {
        "completed": 0,
        "failed": 2,
        "canceled": 0,
        "rejected": 0,
        "other": 0,
        "received": 2,
    }
    (row,) = table.rows("campaign", "manual__1", "bulk_queue", {second.campaign})
    assert row["campaign_id"] == second.campaign


def test_no_campaigns_is_nothing_read(table):
    assert table.summary("campaign", "manual__1", "bulk_queue", []) == dict.fromkeys(
        ("completed", "failed", "canceled", "rejected", "other", "received"), 0
    )
    assert table.rows("campaign", "manual__1", "bulk_queue", ()) == []
    with pytest.raises(TypeError):
        table.summary("campaign", "manual__1", "bulk_queue", CAMPAIGN)


def test_many_campaigns_are_read_in_several_queries(table):
    # A task mapped over 1,200 lists has 1,200 campaigns: more than one query's placeholders.
    campaigns = [f"campaign{number:04d}" for number in range(1200)]
    for number in (0, 700, 1199):
        table.store(a_part(campaign=campaigns[number]), an_outcome(), received=time.time())
    assert table.summary("campaign", "manual__1", "bulk_queue", campaigns)["received"] == 3
    assert len(table.rows("campaign", "manual__1", "bulk_queue", campaigns)) == 3


def test_a_store_error_that_is_final_is_never_retryable():
    assert ResultsStoreError("x").retryable
    assert not ResultsStoreError("x").final
    final = ResultsStoreError("x", final=True)
    assert final.final
    assert not final.retryable


def test_a_reader_sees_outcomes_stored_after_its_last_read(database):
    writer, reader = ResultsTable(CONN_ID, TABLE), ResultsTable(CONN_ID, TABLE)
    assert reader.summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS)["received"] == 0
    writer.store(a_part(), an_outcome(), received=time.time())
    assert reader.summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS)["received"] == 1
    writer.close()
    reader.close()


# --- Failures ---------------------------------------------------------------------------------------


def assert_no_personal_data(error: BaseException) -> None:
    text = f"{error} {error!r} {error.__cause__!r} {error.__context__!r}"
    assert PHONE not in text
    assert "617" not in text


def test_a_missing_connection_is_a_store_error_naming_it(monkeypatch):
    monkeypatch.delenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", raising=False)
    table = ResultsTable(CONN_ID, TABLE)
    with pytest.raises(ResultsStoreError, match=CONN_ID) as caught:
        table.store(a_part(), an_outcome(), received=time.time())
    assert_no_personal_data(caught.value)
    # It says how to define one, naming the connection (issue 18), and trying again cannot help.
    message = str(caught.value)
    assert f"{CONN_ID!r} ([fuse] results_conn_id) is not defined" in message
    assert f"AIRFLOW_CONN_{CONN_ID.upper()}=" in message
    assert f"airflow connections add {CONN_ID}" in message
    assert not caught.value.retryable


def test_a_connection_that_is_not_a_sql_database_is_refused(monkeypatch):
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps({"conn_type": "fuse", "login": "ops@example.com", "password": "dk-secret-123456"}),
    )
    with pytest.raises(ResultsStoreError, match="not a SQL database") as caught:
        ResultsTable(CONN_ID, TABLE).ensure()
    assert "dk-secret-123456" not in str(caught.value)


def test_a_database_that_cannot_be_opened_is_a_store_error(monkeypatch, tmp_path):
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", f"sqlite://{tmp_path}/missing/dir/results.db")
    with pytest.raises(ResultsStoreError, match="cannot connect") as caught:
        ResultsTable(CONN_ID, TABLE).store(a_part(), an_outcome(), received=time.time())
    assert_no_personal_data(caught.value)


def test_a_failed_insert_names_no_value_and_the_next_store_reconnects(table, database):
    table.ensure()
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.execute(
            f"CREATE TRIGGER refuse BEFORE INSERT ON {TABLE} BEGIN SELECT RAISE(ABORT, 'no'); END"
        )
        connection.commit()
    with pytest.raises(ResultsStoreError, match="cannot store an outcome") as caught:
        table.store(a_part(), an_outcome(), received=time.time())
    assert_no_personal_data(caught.value)
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.execute("DROP TRIGGER refuse")
        connection.commit()
    assert table.store(a_part(), an_outcome(), received=time.time()) is Stored.STORED


def test_a_table_that_is_not_ours_is_a_store_error(table, database):
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.execute(f"CREATE TABLE {TABLE} (something TEXT)")
        connection.commit()
    with pytest.raises(ResultsStoreError) as caught:
        table.store(a_part(), an_outcome(), received=time.time())
    assert_no_personal_data(caught.value)


# --- Where connections come from -------------------------------------------------------------------

_STORE_ONE = """
import time
from airflow_provider_fuse.calls import CallDetails, CallStatus
from airflow_provider_fuse.results.table import ResultsStoreError, ResultsTable
from airflow_provider_fuse.results.tokens import UploadPart
table = ResultsTable("fuse_results_in_db", "fuse_call_results")
part = UploadPart("d", "r", "t", -1, "campaign1", 0, 5, int(time.time()) + 60)
try:
    print(table.store(part, CallDetails(status=CallStatus.COMPLETED), received=time.time()).value)
except ResultsStoreError as error:
    print(error)
"""


@pytest.mark.e2e  # real Airflow: its database migrated, a connection added with its CLI
def test_a_connection_stored_in_airflows_database_is_read_in_a_server_process(tmp_path):
    """The api-server marks itself a server process (``_AIRFLOW_PROCESS_CONTEXT=server``) before it
    imports anything, so the receiver reads connections from Airflow's database too; any other process
    outside a task (a standalone receiver) reads environment variables and secrets backends only."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW_CONN_", "_AIRFLOW"))
    }
    environment["AIRFLOW_HOME"] = str(tmp_path)
    airflow = str(Path(sys.executable).parent / "airflow")
    run = functools.partial(subprocess.run, env=environment, capture_output=True, text=True, timeout=300)
    assert run([airflow, "db", "migrate"]).returncode == 0
    added = run(
        [airflow, "connections", "add", "fuse_results_in_db", "--conn-uri", f"sqlite://{tmp_path}/r.db"]
    )
    assert added.returncode == 0, added.stderr[-2000:]

    server = run(
        [sys.executable, "-c", _STORE_ONE], env={**environment, "_AIRFLOW_PROCESS_CONTEXT": "server"}
    )
    assert server.stdout.strip().splitlines()[-1] == "stored", server.stderr[-2000:]
    elsewhere = run([sys.executable, "-c", _STORE_ONE])
    assert (
        "'fuse_results_in_db' ([fuse] results_conn_id) is not defined"
        in elsewhere.stdout.strip().splitlines()[-1]
    )


# --- Identity ---------------------------------------------------------------------------------------


def test_canonical_destination_is_plus_and_e164_digits():
    assert canonical_destination(PHONE) == f"+1{PHONE}"
    assert canonical_destination(f"1{PHONE}") == f"+1{PHONE}"
    assert canonical_destination(f"tel:+1{PHONE};ani=8009957586") == f"+1{PHONE}"
    assert canonical_destination("tel:+442079460018") == "+442079460018"
    assert canonical_destination(f" {PHONE} ") == f"+1{PHONE}"
    for value in ("", "617", f"+1{PHONE}", "hello", None, f"0{PHONE}"):
        assert canonical_destination(value) is None


IDENTITY_FIELDS = [
    "status",
    "attempts",
    "max_attempts",
    "reattempt_wait",
    "queued_timestamp",
    "start_timestamp",
    "end_timestamp",
    "duration",
    "events",
]


@st.composite
def outcomes(draw: st.DrawFn) -> tuple[UploadPart, CallDetails]:
    small = st.none() | st.integers(-2, 2)
    part = UploadPart(
        dag_id=draw(st.sampled_from(["a", "b"])),
        run_id=draw(st.sampled_from(["r", "r2"])),
        task_id=draw(st.sampled_from(["t", "t2"])),
        map_index=draw(st.integers(-1, 0)),
        campaign=draw(st.sampled_from(["campaign1", "campaign2"])),
        part=draw(st.integers(0, 1)),
        rows=draw(st.integers(1, 3)),
        expires=draw(st.integers(0, 3)),
    )
    details = CallDetails(
        status=CallStatus(draw(st.sampled_from(["completed", "failed"]))),
        attempts=draw(small),
        max_attempts=draw(small),
        reattempt_wait=draw(small),
        queued_timestamp=draw(small),
        start_timestamp=draw(small),
        end_timestamp=draw(small),
        duration=draw(small),
        events=tuple(
            CallEvent(name, stamp)
            for name, stamp in draw(st.lists(st.tuples(st.sampled_from(["q", "d"]), small), max_size=2))
        ),
        phone_number=draw(st.sampled_from([None, PHONE, f"1{PHONE}", "6175550000", "x"])),
        call_id=draw(st.none() | st.just("ignored")),
    )
    return part, details


def identity(part: UploadPart, details: CallDetails) -> tuple:
    destination = canonical_destination(details.phone_number) or details.phone_number
    return (
        part.dag_id,
        part.run_id,
        part.task_id,
        part.map_index,
        part.campaign,
        part.part,
        destination,
        *(getattr(details, name) for name in IDENTITY_FIELDS),
    )


@given(outcomes(), outcomes())
@settings(max_examples=500, deadline=None)
def test_the_delivery_key_is_equal_exactly_when_the_identity_is(first, second):
    assert (delivery_key(*first) == delivery_key(*second)) == (identity(*first) == identity(*second))


@given(outcomes())
@settings(deadline=None)
def test_the_delivery_key_ignores_rows_expiry_and_call_id(outcome):
    part, details = outcome
    other = dataclasses.replace(part, rows=part.rows + 7, expires=part.expires + 100)
    assert delivery_key(other, dataclasses.replace(details, call_id="x")) == delivery_key(part, details)


def test_the_delivery_key_tells_a_string_from_a_number():
    # A JSON-identity, not a string join: "1" and 1, "a,b" and ("a", "b") are never confused.
    assert delivery_key(a_part(dag_id="a,b"), an_outcome()) != delivery_key(a_part(dag_id="a"), an_outcome())
    assert len(delivery_key(a_part(), an_outcome())) == 64


# --- Postgres ---------------------------------------------------------------------------------------


def _postgres_binaries() -> Path | None:
    for candidate in [shutil.which("initdb"), *sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))]:
        if candidate and Path(candidate).exists():
            return Path(candidate).resolve().parent
    return None


def _unavailable(reason: str) -> None:
    """Skip a Postgres test where Postgres is not here; fail it where CI requires it
    (``FUSE_TEST_REQUIRE_POSTGRES=1``): a missing driver must not pass for a green run."""
    if os.environ.get("FUSE_TEST_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"FUSE_TEST_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


@dataclasses.dataclass
class PostgresCluster:
    """A throwaway Postgres cluster on loopback; ``uri`` connects as its superuser ``fuse``."""

    binaries: Path
    data: Path
    home: Path
    port: int
    user: str | None

    @property
    def uri(self) -> str:
        return self.uri_as("fuse")

    def uri_as(self, role: str) -> str:
        return f"postgres://{role}@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *arguments: object, check: bool = True) -> None:
        subprocess.run(
            [self.binaries / "pg_ctl", "-D", self.data, *arguments],
            user=self.user,
            group=self.user,
            capture_output=True,
            timeout=120,
            check=check,
        )

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.home} -c fsync=off"
        self._pg_ctl("-o", options, "-l", self.home / "log", "-w", "start")

    def stop(self) -> None:
        self._pg_ctl("-m", "immediate", "-w", "stop", check=False)

    @contextlib.contextmanager
    def frozen(self):
        """The whole cluster stopped (SIGSTOP: connections stay open, nothing answers), then resumed."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(
            ["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False
        )
        processes = [postmaster, *(int(pid) for pid in children.stdout.split())]
        for pid in processes:
            os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for pid in processes:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    def sql(self, *statements: str) -> list[tuple]:
        """Run ``statements`` as the superuser, autocommitted; the last one's rows."""
        import psycopg2

        rows: list[tuple] = []
        with contextlib.closing(psycopg2.connect(self.uri, connect_timeout=5)) as connection:
            connection.autocommit = True
            with connection.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
                    rows = cursor.fetchall() if cursor.description else []
        return rows


@contextlib.contextmanager
def throwaway_postgres():
    """Start a :class:`PostgresCluster` (as the postgres user when run as root: Postgres refuses
    root); stopped and removed after. Skips, or fails under ``FUSE_TEST_REQUIRE_POSTGRES=1``, where
    the binaries or the Postgres provider are missing."""
    binaries = _postgres_binaries()
    if binaries is None:
        _unavailable("the Postgres binaries (initdb, pg_ctl) are not installed")
    try:
        import airflow.providers.postgres.hooks.postgres  # noqa: F401
        import psycopg2  # noqa: F401
    except ImportError:
        _unavailable("apache-airflow-providers-postgres (and psycopg2) is not installed here")
    assert binaries is not None
    user = "postgres" if os.geteuid() == 0 else None
    home = Path(tempfile.mkdtemp(prefix="fuse-test-postgres-"))
    if user:
        shutil.chown(home, user, user)
    data = home / "data"
    subprocess.run(
        [binaries / "initdb", "-D", data, "-U", "fuse", "-A", "trust", "--no-sync", "-E", "UTF8"],
        user=user,
        group=user,
        capture_output=True,
        timeout=120,
        check=True,
    )
    cluster = PostgresCluster(binaries, data, home, free_port(), user)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_cluster():
    """A throwaway Postgres for this module's tests."""
    with throwaway_postgres() as cluster:
        yield cluster


@pytest.fixture
def postgres(postgres_cluster: PostgresCluster) -> str:
    return postgres_cluster.uri


def test_postgres_stores_dedups_and_bounds_like_sqlite(postgres, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_RESULTS_PG", postgres)
    check_store_dedup_and_bound("fuse_results_pg", "public.fuse_call_results")


def test_the_same_checks_pass_on_sqlite(database):
    check_store_dedup_and_bound(CONN_ID, TABLE)


def check_store_dedup_and_bound(conn_id: str, name: str) -> None:
    """Store, dedup, the bound, summary and rows, concurrently too: the portable SQL's whole path."""
    table = ResultsTable(conn_id, name)
    table.ensure()
    again = ResultsTable(conn_id, name)
    again.ensure()
    again.close()
    part = a_part(rows=2)
    assert table.store(part, an_outcome(phone="6175550001"), received=time.time()) is Stored.STORED
    assert table.store(part, an_outcome(phone="6175550001"), received=time.time()) is Stored.DUPLICATE
    assert table.store(part, an_outcome(phone="6175550002"), received=time.time()) is Stored.STORED
    assert table.store(part, an_outcome(phone="6175550003"), received=time.time()) is Stored.FULL
    assert table.summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS)["completed"] == 2
    rows = table.rows("campaign", "manual__1", "bulk_queue", CAMPAIGNS)
    assert [row["destination_number"] for row in rows] == ["+16175550001", "+16175550002"]
    assert rows[0]["events"] == [
        {"event": "queued", "timestamp": 1430769441},
        {"event": "completed", "timestamp": 1430769476},
    ]
    big = a_part(part=1, rows=10_000)
    results: list[Stored] = []

    def worker(index: int) -> None:
        for number in range(100):
            # Every outcome delivered twice, by two threads at once.
            outcome = an_outcome(phone=f"617{(index // 2):03d}{number:04d}")
            results.append(table.store(big, outcome, received=time.time()))

    in_threads(worker, 8)
    assert results.count(Stored.STORED) == 400
    assert results.count(Stored.DUPLICATE) == 400
    assert table.summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS)["received"] == 402
    table.close()


CHANGES = {
    "dag_id": lambda part, details: (dataclasses.replace(part, dag_id=part.dag_id + "x"), details),
    "run_id": lambda part, details: (dataclasses.replace(part, run_id=part.run_id + "x"), details),
    "task_id": lambda part, details: (dataclasses.replace(part, task_id=part.task_id + "x"), details),
    "map_index": lambda part, details: (dataclasses.replace(part, map_index=part.map_index + 1), details),
    "campaign": lambda part, details: (dataclasses.replace(part, campaign=part.campaign + "x"), details),
    "part": lambda part, details: (dataclasses.replace(part, part=part.part + 1), details),
    "destination": lambda part, details: (part, dataclasses.replace(details, phone_number="6175559999")),
    "status": lambda part, details: (part, dataclasses.replace(details, status=CallStatus("rejected"))),
    "attempts": lambda part, details: (
        part,
        dataclasses.replace(details, attempts=(details.attempts or 0) + 9),
    ),
    "max_attempts": lambda part, details: (part, dataclasses.replace(details, max_attempts=99)),
    "reattempt_wait": lambda part, details: (part, dataclasses.replace(details, reattempt_wait=99)),
    "queued_timestamp": lambda part, details: (part, dataclasses.replace(details, queued_timestamp=99)),
    "start_timestamp": lambda part, details: (part, dataclasses.replace(details, start_timestamp=99)),
    "end_timestamp": lambda part, details: (part, dataclasses.replace(details, end_timestamp=99)),
    "duration": lambda part, details: (part, dataclasses.replace(details, duration=99)),
    "events": lambda part, details: (
        part,
        dataclasses.replace(details, events=(*details.events, CallEvent("connected", None))),
    ),
}


@given(outcomes(), st.sampled_from(sorted(CHANGES)))
@settings(max_examples=300, deadline=None)
def test_changing_any_one_identity_field_changes_the_key(outcome, name):
    changed = CHANGES[name](*outcome)
    assert identity(*changed) != identity(*outcome)
    assert delivery_key(*changed) != delivery_key(*outcome)


# --- Several processes, bounded waits, least privilege, recovery (issue 18) ---------------------------

_STORE_FROM_A_PROCESS = """
import os, sys, time
from pathlib import Path
from airflow_provider_fuse.calls import CallDetails, CallStatus
from airflow_provider_fuse.results.table import ResultsTable
from airflow_provider_fuse.results.tokens import UploadPart
conn_id, name, campaign, rows, first, count, ready, go = sys.argv[1:9]
table = ResultsTable(conn_id, name)
table.ensure()
part = UploadPart("campaign", "manual__1", "bulk_queue", -1, campaign, 0, int(rows), int(time.time()) + 600)
Path(ready).touch()
deadline = time.monotonic() + 120
while not Path(go).exists() and time.monotonic() < deadline:
    time.sleep(0.002)
answers = []
for number in range(int(first), int(first) + int(count)):
    outcome = CallDetails(status=CallStatus.COMPLETED, phone_number=f"617{number:07d}")
    answers.append(table.store(part, outcome, received=time.time()).value)
print(answers.count("stored"), answers.count("full"))
"""


@contextlib.contextmanager
def storing_processes(
    script: str,
    arguments: list[list[str]],
    environment: dict[str, str],
    ready: list[Path],
    deadline: float,
) -> Iterator[list[subprocess.Popen[str]]]:
    """One Python process running ``script`` for each list of ``arguments`` (as many api-server
    workers), yielded once every file of ``ready`` exists (by ``deadline``, a ``time.monotonic()``);
    any still running on the way out is killed, each reaped and its pipes closed."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, *each],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for each in arguments
    ]
    try:
        while not all(path.exists() for path in ready):
            assert time.monotonic() < deadline, "the storing processes did not start"
            assert all(child.poll() is None for child in children), [
                c.stderr.read()[-2000:] for c in children
            ]
            time.sleep(0.05)
        yield children
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.communicate()  # reaps it and closes its pipes


def store_from_processes(
    conn_id: str,
    environment: dict[str, str],
    tmp_path: Path,
    *,
    processes: int,
    rows: int,
    each: int,
) -> tuple[str, list[tuple[int, int]]]:
    """``processes`` Python processes (as many api-server workers) store ``each`` distinct outcomes
    for one part of ``rows`` rows, starting together: the part's campaign, and each process's
    (stored, full) answers."""
    campaign = "b0und" + f"{time.time_ns():x}"[-16:]
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{index}" for index in range(processes)]
    arguments = [
        [conn_id, TABLE, campaign, str(rows), str(index * each), str(each), str(ready[index]), str(go)]
        for index in range(processes)
    ]
    deadline = time.monotonic() + 180
    with storing_processes(_STORE_FROM_A_PROCESS, arguments, environment, ready, deadline) as children:
        go.touch()
        answers = []
        for child in children:
            out, err = child.communicate(timeout=180)
            assert child.returncode == 0, err[-3000:]
            stored, full = out.strip().splitlines()[-1].split()
            answers.append((int(stored), int(full)))
        return campaign, answers


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_several_processes_storing_for_one_part_store_exactly_its_rows(kind, tmp_path, request):
    # Each process stands for one api-server worker: a bound kept in one process's memory would let
    # each add its own stores; the database's unique slots hold it for any number of processes.
    uri = request.getfixturevalue("postgres") if kind == "postgres" else f"sqlite://{tmp_path}/results.db"
    environment = {**os.environ, "AIRFLOW_CONN_FUSE_RESULTS_MANY": uri}
    campaign, answers = store_from_processes(
        "fuse_results_many", environment, tmp_path, processes=4, rows=40, each=30
    )
    assert sum(stored for stored, _ in answers) == 40
    assert sum(full for _, full in answers) == 4 * 30 - 40
    os.environ["AIRFLOW_CONN_FUSE_RESULTS_MANY"] = uri
    try:
        table = ResultsTable("fuse_results_many", TABLE)
        p = table._parameter()
        query = f"SELECT COUNT(*), MIN(slot), MAX(slot) FROM {TABLE} WHERE campaign_id = {p}"
        (row,) = table._read(query, (campaign,))
        table.close()
    finally:
        del os.environ["AIRFLOW_CONN_FUSE_RESULTS_MANY"]
    assert tuple(row) == (40, 1, 40)


def test_many_table_objects_storing_at_once_never_overfill_a_part(database):
    # Several objects (several processes' worth of memory) and several threads each, at once.
    tables = [ResultsTable(CONN_ID, TABLE) for _ in range(4)]
    part = a_part(rows=30)
    answers: list[Stored] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        for number in range(20):
            outcome = an_outcome(phone=f"617{index:03d}{number:04d}")
            answer = tables[index % 4].store(part, outcome, received=time.time())
            with lock:
                answers.append(answer)

    in_threads(worker, 8, timeout=60)
    for table in tables:
        table.close()
    assert answers.count(Stored.STORED) == 30
    assert len(rows_in(database)) == 30


def test_writers_that_take_no_lock_still_never_overfill_a_part(postgres, monkeypatch):
    # Writers that skip the part's lock (another tool, an older receiver) read the same free slot:
    # the unique constraint refuses all but one, and each other reads again and takes the next.
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_RESULTS_PG", postgres)
    table = ResultsTable("fuse_results_pg", "unlocked_results")
    table.ensure()
    monkeypatch.setattr(table, "_take_part", lambda connection, cursor, where, deadline: None)
    part = a_part(rows=20, campaign=f"unlocked{time.time_ns()}")
    answers: list[object] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        for number in range(6):
            try:
                answer: object = table.store(
                    part, an_outcome(phone=f"617{index:03d}{number:04d}"), received=0.0
                )
            except ResultsStoreError as error:
                answer = error
            with lock:
                answers.append(answer)

    in_threads(worker, 6, timeout=120)
    (count, highest) = table._read(
        "SELECT COUNT(*), MAX(slot) FROM unlocked_results WHERE campaign_id = %s", (part.campaign,)
    )[0]
    table.close()
    assert answers.count(Stored.STORED) == count == highest == 20
    assert all(isinstance(answer, Stored) or answer.retryable for answer in answers)


def test_a_user_constraint_is_neither_a_duplicate_nor_a_taken_slot(table, database):
    table.ensure()
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.execute(
            f"CREATE TRIGGER refuse BEFORE INSERT ON {TABLE} BEGIN SELECT RAISE(ABORT, 'no'); END"
        )
        connection.commit()
    started = time.monotonic()
    with pytest.raises(ResultsStoreError, match="cannot store an outcome") as caught:
        table.store(a_part(), an_outcome(), received=time.time())
    assert time.monotonic() - started < 2
    assert caught.value.retryable
    assert not caught.value.final


# --- Bounded waits ----------------------------------------------------------------------------------


def test_the_bounds_are_below_the_receivers_answer_bound():
    assert DATABASE_WAIT_SECONDS <= 5
    assert SQLITE_BUSY_TIMEOUT_MS <= DATABASE_WAIT_SECONDS * 1000
    assert CONNECT_TIMEOUT_SECONDS <= DATABASE_WAIT_SECONDS


def test_a_sqlite_database_locked_by_another_process_fails_a_store_in_time(table, database):
    table.ensure()
    blocker = sqlite3.connect(database, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(ResultsStoreError, match="locked or busy") as caught:
            table.store(a_part(), an_outcome(), received=time.time())
        waited = time.monotonic() - started
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert DATABASE_WAIT_SECONDS - 0.5 < waited < DATABASE_WAIT_SECONDS + 2
    assert caught.value.retryable
    assert_no_personal_data(caught.value)
    assert table.store(a_part(), an_outcome(), received=time.time()) is Stored.STORED


def _store_in_a_thread(table: ResultsTable, wait: float) -> tuple[list[object], float, threading.Thread]:
    """Store one outcome from another thread, waiting for it at most ``wait`` seconds: what the
    store gave so far (its answer or its ``ResultsStoreError``), the seconds waited, the thread."""
    outcome: list[object] = []

    def store() -> None:
        try:
            outcome.append(table.store(a_part(), an_outcome(), received=time.time()))
        except ResultsStoreError as error:
            outcome.append(error)

    started = time.monotonic()
    thread = threading.Thread(target=store, daemon=True)
    thread.start()
    thread.join(timeout=wait)
    return outcome, time.monotonic() - started, thread


def test_a_store_stuck_in_this_process_fails_the_next_store_in_time(table):
    table.ensure()
    table._write_lock.acquire()  # another thread's store, stuck
    outcome, waited, thread = _store_in_a_thread(table, wait=DATABASE_WAIT_SECONDS + 5)
    table._write_lock.release()
    thread.join(timeout=5)
    (error,) = outcome
    assert isinstance(error, ResultsStoreError)
    assert error.retryable
    assert waited < DATABASE_WAIT_SECONDS + 2


def test_a_postgres_table_locked_by_another_session_fails_stores_and_reads_in_time(
    postgres_cluster, monkeypatch
):
    import psycopg2

    monkeypatch.setenv("AIRFLOW_CONN_FUSE_RESULTS_PG", postgres_cluster.uri)
    table = ResultsTable("fuse_results_pg", "locked_results")
    table.ensure()
    holder = psycopg2.connect(postgres_cluster.uri)
    try:
        with holder.cursor() as cursor:
            cursor.execute("LOCK TABLE locked_results IN ACCESS EXCLUSIVE MODE")
        for attempt in (
            lambda: table.store(a_part(), an_outcome(), received=time.time()),
            lambda: table.summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS),
        ):
            started = time.monotonic()
            with pytest.raises(ResultsStoreError, match="locked or busy") as caught:
                attempt()
            waited = time.monotonic() - started
            assert DATABASE_WAIT_SECONDS - 0.5 < waited < DATABASE_WAIT_SECONDS + 2
            assert caught.value.retryable
            assert_no_personal_data(caught.value)
        # Four stores of one part at once: each waits for the part's lock behind the others, and
        # still none waits longer than the bound in all.
        waits: list[float] = []

        def store(number: int) -> None:
            started = time.monotonic()
            with contextlib.suppress(ResultsStoreError):
                table.store(a_part(), an_outcome(phone=f"617555000{number}"), received=time.time())
            waits.append(time.monotonic() - started)

        in_threads(store, 4, timeout=4 * DATABASE_WAIT_SECONDS)
        assert len(waits) == 4
        assert max(waits) < DATABASE_WAIT_SECONDS + 2
    finally:
        holder.rollback()
        holder.close()
    assert table.store(a_part(), an_outcome(), received=time.time()) is Stored.STORED
    table.close()


def test_a_postgres_server_that_never_answers_fails_a_connect_in_time(monkeypatch):
    pytest.importorskip("airflow.providers.postgres.hooks.postgres")
    # A socket that listens and never answers: the TCP connection is made, the startup never ends.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        monkeypatch.setenv("AIRFLOW_CONN_FUSE_RESULTS_SILENT", f"postgres://fuse@127.0.0.1:{port}/postgres")
        table = ResultsTable("fuse_results_silent", TABLE)
        outcome, waited, _ = _store_in_a_thread(table, wait=CONNECT_TIMEOUT_SECONDS + 10)
    (error,) = outcome
    assert isinstance(error, ResultsStoreError)
    assert error.retryable
    assert waited < CONNECT_TIMEOUT_SECONDS + 3


# --- Least privilege --------------------------------------------------------------------------------


def test_a_role_with_select_and_insert_on_a_dba_created_table_stores_and_reads(postgres_cluster, monkeypatch):
    name = "dba_results"
    postgres_cluster.sql(
        ResultsTable.ddl(name),
        "DROP ROLE IF EXISTS fuse_receiver",
        "DROP ROLE IF EXISTS fuse_reader",
        "CREATE ROLE fuse_receiver LOGIN",
        "CREATE ROLE fuse_reader LOGIN",
        f"GRANT SELECT, INSERT ON {name} TO fuse_receiver",
        f"GRANT SELECT ON {name} TO fuse_reader",
    )
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_RESULTS_RECEIVER", postgres_cluster.uri_as("fuse_receiver"))
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_RESULTS_READER", postgres_cluster.uri_as("fuse_reader"))
    receiver = ResultsTable("fuse_results_receiver", name)
    reader = ResultsTable("fuse_results_reader", name)
    try:
        assert receiver.store(a_part(rows=1), an_outcome(), received=time.time()) is Stored.STORED
        assert receiver.store(a_part(rows=1), an_outcome(), received=time.time()) is Stored.DUPLICATE
        other = an_outcome(phone="6175550001")
        assert receiver.store(a_part(rows=1), other, received=time.time()) is Stored.FULL
        assert reader.summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS)["completed"] == 1
        assert len(reader.rows("campaign", "manual__1", "bulk_queue", CAMPAIGNS)) == 1
    finally:
        receiver.close()
        reader.close()


def test_a_missing_table_a_role_may_not_create_is_said_plainly(postgres_cluster, monkeypatch):
    postgres_cluster.sql(
        "DROP ROLE IF EXISTS fuse_nobody", "CREATE ROLE fuse_nobody LOGIN PASSWORD 'pw-secret-1'"
    )
    uri = postgres_cluster.uri_as("fuse_nobody").replace("fuse_nobody@", "fuse_nobody:pw-secret-1@")
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_RESULTS_NOBODY", uri)
    table = ResultsTable("fuse_results_nobody", "never_created")
    try:
        with pytest.raises(ResultsStoreError, match="missing and cannot be created") as caught:
            table.store(a_part(), an_outcome(), received=time.time())
    finally:
        table.close()
    assert "ResultsTable.ddl()" in str(caught.value)
    assert "pw-secret-1" not in str(caught.value)
    assert_no_personal_data(caught.value)


def test_the_ddl_creates_the_table_the_receiver_expects(postgres_cluster, monkeypatch):
    postgres_cluster.sql("CREATE SCHEMA IF NOT EXISTS outcomes", ResultsTable.ddl("outcomes.calls"))
    columns = postgres_cluster.sql(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'outcomes' AND table_name = 'calls' ORDER BY ordinal_position"
    )
    assert tuple(column for (column,) in columns) == COLUMNS
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_RESULTS_PG", postgres_cluster.uri)
    table = ResultsTable("fuse_results_pg", "outcomes.calls")
    try:
        assert table.store(a_part(), an_outcome(), received=time.time()) is Stored.STORED
    finally:
        table.close()


def test_the_ddl_refuses_a_name_that_is_not_one():
    with pytest.raises(ResultsConfigError):
        ResultsTable.ddl("x; DROP TABLE y")


def test_a_table_that_is_there_is_not_created_again(table, database):
    table.ensure()
    table.close()
    statements: list[str] = []
    again = ResultsTable(CONN_ID, TABLE)
    again._connection().set_trace_callback(statements.append)
    again.store(a_part(), an_outcome(), received=time.time())
    again.close()
    assert not [statement for statement in statements if "CREATE" in statement.upper()]


# --- Recovery ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_dropped_table_is_created_again_at_the_next_store(kind, database, request, monkeypatch):
    if kind == "postgres":
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", request.getfixturevalue("postgres"))
    table = ResultsTable(CONN_ID, "dropped_results")
    reader = ResultsTable(CONN_ID, "dropped_results")
    try:
        assert table.store(a_part(), an_outcome(), received=time.time()) is Stored.STORED
        assert reader.summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS)["received"] == 1
        table._read("SELECT 1", ())  # nothing cached here survives the drop
        dropper = ResultsTable(CONN_ID, "dropped_results")
        connection = dropper._connection()
        _execute_and_commit(connection, "DROP TABLE dropped_results")
        dropper.close()
        other = an_outcome(phone="6175550001")
        assert table.store(a_part(), other, received=time.time()) is Stored.STORED
        assert reader.summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS)["received"] == 1
    finally:
        table.close()
        reader.close()


def _execute_and_commit(connection, statement: str) -> None:
    cursor = connection.cursor()
    cursor.execute(statement)
    cursor.close()
    connection.commit()


def test_a_postgres_connection_the_server_ended_is_replaced_within_the_store(postgres_cluster, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_RESULTS_PG", postgres_cluster.uri)
    table = ResultsTable("fuse_results_pg", "restart_results")
    try:
        assert table.store(a_part(rows=9), an_outcome(), received=time.time()) is Stored.STORED
        # A restart as the store's connection sees it: the server ends every session.
        postgres_cluster.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND usename = 'fuse' AND backend_type = 'client backend'"
        )
        time.sleep(0.2)
        for number in range(1, 3):
            outcome = an_outcome(phone=f"617555000{number}")
            assert table.store(a_part(rows=9), outcome, received=time.time()) is Stored.STORED
        assert table.summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS)["received"] == 3
    finally:
        table.close()


def test_a_postgres_restart_costs_no_store(postgres_cluster, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_RESULTS_PG", postgres_cluster.uri)
    table = ResultsTable("fuse_results_pg", "restart_results_2")
    try:
        assert table.store(a_part(rows=9), an_outcome(), received=time.time()) is Stored.STORED
        postgres_cluster.stop()
        postgres_cluster.start()
        other = an_outcome(phone="6175550001")
        assert table.store(a_part(rows=9), other, received=time.time()) is Stored.STORED
    finally:
        table.close()


def alone(path: Path, tmp_path: Path) -> list[str]:
    """The destinations in the SQLite file ``path`` read alone: copied without any -wal or -shm (what
    the file itself holds)."""
    copy = Path(tempfile.mkdtemp(dir=tmp_path)) / "alone.db"
    shutil.copyfile(path, copy)
    return sorted(row[COLUMNS.index("destination")] for row in rows_in(copy))


def sqlite_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if ".db" in path.name)


def test_a_moved_sqlite_file_is_never_stored_into(table, database, tmp_path):
    # Review r2, 1: the store after a move created a new database at the path, beside the -wal the
    # moved file's connections still used; SQLite reset that WAL and every outcome stored was gone.
    phones = [f"617555{number:04d}" for number in range(30)]
    for phone in phones:
        assert table.store(a_part(rows=99), an_outcome(phone=phone), received=time.time()) is Stored.STORED
    moved = database.with_name("moved.db")
    database.rename(moved)  # alone: its -wal and -shm stay at the path
    for _ in range(2):  # the connection that noticed, then a new one: neither creates a database
        with pytest.raises(ResultsStoreError, match="moved or deleted") as caught:
            table.store(a_part(rows=99), an_outcome(phone="6175550999"), received=time.time())
        assert caught.value.retryable
        assert_no_personal_data(caught.value)
        assert not database.exists()
    # Everything committed before the move is in the moved file itself (checkpointed into it).
    assert alone(moved, tmp_path) == phones
    # Put back, it is used again, with what it held.
    moved.rename(database)
    assert table.store(a_part(rows=99), an_outcome(phone="6175550999"), received=time.time()) is Stored.STORED
    assert len(rows_in(database)) == 31


def test_a_deleted_sqlite_file_is_not_created_again(table, database):
    table.store(a_part(), an_outcome(), received=time.time())
    database.unlink()
    with pytest.raises(ResultsStoreError, match="moved or deleted") as caught:
        table.store(a_part(), an_outcome(phone="6175550001"), received=time.time())
    assert caught.value.retryable
    reader = ResultsTable(CONN_ID, TABLE)
    try:
        # A new table object does not create one beside the -wal and -shm left there either.
        with pytest.raises(ResultsStoreError, match="-wal or -shm") as caught:
            reader.summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS)
        assert caught.value.retryable
    finally:
        reader.close()
    assert not database.exists()


def test_a_database_created_by_another_process_meanwhile_is_opened_not_called_moved(database, monkeypatch):
    # Review r3: this object found no database; before it looked for a -wal, another process created
    # the database and switched it to WAL. That -wal is the new database's, not a moved one's.
    from airflow_provider_fuse.results import table as module

    real_lexists = os.path.lexists
    other: list[sqlite3.Connection] = []

    def another_process_creates_it_meanwhile(path: str) -> bool:
        found = real_lexists(path)
        if path == str(database) and not found and not other:
            # The other creator, as the table makes it: in WAL mode, kept open (its -wal is there).
            other.append(sqlite3.connect(database))
            other[0].execute("PRAGMA journal_mode=WAL").fetchall()
            other[0].execute("CREATE TABLE elsewhere (x INTEGER)")
            other[0].commit()
        return found

    monkeypatch.setattr(module.os.path, "lexists", another_process_creates_it_meanwhile)
    table = ResultsTable(CONN_ID, TABLE)
    try:
        assert table.store(a_part(), an_outcome(), received=time.time()) is Stored.STORED
    finally:
        table.close()
        for connection in other:
            connection.close()
    assert other, "the other creator never ran: the path was not looked for"
    assert len(rows_in(database)) == 1


def test_a_new_table_object_creates_a_database_where_none_ever_was(database):
    # The very first time, with nothing at the path: created (and the table in it).
    table = ResultsTable(CONN_ID, TABLE)
    try:
        assert table.store(a_part(), an_outcome(), received=time.time()) is Stored.STORED
    finally:
        table.close()
    assert len(rows_in(database)) == 1


def test_another_database_put_at_the_path_after_a_move_is_used(table, database, tmp_path):
    table.store(a_part(), an_outcome(), received=time.time())
    moved = database.with_name("moved.db")
    database.rename(moved)
    with pytest.raises(ResultsStoreError, match="moved or deleted"):
        table.store(a_part(), an_outcome(phone="6175550001"), received=time.time())
    # An empty database (no table yet) is put there: used, the table looked for and created in it.
    another = tmp_path / "another.db"
    sqlite3.connect(another).close()
    another.rename(database)
    assert table.store(a_part(), an_outcome(phone="6175550001"), received=time.time()) is Stored.STORED
    assert [row[COLUMNS.index("destination")] for row in rows_in(database)] == ["6175550001"]
    assert alone(moved, tmp_path) == [PHONE]


def test_a_database_moved_while_threads_store_loses_no_outcome_answered_stored(database, tmp_path):
    table = ResultsTable(CONN_ID, TABLE)
    table.ensure()
    part = a_part(rows=100_000)
    stored: list[str] = []
    refused: list[ResultsStoreError] = []
    other: list[BaseException] = []
    moved_at = threading.Event()
    stop = threading.Event()

    def worker(index: int) -> None:
        try:
            for number in range(5000):
                if stop.is_set():
                    return
                phone = f"617{index}{number:06d}"
                try:
                    if table.store(part, an_outcome(phone=phone), received=time.time()) is Stored.STORED:
                        stored.append(phone)
                except ResultsStoreError as error:
                    refused.append(error)
                    time.sleep(0.005)
        except BaseException as error:  # pragma: no cover - reported below
            other.append(error)

    workers = [threading.Thread(target=worker, args=(index,)) for index in range(6)]
    for thread in workers:
        thread.start()
    deadline = time.monotonic() + 30
    while len(stored) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    moved = database.with_name("moved.db")
    database.rename(moved)
    moved_at.set()
    time.sleep(0.5)
    stop.set()
    for thread in workers:
        thread.join(timeout=60)
    table.close()
    assert other == []
    assert len(stored) >= 300
    assert refused, "nothing was refused after the move"
    assert all(error.retryable and "moved or deleted" in str(error) for error in refused)
    assert not database.exists()
    assert alone(moved, tmp_path) == sorted(stored)


_STORE_UNTIL_STOPPED = """
import sys, time
from pathlib import Path
from airflow_provider_fuse.calls import CallDetails, CallStatus
from airflow_provider_fuse.results.table import ResultsStoreError, ResultsTable
from airflow_provider_fuse.results.tokens import UploadPart
conn_id, name, index, ready, stop = sys.argv[1:6]
table = ResultsTable(conn_id, name)
table.ensure()
part = UploadPart("campaign", "manual__1", "bulk_queue", -1, "m0vedm0ved", 0, 100000, int(time.time()) + 600)
Path(ready).touch()
stored, refused = [], []
deadline = time.monotonic() + 120
for number in range(20000):
    if Path(stop).exists() or time.monotonic() > deadline:
        break
    phone = f"617{index}{number:06d}"
    try:
        if table.store(part, CallDetails(status=CallStatus.COMPLETED, phone_number=phone),
                       received=time.time()).value == "stored":
            stored.append(phone)
    except ResultsStoreError as error:
        refused.append("moved or deleted" in str(error) and error.retryable)
        time.sleep(0.005)
table.close()
print(" ".join(stored))
print(len(refused), all(refused))
"""


def test_a_database_moved_while_processes_store_loses_no_outcome_answered_stored(database, tmp_path):
    # Each process stands for an api-server worker, each with its connections to the moved file.
    environment = {**os.environ}
    ready = [tmp_path / f"ready-{index}" for index in range(3)]
    arguments = [
        [CONN_ID, TABLE, str(index), str(ready[index]), str(tmp_path / "stop")] for index in range(3)
    ]
    deadline = time.monotonic() + 180
    with storing_processes(_STORE_UNTIL_STOPPED, arguments, environment, ready, deadline) as children:
        while len(rows_in(database)) < 300:
            assert time.monotonic() < deadline, "the processes stored too little"
            time.sleep(0.05)
        moved = database.with_name("moved.db")
        database.rename(moved)
        time.sleep(1.0)
        (tmp_path / "stop").touch()
        stored: list[str] = []
        for child in children:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err[-3000:]
            # Its last two lines; the first is empty when it stored nothing (a slow start).
            phones, refusals = out.rstrip("\n").split("\n")[-2:]
            stored.extend(phones.split())
            count, all_moved = refusals.split()
            assert int(count) > 0, "a process was never refused after the move"
            assert all_moved == "True"
    assert len(stored) >= 300
    assert not database.exists()
    assert alone(moved, tmp_path) == sorted(stored)


def test_a_sqlite_file_replaced_under_its_path_is_stored_into_anew(table, database):
    table.store(a_part(), an_outcome(), received=time.time())
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # a WAL left beside a new file is not its
    replacement = database.with_name("replacement.db")
    with contextlib.closing(sqlite3.connect(replacement)) as connection:
        connection.execute(ResultsTable.ddl(TABLE))
        connection.commit()
    replacement.replace(database)
    other = an_outcome(phone="6175550001")
    assert table.store(a_part(), other, received=time.time()) is Stored.STORED
    assert [row[COLUMNS.index("destination")] for row in rows_in(database)] == ["6175550001"]


# --- Outcomes the database can never hold ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@pytest.mark.parametrize(
    "outcome",
    [
        pytest.param(lambda: an_outcome(phone="617\ud800555"), id="lone-surrogate"),
        pytest.param(lambda: an_outcome(attempts=10**30), id="integer-too-large"),
        pytest.param(lambda: an_outcome(events=(CallEvent("dial\x00ing", 1),)), id="nul-in-events"),
    ],
)
def test_an_outcome_the_database_cannot_hold_is_a_final_error(kind, outcome, database, request, monkeypatch):
    if kind == "postgres":
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", request.getfixturevalue("postgres"))
    table = ResultsTable(CONN_ID, "poison_results")
    part = a_part(campaign=f"poison{time.time_ns()}")
    try:
        answer: object
        try:
            answer = table.store(part, outcome(), received=time.time())
        except ResultsStoreError as error:
            answer = error
        if isinstance(answer, ResultsStoreError):
            assert answer.final
            assert not answer.retryable
            assert_no_personal_data(answer)
        else:
            assert answer is Stored.STORED  # SQLite holds a NUL in text
        assert table.store(part, an_outcome(), received=time.time()) is Stored.STORED
    finally:
        table.close()


def test_a_nul_in_the_destination_is_final_on_postgres(postgres, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_RESULTS_PG", postgres)
    table = ResultsTable("fuse_results_pg", "poison_results")
    try:
        with pytest.raises(ResultsStoreError) as caught:
            table.store(a_part(), an_outcome(phone=f"{PHONE}\x00"), received=time.time())
    finally:
        table.close()
    assert caught.value.final
    assert not caught.value.retryable
    assert_no_personal_data(caught.value)


# --- Missing provider -------------------------------------------------------------------------------


def test_a_sqlite_connection_without_the_sqlite_provider_says_what_to_install(database, monkeypatch):
    # Airflow does not include apache-airflow-providers-sqlite: without it, a sqlite connection has
    # no hook. Trying again cannot help; installing the package does.
    from airflow.sdk.definitions.connection import Connection

    def no_hook(self, *args, **kwargs):
        raise RuntimeError("no hook for this type")

    monkeypatch.setattr(Connection, "get_hook", no_hook)
    monkeypatch.setitem(sys.modules, "airflow.providers.sqlite.hooks.sqlite", None)
    with pytest.raises(ResultsStoreError, match="apache-airflow-providers-sqlite") as caught:
        ResultsTable(CONN_ID, TABLE).store(a_part(), an_outcome(), received=time.time())
    assert not caught.value.retryable


def test_the_ddl_in_the_docs_is_the_tables():
    # docs/results.md gives a DBA the statement: it must be the one the receiver expects.
    docs = (Path(__file__).parents[2] / "docs" / "results.md").read_text()
    assert ResultsTable.ddl("fuse_call_results") + ";" in docs


def test_a_moved_sqlite_file_is_never_read_from(table, database):
    reader = ResultsTable(CONN_ID, TABLE)
    try:
        table.store(a_part(), an_outcome(), received=time.time())
        assert reader.summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS)["received"] == 1
        database.rename(database.with_name("moved.db"))
        # Nothing is at the configured path now: the reader says so (not the moved file's count, nor
        # a new empty database's zero).
        with pytest.raises(ResultsStoreError, match="moved or deleted") as caught:
            reader.summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS)
        assert caught.value.retryable
    finally:
        reader.close()


def test_a_frozen_postgres_fails_a_store_in_time_and_is_used_again_once_it_runs(
    postgres_cluster, monkeypatch
):
    # A server that does not run applies none of its own timeouts: the connection is closed from this
    # side once the bound and a grace have passed, and the next store opens a new one.
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_RESULTS_PG", postgres_cluster.uri)
    table = ResultsTable("fuse_results_pg", "frozen_results")
    part = a_part(rows=9, campaign=f"frozen{time.time_ns()}")
    try:
        assert table.store(part, an_outcome(), received=time.time()) is Stored.STORED
        with postgres_cluster.frozen():
            started = time.monotonic()
            with pytest.raises(ResultsStoreError, match="did not answer") as caught:
                table.store(part, an_outcome(phone="6175550001"), received=time.time())
            waited = time.monotonic() - started
        assert caught.value.retryable
        assert waited < DATABASE_WAIT_SECONDS + WATCHDOG_GRACE_SECONDS + 1.5
        assert table.store(part, an_outcome(phone="6175550002"), received=time.time()) is Stored.STORED
    finally:
        table.close()


# --- FuseResultsHook: a downstream task reads a run's outcomes ------------------------------------------


class BulkTaskXComs:
    """The task instance a downstream task has: its run's ids and the bulk task's ``fuse_results``."""

    def __init__(self, *records: object) -> None:
        self.dag_id, self.run_id = "campaign", "manual__1"
        self.records = list(records)

    def xcom_pull(self, task_ids=None, key="return_value", **kwargs):
        assert (task_ids, key) == (["bulk_queue"], "fuse_results")
        return list(self.records) or [None]


def sent(campaign: str = CAMPAIGN, calls_queued: int = 3) -> dict:
    return {
        "campaign": campaign,
        "rows": calls_queued,
        "queued_timestamp": int(time.time()),
        "window_end": None,
        "start_timestamp": None,
        "last_attempt_timestamp": None,
        "confirmed": True,
        "calls_queued": calls_queued,
    }


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_results_hook_reads_what_the_table_holds(kind, database, request, monkeypatch, caplog):
    from airflow_provider_fuse.hooks.results import FuseResultsHook

    if kind == "postgres":
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", request.getfixturevalue("postgres"))
    table = ResultsTable(CONN_ID, "hook_results")
    try:
        table.store(a_part(), an_outcome(phone="6175550001"), received=time.time())
        table.store(
            a_part(map_index=1), an_outcome(phone="6175550002", status="failed"), received=time.time()
        )
        expected_rows = table.rows("campaign", "manual__1", "bulk_queue", CAMPAIGNS)
        expected_counts = table.summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS)
    finally:
        table.close()
    hook = FuseResultsHook(results_conn_id=CONN_ID, table="hook_results")
    caplog.set_level("DEBUG")
    assert hook.get_outcomes("campaign", "manual__1", "bulk_queue", CAMPAIGNS) == expected_rows
    assert hook.get_summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS) == expected_counts
    second = hook.get_outcomes("campaign", "manual__1", "bulk_queue", CAMPAIGNS, map_index=1)
    assert [row["destination_number"] for row in second] == ["+16175550002"]
    assert "617555" not in caplog.text


def test_the_results_hook_reads_the_table_the_fuse_section_names(database, monkeypatch):
    from airflow_provider_fuse.hooks.results import FuseResultsHook

    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_CONN_ID", CONN_ID)
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_TABLE", "configured_results")
    table = ResultsTable(CONN_ID, "configured_results")
    try:
        table.store(a_part(), an_outcome(), received=time.time())
    finally:
        table.close()
    assert len(FuseResultsHook().get_outcomes("campaign", "manual__1", "bulk_queue", CAMPAIGNS)) == 1


def test_the_results_hook_reads_a_bulk_tasks_outcomes_from_its_xcoms(table):
    from airflow_provider_fuse.hooks.results import FuseResultsHook
    from airflow_provider_fuse.results.campaign import SUMMARY_KEYS

    other = "d0ffee00d0ffee00d0ffee00d0ffee00"
    table.store(a_part(), an_outcome(phone="6175550001"), received=time.time())
    table.store(a_part(), an_outcome(phone="6175550002", status="rejected"), received=time.time())
    table.store(a_part(campaign=other), an_outcome(phone="6175550003"), received=time.time())
    hook = FuseResultsHook(results_conn_id=CONN_ID, table=TABLE)
    assert len(hook.get_task_outcomes(BulkTaskXComs(sent(calls_queued=3)), "bulk_queue")) == 2
    summary = hook.get_task_summary(BulkTaskXComs(sent(calls_queued=3)), "bulk_queue")
    assert tuple(summary) == SUMMARY_KEYS
    assert summary == {
        "calls_queued": 3,
        "completed": 1,
        "failed": 0,
        "canceled": 0,
        "rejected": 1,
        "other": 0,
        "missing": 1,
    }
    assert hook.get_task_outcomes(BulkTaskXComs(), "bulk_queue") == []


def test_a_select_only_role_reads_through_the_results_hook(postgres_cluster, monkeypatch):
    from airflow_provider_fuse.hooks.results import FuseResultsHook

    name = "hook_reader_results"
    postgres_cluster.sql(
        ResultsTable.ddl(name),
        "DROP ROLE IF EXISTS fuse_hook_reader",
        "CREATE ROLE fuse_hook_reader LOGIN",
        f"GRANT SELECT ON {name} TO fuse_hook_reader",
    )
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_HOOK_READER", postgres_cluster.uri_as("fuse_hook_reader"))
    hook = FuseResultsHook(results_conn_id="fuse_hook_reader", table=name)
    assert hook.get_summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS)["received"] == 0


def test_the_hook_refuses_an_unreadable_record_as_the_sensor_does(table):
    """Review r4 #1: get_task_outcomes took the campaign of any record, get_task_summary dropped what
    it could not read, the sensor failed on it: one task, three answers. Now one rule, the sensor's."""
    from airflow_provider_fuse.hooks.results import FuseResultsHook
    from airflow_provider_fuse.results.campaign import UnreadableRecord, bulk_campaigns

    other = "d0ffee00d0ffee00d0ffee00d0ffee00"
    table.store(a_part(), an_outcome(phone="6175550001"), received=time.time())
    table.store(a_part(campaign=other, map_index=1), an_outcome(phone="6175550003"), received=time.time())
    # Milliseconds: refused by the sensor; a phone number in a count: must not be shown.
    for unreadable in (
        sent(campaign=other, calls_queued=1) | {"queued_timestamp": int(time.time() * 1000)},
        sent(campaign=other) | {"calls_queued": 6175550100 * 10**6},
    ):
        ti = BulkTaskXComs(sent(calls_queued=1), unreadable)
        hook = FuseResultsHook(results_conn_id=CONN_ID, table=TABLE)
        for read in (hook.get_task_outcomes, hook.get_task_summary, bulk_campaigns):
            with pytest.raises(UnreadableRecord) as caught:
                read(ti, "bulk_queue")
            message = str(caught.value)
            assert message.startswith("Task 'bulk_queue' of this run left a 'fuse_results' XCom ")
            assert "(record 2 of 2)" in message
            assert "617555" not in message
            assert str(unreadable["queued_timestamp"]) not in message


def test_a_read_of_a_missing_table_creates_nothing(database):
    """Review r4 #7 / F2: a reader ran CREATE TABLE (and switched an empty SQLite file to WAL)."""
    from airflow_provider_fuse.hooks.results import FuseResultsHook
    from airflow_provider_fuse.results.table import ResultsTableMissing

    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.execute("CREATE TABLE other (a)")
        connection.commit()
    hook = FuseResultsHook(results_conn_id=CONN_ID, table="not_there")
    for read in (
        lambda: hook.get_summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS),
        lambda: hook.get_outcomes("campaign", "manual__1", "bulk_queue", CAMPAIGNS),
        lambda: hook.get_task_summary(BulkTaskXComs(sent()), "bulk_queue"),
    ):
        with pytest.raises(ResultsTableMissing) as caught:
            read()
        message = str(caught.value)
        assert f"{CONN_ID!r}: the table not_there does not exist" in message
        assert "receiver" in message
        assert "ResultsTable.ddl()" in message
    # The sensor's and the trigger's count: nothing stored yet, all zeros, and nothing created.
    reader = ResultsTable(CONN_ID, "not_there")
    try:
        assert reader.summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS)["received"] == 0
        assert reader.rows("campaign", "manual__1", "bulk_queue", CAMPAIGNS) == []
    finally:
        reader.close()
    with contextlib.closing(sqlite3.connect(database)) as connection:
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        assert tables == [("other",)]
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)


def test_a_read_creates_no_sqlite_file_and_a_write_then_does(database):
    from airflow_provider_fuse.hooks.results import FuseResultsHook
    from airflow_provider_fuse.results.table import ResultsTableMissing

    with pytest.raises(ResultsTableMissing, match="no SQLite database is at the connection's path"):
        FuseResultsHook(results_conn_id=CONN_ID, table=TABLE).get_summary(
            "campaign", "manual__1", "bulk_queue", CAMPAIGNS
        )
    table = ResultsTable(CONN_ID, TABLE)
    try:
        assert table.summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS)["received"] == 0
        assert not database.exists()
        # The same object, writing: creates the file and the table, in WAL (a new database).
        assert table.store(a_part(), an_outcome(), received=time.time()) is Stored.STORED
        assert table.summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS)["received"] == 1
    finally:
        table.close()
    with contextlib.closing(sqlite3.connect(database)) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_hook_read_of_a_missing_postgres_table_creates_nothing(postgres, monkeypatch):
    import psycopg2

    from airflow_provider_fuse.hooks.results import FuseResultsHook
    from airflow_provider_fuse.results.table import ResultsTableMissing

    monkeypatch.setenv("AIRFLOW_CONN_FUSE_RESULTS_PG", postgres)
    hook = FuseResultsHook(results_conn_id="fuse_results_pg", table="public.hook_not_there")
    with pytest.raises(ResultsTableMissing, match="public.hook_not_there"):
        hook.get_summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS)
    reader = ResultsTable("fuse_results_pg", "public.hook_not_there")
    try:
        assert reader.summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS)["received"] == 0
    finally:
        reader.close()
    with contextlib.closing(psycopg2.connect(postgres)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('public.hook_not_there') IS NOT NULL")
        assert cursor.fetchone() == (False,)


@pytest.mark.parametrize("campaigns", [None, CAMPAIGN])
def test_campaigns_must_be_a_collection_of_ids(table, campaigns):
    from airflow_provider_fuse.hooks.results import FuseResultsHook

    table.store(a_part(), an_outcome(), received=time.time())
    hook = FuseResultsHook(results_conn_id=CONN_ID, table=TABLE)
    for read in (hook.get_outcomes, hook.get_summary):
        with pytest.raises(TypeError, match="^campaigns is a collection of campaign ids"):
            read("campaign", "manual__1", "bulk_queue", campaigns)
    assert hook.get_outcomes("campaign", "manual__1", "bulk_queue", []) == []


def test_one_map_index_is_chosen_by_the_database(table):
    """Review r4 #17: get_outcomes(map_index=k) read every row of the task and filtered in Python."""
    from airflow_provider_fuse.hooks.results import FuseResultsHook

    for map_index in range(3):
        for number in range(3):
            table.store(
                a_part(map_index=map_index),
                an_outcome(phone=f"61755500{map_index}{number}"),
                received=time.time(),
            )
    assert [row["map_index"] for row in table.rows("campaign", "manual__1", "bulk_queue", CAMPAIGNS)] == [
        0,
        0,
        0,
        1,
        1,
        1,
        2,
        2,
        2,
    ]
    statements: list[str] = []
    table._connection().set_trace_callback(statements.append)
    rows = table.rows("campaign", "manual__1", "bulk_queue", CAMPAIGNS, map_index=1)
    assert [row["destination_number"] for row in rows] == [f"+161755500{1}{n}" for n in range(3)]
    (select,) = [statement for statement in statements if statement.startswith("SELECT delivery_key")]
    assert "map_index = " in select
    hook = FuseResultsHook(results_conn_id=CONN_ID, table=TABLE)
    assert hook.get_outcomes("campaign", "manual__1", "bulk_queue", CAMPAIGNS, map_index=2) == table.rows(
        "campaign", "manual__1", "bulk_queue", CAMPAIGNS, map_index=2
    )
    assert hook.get_outcomes("campaign", "manual__1", "bulk_queue", CAMPAIGNS, map_index=7) == []
    with pytest.raises(TypeError, match="map_index"):
        hook.get_outcomes("campaign", "manual__1", "bulk_queue", CAMPAIGNS, map_index="1")  # type: ignore[arg-type]


def test_the_hooks_errors_name_the_argument_that_gave_the_value(database, monkeypatch):
    """Newcomer F8: a bad constructor argument was blamed on [fuse] results_table / results_conn_id."""
    from airflow_provider_fuse.hooks.results import FuseResultsHook

    with pytest.raises(ResultsConfigError, match=r"^FuseResultsHook\(table=\.\.\.\) must be a table name"):
        FuseResultsHook(results_conn_id=CONN_ID, table="fuse-call-results").get_summary(
            "campaign", "manual__1", "bulk_queue", CAMPAIGNS
        )
    with pytest.raises(ResultsConfigError, match=r"^FuseResultsHook\(table=\.\.\.\) must not be in a temp"):
        FuseResultsHook(results_conn_id=CONN_ID, table="temp.results").get_outcomes(
            "campaign", "manual__1", "bulk_queue", CAMPAIGNS
        )
    monkeypatch.delenv("AIRFLOW_CONN_NOPE", raising=False)
    with pytest.raises(ResultsStoreError) as caught:
        FuseResultsHook(results_conn_id="nope", table=TABLE).get_summary(
            "campaign", "manual__1", "bulk_queue", CAMPAIGNS
        )
    assert "'nope' (FuseResultsHook(results_conn_id=...)) is not defined" in str(caught.value)
    assert "[fuse] results_conn_id" not in str(caught.value)
    # Not given: the option is named, as before.
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_CONN_ID", "nope")
    with pytest.raises(ResultsStoreError, match=r"'nope' \(\[fuse\] results_conn_id\) is not defined"):
        FuseResultsHook(table=TABLE).get_summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS)
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_TABLE", "pg_temp.results")
    with pytest.raises(ResultsConfigError, match=r"^\[fuse\] results_table must not be in a temp"):
        FuseResultsHook(results_conn_id=CONN_ID).get_summary("campaign", "manual__1", "bulk_queue", CAMPAIGNS)
