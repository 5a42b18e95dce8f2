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

Its class path, ``airflow_provider_fuse.triggers.campaign_results.FuseCampaignResultsTrigger``, is
stored with every deferred task instance: it stays importable (and importable from
``airflow_provider_fuse.triggers.fuse``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping

__all__ = ["FuseCampaignResultsTrigger", "waiting_is_over"]


def waiting_is_over(counts: Mapping[str, int], calls_queued: int, deadline: float, now: float) -> bool:
    """Whether the wait for a list's outcomes is over: one has arrived for every call queued, or the
    dialing window and grace period (``deadline``, unix seconds) have passed.

    The one rule for the sensor's pokes and this trigger's polls.
    """
    return int(counts.get("received", 0)) >= calls_queued or now >= deadline


class FuseCampaignResultsTrigger(BaseTrigger):
    """Fire once the results table holds an outcome for every call one bulk task queued, or the
    deadline has passed.

    Counts the task's outcomes (:meth:`ResultsTable.summary`) every ``poll_interval`` seconds, and
    once more at ``deadline``. Events hold counts and ids only — no phone number, no credential (an
    event is stored in Airflow's database):

    * ``{"status": "done", "counts": {...}, "calls_queued": n, "deadline": t}`` — the wait is over
      (:func:`waiting_is_over`); ``counts`` is :meth:`ResultsTable.summary`. What the counts do to
      the task is the sensor's decision
      (:meth:`~airflow_provider_fuse.sensors.campaign_results.FuseCampaignResultsSensor.settle`).
    * ``{"status": "error", "message": str, "retryable": True}`` — the table could not be read
      (``ResultsStoreError``: the connection is missing or not a database, or a database error); the
      message names the connection and the kind of failure. Left to the task's retries.

    :param dag_id: the DAG of the bulk task.
    :param run_id: the run of the bulk task.
    :param bulk_task_id: the bulk task (all its map indexes and parts are counted). Not ``task_id``:
        the triggerer sets a trigger's ``task_id`` to the deferred task's own (the sensor's).
    :param calls_queued: the calls it queued (summed over map indexes).
    :param deadline: unix seconds after which the wait ends whatever has arrived.
    :param results_conn_id: the connection of the results table, read in the triggerer.
    :param results_table: the results table's name (checked when read).
    :param poll_interval: seconds between counts.
    """

    def __init__(
        self,
        *,
        dag_id: str,
        run_id: str,
        bulk_task_id: str,
        calls_queued: int,
        deadline: float,
        results_conn_id: str,
        results_table: str,
        poll_interval: float = 60.0,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.dag_id = dag_id
        self.run_id = run_id
        self.bulk_task_id = bulk_task_id
        self.calls_queued = int(calls_queued)
        self.deadline = float(deadline)
        self.results_conn_id = results_conn_id
        self.results_table = results_table
        self.poll_interval = float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and the keyword arguments: ids, counts, times; no credentials."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "dag_id": self.dag_id,
                "run_id": self.run_id,
                "bulk_task_id": self.bulk_task_id,
                "calls_queued": self.calls_queued,
                "deadline": self.deadline,
                "results_conn_id": self.results_conn_id,
                "results_table": self.results_table,
                "poll_interval": self.poll_interval,
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

        # One thread for this trigger: the table keeps one database connection per thread, opened by
        # a count and closed right after it, in that thread. A connection kept between counts would be
        # held for the whole wait (hours): a hundred waiting campaigns would take a hundred of the
        # database's connections (Postgres allows 100 by default). A count a minute can afford a new one.
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fuse-campaign-results")

        def in_thread(function: Callable[..., Any]) -> Callable[..., Any]:
            return sync_to_async(function, thread_sensitive=False, executor=executor)

        table = ResultsTable(self.results_conn_id, self.results_table)  # reads nothing yet

        def count() -> dict[str, int]:
            try:
                return table.summary(self.dag_id, self.run_id, self.bulk_task_id)
            finally:
                table.close()  # the next count reconnects

        try:
            while True:
                try:
                    counts = await in_thread(count)()
                except ResultsStoreError as error:
                    # Its message names the connection and the kind of failure, never a value read.
                    return {"status": "error", "message": str(error), "retryable": True}
                now = time.time()
                self.log.info(
                    "Fuse results of %s: %d of %d calls in",
                    self.bulk_task_id,
                    counts.get("received", 0),
                    self.calls_queued,
                )
                if waiting_is_over(counts, self.calls_queued, self.deadline, now):
                    return {
                        "status": "done",
                        "counts": dict(counts),
                        "calls_queued": self.calls_queued,
                        "deadline": self.deadline,
                    }
                # Never sleep past the deadline: the last count is made when it passes.
                await asyncio.sleep(max(0.0, min(self.poll_interval, self.deadline - now)))
        finally:
            # Also when the trigger is cancelled (the sensor's timeout): closing is best effort then.
            with contextlib.suppress(Exception):
                await in_thread(table.close)()
            executor.shutdown(wait=False)


def _event(payload: dict[str, Any]) -> TriggerEvent:
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]
