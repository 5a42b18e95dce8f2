"""Outcomes of one bulk task stored as the results receiver stores them, and a results database that
never answers a count: shared by the tests of the results sensor, its trigger, the bulk operator's
receiver check and the receiver."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from airflow_provider_fuse.calls import CallDetails, CallStatus
from airflow_provider_fuse.results.table import ResultsTable
from airflow_provider_fuse.results.tokens import UploadPart, new_campaign, sign

DAG_ID, RUN_ID, BULK = "campaign", "manual__2026-11-29T02:00:00+00:00", "queue_calls"
TABLE = "fuse_call_results"


def upload_part(
    campaign: str, *, task_id: str = BULK, map_index: int = -1, part: int = 0, rows: int = 1000
) -> UploadPart:
    """A part of the bulk task's list, its token valid for a day from now."""
    return UploadPart(DAG_ID, RUN_ID, task_id, map_index, campaign, part, rows, int(time.time()) + 86400)


def signed_token(key: str, *, run_id: str = RUN_ID, rows: int, lifetime: int) -> str:
    """A results token signed with ``key`` for part 0 of a new campaign of the bulk task in
    ``run_id``, valid for ``lifetime`` seconds."""
    part = UploadPart(DAG_ID, run_id, BULK, -1, new_campaign(), 0, rows, int(time.time()) + lifetime)
    return sign(part, key)


@contextlib.contextmanager
def storing(conn_id: str, campaign: str) -> Iterator[Callable[..., None]]:
    """``store("completed", "failed", map_index=0)``: one outcome per status, each for another
    fictional number, in ``campaign`` unless told; the table is closed after."""
    table = ResultsTable(conn_id, TABLE)
    numbers = itertools.count()
    chosen = campaign

    def store(
        *statuses: str, map_index: int = -1, part: int = 0, task_id: str = BULK, campaign: str = chosen
    ) -> None:
        upload = upload_part(campaign, task_id=task_id, map_index=map_index, part=part)
        for status in statuses:
            details = CallDetails(
                status=CallStatus(status),
                attempts=1,
                queued_timestamp=int(time.time()) - 60,
                phone_number=f"617555{next(numbers):04d}",
            )
            table.store(upload, details, received=time.time())

    try:
        yield store
    finally:
        table.close()


@contextlib.contextmanager
def frozen_counts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Counts (:meth:`ResultsTable.summary`) that do not return until the block ends, as on a locked
    or frozen database; yields when each began (monotonic seconds)."""
    release = threading.Event()
    started: list[float] = []

    def frozen(self: ResultsTable, *args: object, **kwargs: object) -> dict[str, int]:
        started.append(time.monotonic())
        release.wait(60)
        raise AssertionError("released")

    monkeypatch.setattr(ResultsTable, "summary", frozen)
    try:
        yield started
    finally:
        release.set()
