"""FuseCampaignResultsTrigger: wait in the triggerer until one bulk task's call outcomes are in.

The results table (:class:`~airflow_provider_fuse.results.table.ResultsTable`) is read through a
``DbApiHook``, which is synchronous: each count runs in a thread of the trigger's own, started
through asgiref's ``sync_to_async``, so the event loop never waits on the database. That thread
also reads the results connection, the way Airflow lets a trigger's synchronous code do it: a
connection in the environment or a secrets backend is read there directly; one in Airflow's
database is asked of the triggerer's supervisor over the triggerer's event loop. Airflow 3.1 gets
there with ``async_to_sync``, which finds the loop only from a thread asgiref started (a plain
``asyncio.to_thread`` would start a second loop on the same socket); Airflow 3.3 with
``run_coroutine_threadsafe`` from any thread other than the loop's.

Every wait on the database is bounded, whatever the database does (locked, frozen, gone): a count is
waited for at most ``count_timeout`` seconds and never past the deadline, except the count made when
the deadline passes, which gets :data:`LAST_COUNT_SECONDS`; then the trigger goes on without it (the
next poll waits for the same count again rather than start another). The deadline is kept: if no
count could be made by then, the event is a retryable error naming the bound. Cancelling the trigger
(the sensor's timeout) returns at once: a count still running is left to finish in its own
daemon thread, never awaited (asgiref's ``sync_to_async`` awaits its thread when cancelled, so the
count runs as a task of its own, watched with ``asyncio.wait``, which cancels nothing).

Its class path, ``airflow_provider_fuse.triggers.campaign_results.FuseCampaignResultsTrigger``, is
stored with every deferred task instance: it stays importable (and importable from
``airflow_provider_fuse.triggers.fuse``).
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_fuse.results.campaign import waiting_is_over
from airflow_provider_fuse.results.counting import (
    DEFAULT_COUNT_TIMEOUT,
    LAST_COUNT_SECONDS,
    DaemonThreadExecutor,
)
from airflow_provider_fuse.results.diagnosis import (
    DIAGNOSE_AFTER_POLLS,
    DIAGNOSE_EVERY,
    DIAGNOSIS_SECONDS,
    describe_receiver_answer,
    receiver_diagnosis,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


__all__ = [
    "DEFAULT_COUNT_TIMEOUT",
    "DIAGNOSE_AFTER_POLLS",
    "DIAGNOSE_EVERY",
    "DaemonThreadExecutor",
    "FuseCampaignResultsTrigger",
    "describe_receiver_answer",
    "receiver_diagnosis",
    "waiting_is_over",
]


class FuseCampaignResultsTrigger(BaseTrigger):
    """Fire once the results table holds an outcome for every call one bulk task queued, or the
    deadline has passed.

    Counts the task's outcomes in the given campaigns (:meth:`ResultsTable.summary`) every
    ``poll_interval`` seconds, and once more at ``deadline``; each count is waited for at most
    ``count_timeout`` seconds (see the module docstring). Events hold counts and ids only — no phone
    number, no credential (an event is stored in Airflow's database):

    * ``{"status": "done", "counts": {...}, "calls_queued": n, "deadline": t}`` — the wait is over
      (:func:`waiting_is_over`); ``counts`` is :meth:`ResultsTable.summary`. What the counts do to
      the task is the sensor's decision
      (:meth:`~airflow_provider_fuse.sensors.campaign_results.FuseCampaignResultsSensor.settle`).
    * ``{"status": "error", "message": str, "retryable": True}`` — the table could not be read
      (``ResultsStoreError``: the connection is missing or not a database, or a database error; or no
      count answered by the deadline); the message names the connection and the kind of failure, or
      the bound. Left to the task's retries.

    :param dag_id: the DAG of the bulk task.
    :param run_id: the run of the bulk task.
    :param bulk_task_id: the bulk task (all its map indexes and parts are counted). Not ``task_id``:
        the triggerer sets a trigger's ``task_id`` to the deferred task's own (the sensor's).
    :param campaigns: the campaign ids of its map indexes (their ``fuse_results`` XComs): outcomes
        of any other campaign (a deleted run's, under the same run id) are not counted.
    :param calls_queued: the calls it queued (summed over map indexes).
    :param deadline: unix seconds after which the wait ends whatever has arrived.
    :param results_conn_id: the connection of the results table, read in the triggerer.
    :param results_table: the results table's name (checked when read).
    :param poll_interval: seconds between counts.
    :param count_timeout: seconds one count is waited for.
    """

    def __init__(
        self,
        *,
        dag_id: str,
        run_id: str,
        bulk_task_id: str,
        campaigns: list[str],
        calls_queued: int,
        deadline: float,
        results_conn_id: str,
        results_table: str,
        poll_interval: float = 60.0,
        count_timeout: float = DEFAULT_COUNT_TIMEOUT,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.dag_id = dag_id
        self.run_id = run_id
        self.bulk_task_id = bulk_task_id
        self.campaigns = sorted(set(campaigns))
        self.calls_queued = int(calls_queued)
        self.deadline = float(deadline)
        self.results_conn_id = results_conn_id
        self.results_table = results_table
        self.poll_interval = float(poll_interval)
        self.count_timeout = float(count_timeout)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and the keyword arguments: ids, counts, times; no credentials."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "dag_id": self.dag_id,
                "run_id": self.run_id,
                "bulk_task_id": self.bulk_task_id,
                "campaigns": list(self.campaigns),
                "calls_queued": self.calls_queued,
                "deadline": self.deadline,
                "results_conn_id": self.results_conn_id,
                "results_table": self.results_table,
                "poll_interval": self.poll_interval,
                "count_timeout": self.count_timeout,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Count until the wait is over, or the table cannot be read; yield one event."""
        # Everything is closed before the event leaves: a trigger's generator is not always resumed
        # (or closed) after its first event.
        yield _event(await self._wait())

    async def _wait(self) -> dict[str, Any]:
        """The event's payload, once the wait is over or counting failed."""
        from asgiref.sync import sync_to_async

        from airflow_provider_fuse.results.table import ResultsStoreError, ResultsTable

        # A count runs in a daemon thread of its own, opens its connection there and closes it right
        # after: a connection kept between counts would be held for the whole wait (hours), and a
        # hundred waiting campaigns would take a hundred of the database's connections (Postgres
        # allows 100 by default). A count a minute can afford a new one.
        executor = DaemonThreadExecutor("fuse-campaign-results")
        table = ResultsTable(self.results_conn_id, self.results_table)  # reads nothing yet

        def count() -> dict[str, int]:
            try:
                return table.summary(self.dag_id, self.run_id, self.bulk_task_id, self.campaigns)
            finally:
                table.close()  # the next count reconnects

        counting = sync_to_async(count, thread_sensitive=False, executor=executor)
        pending: asyncio.Task[dict[str, int]] | None = None
        started = 0.0
        last_count = min(self.count_timeout, LAST_COUNT_SECONDS)
        # Counts in a row that found no outcome, and when the receiver was last asked why.
        empty_polls, diagnosed = 0, -math.inf
        while True:
            if pending is None:
                pending, started = asyncio.ensure_future(counting()), time.time()
                pending.add_done_callback(_retrieve)
            now = time.time()
            # Before the deadline: wait for a count at most count_timeout, and not past the deadline.
            # After it: a count gets LAST_COUNT_SECONDS from its start (the last count, made when the
            # deadline passes, needs a moment); one already stuck before the deadline gets no more.
            if now < self.deadline:
                bound = min(self.count_timeout, self.deadline - now)
            else:
                bound = max(0.0, started + last_count - now)
            await asyncio.wait({pending}, timeout=bound)
            now = time.time()
            if pending.done():
                try:
                    counts = pending.result()
                except ResultsStoreError as error:
                    # Its message names the connection and the kind of failure, never a value read.
                    return {"status": "error", "message": str(error), "retryable": True}
                pending = None
                over = waiting_is_over(counts, self.calls_queued, self.deadline, now)
                received = int(counts.get("received", 0))
                empty_polls = empty_polls + 1 if received == 0 and self.calls_queued > 0 else 0
                why = ""
                if not over and empty_polls >= DIAGNOSE_AFTER_POLLS and now - diagnosed >= DIAGNOSE_EVERY:
                    diagnosed = now
                    why = await self._diagnose()
                if why:
                    self.log.warning(
                        "Fuse results of %s: %d of %d calls in; none so far: %s.",
                        self.bulk_task_id,
                        received,
                        self.calls_queued,
                        why,
                    )
                else:
                    self.log.info(
                        "Fuse results of %s: %d of %d calls in",
                        self.bulk_task_id,
                        received,
                        self.calls_queued,
                    )
                if over:
                    return {
                        "status": "done",
                        "counts": dict(counts),
                        "calls_queued": self.calls_queued,
                        "deadline": self.deadline,
                    }
            elif now >= self.deadline and now >= started + last_count:
                return {
                    "status": "error",
                    "message": (
                        f"the results database ([fuse] results_conn_id {self.results_conn_id!r}) "
                        "answered no count by the deadline"
                    ),
                    "retryable": True,
                }
            elif now >= self.deadline:
                continue  # the last count's moment is not over yet
            else:
                # The same count is waited for again at the next poll; none is started beside it.
                self.log.warning(
                    "Fuse results of %s: the results database did not answer a count within %g s; "
                    "waiting on.",
                    self.bulk_task_id,
                    bound,
                )
                if bound >= self.poll_interval:
                    continue
            # Never sleep past the deadline: the last count is made when it passes.
            await asyncio.sleep(max(0.0, min(self.poll_interval, self.deadline - now)))

    async def _diagnose(self) -> str:
        """:func:`receiver_diagnosis` for the first campaign, in a daemon thread of its own, waited
        for at most :data:`DIAGNOSIS_SECONDS` and never past the deadline (``""`` then); a
        cancelled trigger leaves it to finish on its own."""
        from asgiref.sync import sync_to_async

        if not self.campaigns:
            return ""
        bound = min(DIAGNOSIS_SECONDS, self.deadline - time.time())
        if bound <= 0:
            return ""
        asking = sync_to_async(
            receiver_diagnosis,
            thread_sensitive=False,
            executor=DaemonThreadExecutor("fuse-receiver-check"),
        )
        task = asyncio.ensure_future(asking(self.dag_id, self.run_id, self.bulk_task_id, self.campaigns[0]))
        task.add_done_callback(_retrieve)
        await asyncio.wait({task}, timeout=bound)
        return task.result() if task.done() and not task.cancelled() and task.exception() is None else ""


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Collect a count's outcome nobody awaits any more (the trigger was cancelled or moved on)."""
    if not task.cancelled():
        task.exception()


def _event(payload: dict[str, Any]) -> TriggerEvent:
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]
