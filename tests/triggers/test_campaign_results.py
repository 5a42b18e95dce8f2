"""FuseCampaignResultsTrigger: what it serializes, when it fires, and that counting never blocks the
event loop — also when the results connection is read through a triggerer's supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sqlite3
import threading
import time
from types import SimpleNamespace

import pytest

from airflow_provider_fuse.results.table import ResultsTable
from airflow_provider_fuse.triggers.campaign_results import FuseCampaignResultsTrigger, waiting_is_over
from tests.results.outcomes import BULK, DAG_ID, RUN_ID, TABLE, frozen_counts, storing

CONN_ID = "fuse_results_default"
CLASSPATH = "airflow_provider_fuse.triggers.campaign_results.FuseCampaignResultsTrigger"
CAMPAIGN, OTHER = "c" * 32, "e" * 32


@pytest.fixture
def database(tmp_path, monkeypatch):
    path = tmp_path / "results.db"
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", f"sqlite://{path}")
    return path


@pytest.fixture
def arrive(database):
    """Store outcomes of the bulk task as the receiver would."""
    with storing(CONN_ID, CAMPAIGN) as store:
        yield store


def trigger(
    calls_queued: int = 3,
    *,
    deadline: float | None = None,
    poll_interval: float = 0.05,
    count_timeout: float = 30.0,
):
    return FuseCampaignResultsTrigger(
        dag_id=DAG_ID,
        run_id=RUN_ID,
        bulk_task_id=BULK,
        campaigns=[CAMPAIGN],
        count_timeout=count_timeout,
        calls_queued=calls_queued,
        deadline=time.time() + 3600 if deadline is None else deadline,
        results_conn_id=CONN_ID,
        results_table=TABLE,
        poll_interval=poll_interval,
    )


async def first(waiting: FuseCampaignResultsTrigger) -> dict:
    async for event in waiting.run():
        return event.payload
    raise AssertionError("the trigger ended without an event")


def first_event(waiting: FuseCampaignResultsTrigger) -> dict:
    return asyncio.run(asyncio.wait_for(first(waiting), timeout=30))


# --- What is stored with the deferred task ---------------------------------------------------------------


def test_serialize_holds_ids_counts_and_times_only():
    waiting = trigger(deadline=1_900_000_000.5, poll_interval=60)
    classpath, kwargs = waiting.serialize()
    assert classpath == CLASSPATH
    assert kwargs == {
        "dag_id": DAG_ID,
        "run_id": RUN_ID,
        "bulk_task_id": BULK,
        "campaigns": [CAMPAIGN],
        "calls_queued": 3,
        "deadline": 1_900_000_000.5,
        "results_conn_id": CONN_ID,
        "results_table": TABLE,
        "poll_interval": 60.0,
        "count_timeout": 30.0,
    }
    json.dumps(kwargs)  # stored as JSON
    assert FuseCampaignResultsTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_the_class_path_imports_and_the_public_path_is_the_same_class():
    import importlib

    from airflow_provider_fuse.triggers.fuse import FuseCampaignResultsTrigger as public

    module, _, name = CLASSPATH.rpartition(".")
    assert getattr(importlib.import_module(module), name) is public is FuseCampaignResultsTrigger


#: A trigger as a deferred task instance of an earlier release stored it (classpath and JSON kwargs).
STORED_TRIGGER = (
    CLASSPATH,
    '{"dag_id": "campaign", "run_id": "manual__2026-11-29T02:00:00+00:00", "bulk_task_id": "queue_calls", '
    '"campaigns": ["' + CAMPAIGN + '"], "calls_queued": 3, "deadline": 1000.0, '
    '"results_conn_id": "fuse_results_default", "results_table": "fuse_call_results", '
    '"poll_interval": 60.0, "count_timeout": 30.0}',
)


def test_a_trigger_stored_by_an_earlier_release_loads_and_fires(arrive):
    import importlib

    classpath, stored = STORED_TRIGGER
    module, _, name = classpath.rpartition(".")
    loaded = getattr(importlib.import_module(module), name)(**json.loads(stored))
    assert loaded.serialize() == (classpath, json.loads(stored))
    arrive("completed", "failed")
    event = first_event(loaded)
    assert (event["status"], event["counts"]["received"], event["calls_queued"]) == ("done", 2, 3)


@pytest.mark.parametrize(
    ("received", "deadline_offset", "over"),
    [(3, 60, True), (4, 60, True), (2, 60, False), (2, 0, True), (0, -1, True), (0, 1, False)],
)
def test_waiting_is_over(received, deadline_offset, over):
    now = time.time()
    assert waiting_is_over({"received": received}, 3, now + deadline_offset, now) is over


# --- When it fires -----------------------------------------------------------------------------------------


def test_it_fires_when_every_outcome_is_in(arrive):
    arrive("completed", "failed", "completed")
    event = first_event(trigger())
    assert event == {
        "status": "done",
        "counts": {"completed": 2, "failed": 1, "canceled": 0, "rejected": 0, "other": 0, "received": 3},
        "calls_queued": 3,
        "deadline": event["deadline"],
    }


def test_it_counts_the_bulk_task_even_once_the_triggerer_hands_it_the_sensors_task_instance(arrive):
    # The triggerer assigns the deferred task instance, and BaseTrigger then sets its own task_id to
    # the sensor's: counting must follow bulk_task_id, not task_id.
    arrive("completed", "failed", "completed")
    waiting = trigger()
    waiting.task_instance = SimpleNamespace(task_id="wait_for_outcomes")
    assert first_event(waiting)["counts"]["received"] == 3


def test_it_polls_until_the_last_outcome_arrives(arrive):
    arrive("completed")

    async def scenario() -> dict:
        waiting = asyncio.ensure_future(first(trigger(poll_interval=0.05)))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await asyncio.to_thread(arrive, "canceled", "rejected")
        return await asyncio.wait_for(waiting, 10)

    event = asyncio.run(scenario())
    assert event["counts"]["received"] == 3
    assert (event["counts"]["canceled"], event["counts"]["rejected"]) == (1, 1)


def test_it_fires_at_the_deadline_with_what_has_arrived_without_sleeping_past_it(arrive):
    arrive("completed")
    started = time.monotonic()
    event = first_event(trigger(deadline=time.time() + 0.5, poll_interval=600))
    assert time.monotonic() - started < 10
    assert event["status"] == "done"
    assert event["counts"]["received"] == 1
    assert event["calls_queued"] == 3


def test_an_unreadable_table_is_a_retryable_error_event_naming_the_connection(monkeypatch, tmp_path):
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", f"sqlite://{tmp_path}/no/such/dir/results.db")
    event = first_event(trigger())
    assert event["status"] == "error"
    assert event["retryable"] is True
    assert event["message"].startswith(f"results connection {CONN_ID!r}: cannot connect")


def test_a_connection_that_is_not_defined_is_an_error_event(monkeypatch):
    monkeypatch.delenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", raising=False)
    event = first_event(trigger())
    assert event["status"] == "error"
    # Says how to define it, naming the connection and its environment variable.
    assert f"{CONN_ID!r} ([fuse] results_conn_id) is not defined" in event["message"]
    assert f"AIRFLOW_CONN_{CONN_ID.upper()}=" in event["message"]
    assert f"airflow connections add {CONN_ID}" in event["message"]


def test_events_hold_no_personal_data(arrive):
    arrive("completed", "completed", "failed")
    assert "617555" not in json.dumps(first_event(trigger()))


# --- Never blocking the event loop -----------------------------------------------------------------------


def test_counting_runs_in_a_thread_and_the_loop_goes_on_meanwhile(arrive, monkeypatch):
    arrive("completed", "completed", "completed")
    original = ResultsTable.summary
    threads = []

    def slow_summary(self, *args):
        threads.append(threading.get_ident())
        time.sleep(0.5)  # a slow database
        return original(self, *args)

    monkeypatch.setattr(ResultsTable, "summary", slow_summary)

    async def scenario() -> tuple[dict, float]:
        gaps, stop = [], asyncio.Event()

        async def heartbeat() -> None:
            last = time.monotonic()
            while not stop.is_set():
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        beating = asyncio.ensure_future(heartbeat())
        event = await first(trigger())
        stop.set()
        await beating
        return event, max(gaps)

    event, longest_gap = asyncio.run(scenario())
    assert event["status"] == "done"
    assert threads
    assert threading.get_ident() not in threads
    assert longest_gap < 0.25  # the 0.5 s count never held the loop


def test_the_connection_is_closed_in_the_thread_that_opened_it(arrive, monkeypatch):
    arrive("completed", "completed", "completed")
    opened, closed = [], []
    original_connection, original_close = ResultsTable._connection, ResultsTable.close

    def connection(self, **kwargs):
        opened.append(threading.get_ident())
        return original_connection(self, **kwargs)

    def close(self):
        closed.append(threading.get_ident())
        return original_close(self)

    monkeypatch.setattr(ResultsTable, "_connection", connection)
    monkeypatch.setattr(ResultsTable, "close", close)
    first_event(trigger())
    assert closed
    assert set(opened) == set(closed)


def test_no_connection_stays_open_between_counts(arrive, monkeypatch):
    # A connection held for the whole wait (hours) per waiting campaign would exhaust the database's.
    arrive("completed")
    opened, open_when_counting, earlier_ones_closed = [], [], []
    original_connection, original_summary = ResultsTable._connection, ResultsTable.summary

    def is_closed(connection) -> bool:
        try:
            connection.execute("SELECT 1")
        except sqlite3.ProgrammingError as error:
            return "closed" in str(error)
        return False

    def connection(self, **kwargs):
        connection = original_connection(self, **kwargs)
        if not any(connection is seen for seen in opened):
            opened.append(connection)
        return connection

    def summary(self, *args):
        # In the trigger's thread, which SQLite requires to touch its connections.
        open_when_counting.append(len(self._connections))
        earlier_ones_closed.append(all(is_closed(each) for each in opened))
        return original_summary(self, *args)

    monkeypatch.setattr(ResultsTable, "_connection", connection)
    monkeypatch.setattr(ResultsTable, "summary", summary)
    event = first_event(trigger(calls_queued=3, deadline=time.time() + 0.4, poll_interval=0.05))

    assert event["status"] == "done"
    assert len(open_when_counting) >= 3
    assert open_when_counting == [0] * len(open_when_counting)
    assert all(earlier_ones_closed)
    assert len(opened) == len(open_when_counting)  # each count connects anew


# --- Reading the connection in a real triggerer -------------------------------------------------------


class Supervisor:
    """Stands in for the triggerer's supervisor on the other end of Airflow's own comms channel.

    The trigger runs with Airflow's ``TriggerCommsDecoder`` (the real class, over a socket pair) as
    its ``SUPERVISOR_COMMS``: a connection Airflow keeps in its database reaches a trigger only as an
    answer from here. It knows one connection and records what it is asked.
    """

    def __init__(self, conn_id: str, uri: str) -> None:
        from airflow.sdk import Connection

        self.conn_id = conn_id
        self.connection = Connection.from_uri(uri, conn_id=conn_id)
        self.asked: list[str] = []
        self._sockets: list[socket.socket] = []

    def _serve(self, theirs: socket.socket) -> None:
        import msgspec
        from airflow.sdk.execution_time.comms import (
            ConnectionResult,
            ErrorResponse,
            ErrorType,
            _RequestFrame,
            _ResponseFrame,
        )

        decoder = msgspec.msgpack.Decoder(_RequestFrame)
        with contextlib.suppress(OSError):
            while head := theirs.recv(4, socket.MSG_WAITALL):
                frame = decoder.decode(theirs.recv(int.from_bytes(head, "big"), socket.MSG_WAITALL))
                body = frame.body or {}
                self.asked.append(str(body.get("conn_id", body.get("type"))))
                answer: dict | None = None  # what the supervisor sends for, e.g., MaskSecret
                if body.get("type") == "GetConnection" and body.get("conn_id") == self.conn_id:
                    c = self.connection
                    answer = ConnectionResult(
                        conn_id=c.conn_id, conn_type=c.conn_type, host=c.host, schema=c.schema,
                        login=c.login, password=c.password, port=c.port, extra=c.extra,
                    ).model_dump(by_alias=True)  # fmt: skip
                elif body.get("type") == "GetConnection":
                    answer = ErrorResponse(error=ErrorType.CONNECTION_NOT_FOUND).model_dump()
                theirs.sendall(_ResponseFrame(id=frame.id, body=answer).as_bytes())

    @contextlib.asynccontextmanager
    async def channel(self):
        """A new channel to this supervisor, as the trigger runner's ``SUPERVISOR_COMMS`` while open:
        Airflow's comms decoder, on the running event loop."""
        from airflow.jobs.triggerer_job_runner import TriggerCommsDecoder
        from airflow.sdk.execution_time import task_runner

        ours, theirs = socket.socketpair()
        self._sockets += [ours, theirs]
        threading.Thread(target=self._serve, args=(theirs,), daemon=True).start()
        reader, writer = await asyncio.open_connection(sock=ours)
        comms = TriggerCommsDecoder(async_writer=writer, async_reader=reader, socket=ours)
        if hasattr(comms, "start_reader"):  # Airflow >= 3.3 answers requests from a reader task
            await comms.start_reader()
        # Airflow tells a task context by the attribute's presence: leave it as it was found.
        missing = object()
        before = getattr(task_runner, "SUPERVISOR_COMMS", missing)
        task_runner.SUPERVISOR_COMMS = comms
        try:
            yield comms
        finally:
            if before is missing:
                del task_runner.SUPERVISOR_COMMS
            else:
                task_runner.SUPERVISOR_COMMS = before
            if (reading := getattr(comms, "_reader_task", None)) is not None:
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reading
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def close(self) -> None:
        for each in self._sockets:
            each.close()


def test_the_results_connection_is_read_through_the_triggerers_supervisor(arrive, database, monkeypatch):
    """The connection is not in the environment: only the supervisor knows it, as when it is kept in
    Airflow's database. The count's thread reaches the supervisor over the loop's own channel.

    Ten runs: a worker thread that is not asgiref's breaks this on Airflow 3.1 about every other run.
    """
    arrive("completed", "failed", "completed")
    monkeypatch.delenv(f"AIRFLOW_CONN_{CONN_ID.upper()}")
    supervisor = Supervisor(CONN_ID, f"sqlite://{database}")

    async def one_run() -> dict:
        async with supervisor.channel():
            return await asyncio.wait_for(first(trigger()), 20)

    try:
        events = [asyncio.run(one_run()) for _ in range(10)]
    finally:
        supervisor.close()
    assert [event["status"] for event in events] == ["done"] * 10
    assert all(event["counts"]["received"] == 3 for event in events)
    assert supervisor.asked
    assert set(supervisor.asked) == {CONN_ID}


# --- Another campaign under the same run id ----------------------------------------------------------------


def test_outcomes_of_another_campaign_under_the_same_run_id_are_not_counted(arrive):
    arrive("completed", "completed", "completed", campaign=OTHER)
    arrive("failed")
    event = first_event(trigger(deadline=time.time() + 0.3))
    assert event["counts"]["received"] == 1


# --- Every wait on the database is bounded ---------------------------------------------------------------


@pytest.fixture
def frozen_database(database, monkeypatch):
    """Counts that do not return until the test ends (a locked or frozen database); when each began."""
    with frozen_counts(monkeypatch) as started:
        yield started


def test_the_deadline_holds_while_the_database_is_frozen(frozen_database):
    began = time.monotonic()
    event = first_event(trigger(deadline=time.time() + 1.0, count_timeout=0.3, poll_interval=0.1))
    took = time.monotonic() - began
    assert event["status"] == "error"
    assert event["retryable"] is True
    assert "answered no count by the deadline" in event["message"]
    assert took < 1.6  # the deadline: the count stuck since before it gets no extra time
    assert len(frozen_database) == 1  # one count waited for, none started beside it


def test_a_cancelled_trigger_returns_at_once_while_a_count_hangs(frozen_database):
    async def scenario() -> float:
        waiting = asyncio.ensure_future(first(trigger(count_timeout=30.0)))
        while not frozen_database:
            await asyncio.sleep(0.01)
        began = time.monotonic()
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        return time.monotonic() - began

    assert asyncio.run(asyncio.wait_for(scenario(), 10)) < 1.0


def test_the_counts_threads_never_hold_the_process(frozen_database):
    first_event(trigger(deadline=time.time() + 0.3, count_timeout=0.1))
    hung = [thread for thread in threading.enumerate() if thread.name.startswith("fuse-campaign-results")]
    assert hung
    assert all(thread.daemon for thread in hung)


# --- While no outcome arrives, the receiver is asked why, as the poking sensor does (issue 18) ----------


@pytest.fixture
def diagnoses(monkeypatch) -> list[tuple]:
    """The receiver check answers a reason; each call's arguments are kept."""
    calls: list[tuple] = []

    def diagnose(*args: object) -> str:
        calls.append(args)
        return "the receiver answers nothing useful"

    monkeypatch.setattr("airflow_provider_fuse.triggers.campaign_results.receiver_diagnosis", diagnose)
    return calls


def test_while_nothing_arrives_the_trigger_logs_why_after_a_few_polls_at_most_once_per_interval(
    database, diagnoses, log_text
):
    from airflow_provider_fuse.triggers.campaign_results import DIAGNOSE_AFTER_POLLS, DIAGNOSE_EVERY

    event = first_event(trigger(deadline=time.time() + 1.0, poll_interval=0.05))
    assert event["status"] == "done"
    assert event["counts"]["received"] == 0
    assert DIAGNOSE_EVERY > 1.0  # so one diagnosis in the second of polls
    assert diagnoses == [(DAG_ID, RUN_ID, BULK, CAMPAIGN)]
    logs = log_text()
    assert "0 of 3 calls in; none so far: the receiver answers nothing useful." in logs
    assert DIAGNOSE_AFTER_POLLS >= 2


def test_the_trigger_asks_again_once_the_interval_has_passed(database, diagnoses, monkeypatch):
    monkeypatch.setattr("airflow_provider_fuse.triggers.campaign_results.DIAGNOSE_EVERY", 0.4)
    first_event(trigger(deadline=time.time() + 1.5, poll_interval=0.05))
    assert 2 <= len(diagnoses) <= 5  # about one per 0.4 s of 1.5 s, never one per poll (~30)


def test_the_trigger_does_not_ask_once_an_outcome_has_arrived(arrive, diagnoses):
    arrive("completed")
    first_event(trigger(deadline=time.time() + 0.6, poll_interval=0.05))
    assert diagnoses == []
