"""Whether a run is too old to dial: catch-up and backfill runs must not call people from an old list."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["staleness"]


def staleness(context: Context, max_run_age: timedelta | None) -> str:
    """Why this run is too old to dial, or ``""``: it was due longer ago than ``max_run_age``.

    A run is due at its ``run_after`` (when the scheduler could start it: for a manual run, when
    it was triggered), not at the end of its data interval: a manual run of a weekly timetable
    gets an interval that ended days ago and is still today's run. Without ``run_after`` (Airflow
    before 3.0's run model, or a bare context) the data interval's end, then the logical date.
    ``max_run_age=None`` turns the check off.
    """
    if max_run_age is None:
        return ""
    due, what = _run_due(context)
    if due is None:
        return ""
    age = datetime.now(timezone.utc) - due
    if age <= max_run_age:
        return ""
    return f"this run was due ({what}) {_round(age)} ago, more than max_run_age ({max_run_age})"


def _run_due(context: Context) -> tuple[datetime | None, str]:
    """When the run was due: its ``run_after``, else its data interval's end, else its logical date."""
    run_after = getattr(context.get("dag_run"), "run_after", None)
    for value, what in (
        (run_after, "run_after"),
        (context.get("data_interval_end"), "data_interval_end"),
        (context.get("logical_date"), "logical_date"),
    ):
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value, what
    return None, ""


def _round(age: timedelta) -> timedelta:
    return timedelta(seconds=int(age.total_seconds()))
