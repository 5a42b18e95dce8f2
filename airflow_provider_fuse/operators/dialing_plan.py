"""Whom the bulk operator calls, and when: local calling hours and the suppression list, as a plan.

A row is *suppressed* when its number is on the suppression list
(:mod:`airflow_provider_fuse.suppression`), *unplaceable* when no time zone can be found for its
number (:mod:`airflow_provider_fuse.calling_hours`) and ``on_unknown_time_zone`` leaves it out, and
otherwise routed to the group of rows whose numbers share its time zones (:class:`Router`). The
preflight's parts writer puts each group's rows into parts of their own; each part is then sent with
the window that keeps every call inside local calling hours in every zone of its group and inside
the user's window (:func:`part_windows`). A group whose window is empty is not sent, and counted.

What the plan is made of — which row goes in which part, and what was removed — is part of the
list's fingerprint (:func:`plan_content`); the windows are not: they follow from the time a try
sends, and a retry an hour later resumes the same list with the windows of its own time.

Nothing here logs, returns or raises a phone number: rows are named by number only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_fuse.calling_hours import ON_UNKNOWN_TIME_ZONE, country_time_zones, time_zones
from airflow_provider_fuse.exceptions import FuseValidationError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_fuse.calling_hours import CallingHours, Window
    from airflow_provider_fuse.fields import QueueFields
    from airflow_provider_fuse.preflight import CsvPart
    from airflow_provider_fuse.suppression import SuppressionList


__all__ = [
    "Removals",
    "Router",
    "check_on_unknown_time_zone",
    "check_suppression_source",
    "checked_calling_hours",
    "describe_plan",
    "describe_window",
    "part_fields",
    "part_windows",
    "plan_content",
]


#: How many rows an error names; the count always covers them all.
REPORTED_ROWS = 5


def checked_calling_hours(value: object) -> tuple[str, str] | None:
    """``calling_hours`` as ``("HH:MM", "HH:MM")`` once :meth:`CallingHours.parse` accepts it; ``None``
    when not given. The one form kept, fingerprinted and parsed again at execute time.

    :raises ValueError: naming the parameter (when the DAG is parsed).
    """
    if value is None:
        return None
    from airflow_provider_fuse.calling_hours import CallingHours

    try:
        hours = CallingHours.parse(value)
    except FuseValidationError as error:
        raise ValueError(str(error)) from None
    return f"{hours.start:%H:%M}", f"{hours.end:%H:%M}"


def check_on_unknown_time_zone(value: object) -> None:
    """:raises ValueError: ``value`` is not one of :data:`ON_UNKNOWN_TIME_ZONE`."""
    if value not in ON_UNKNOWN_TIME_ZONE:
        raise ValueError(f"on_unknown_time_zone must be 'fail', 'skip' or 'country', got {value!r}")


def check_suppression_source(value: object) -> None:
    """Refuse, when the DAG is parsed, a ``suppression_list`` no rendering could make a source of.

    :raises ValueError: a bool, a number, a mapping or bytes (never its value in the message).
    """
    if isinstance(value, (bool, int, float, dict, bytes)):
        raise ValueError(
            "suppression_list must be a CSV path, an ObjectStoragePath, a list of numbers (an XComArg), "
            f"or a SuppressionQuery, got a {type(value).__name__}"
        )


@dataclass
class Removals:
    """The rows left out of what is sent, counted (never their numbers).

    :param suppressed: rows whose number is on the suppression list.
    :param unplaceable: rows whose number has no time zone, left out (``on_unknown_time_zone``).
    :param unplaceable_rows: the first few of those (the header is row 1).
    :param outside_hours: rows of parts not sent because their window is empty.
    """

    suppressed: int = 0
    unplaceable: int = 0
    unplaceable_rows: list[int] = field(default_factory=list)
    outside_hours: int = 0

    @property
    def total(self) -> int:
        return self.suppressed + self.unplaceable + self.outside_hours

    def describe(self) -> str:
        """``3 suppressed, 1 with no time zone found, 0 outside calling hours`` (only those that apply)."""
        return (
            f"{self.suppressed} suppressed, {self.unplaceable} with no time zone found, "
            f"{self.outside_hours} outside calling hours"
        )


class Router:
    """The route of :func:`~airflow_provider_fuse.preflight.write_csv_parts`: each row's group, or
    ``None`` (left out, counted in :attr:`removals`).

    Suppression is checked first, so a suppressed number is never counted as unplaceable. Without
    calling hours every row left goes to one group, ``()``.
    """

    def __init__(
        self,
        hours: CallingHours | None,
        on_unknown_time_zone: str,
        suppression: SuppressionList | None,
    ) -> None:
        self.hours = hours
        self.on_unknown_time_zone = on_unknown_time_zone
        self.suppression = suppression
        self.removals = Removals()
        self.rows = 0

    def __call__(self, row_number: int, number: int) -> tuple[str, ...] | None:
        self.rows += 1
        if self.suppression is not None and number in self.suppression:
            self.removals.suppressed += 1
            return None
        if self.hours is None:
            return ()
        zones = time_zones(number)
        if not zones and self.on_unknown_time_zone == "country":
            zones = country_time_zones(number)
        if zones:
            return zones
        self.removals.unplaceable += 1
        if len(self.removals.unplaceable_rows) < REPORTED_ROWS:
            self.removals.unplaceable_rows.append(row_number)
        return None

    def check(self) -> None:
        """Fail when rows have no time zone and ``on_unknown_time_zone`` does not leave them out.

        :raises FuseValidationError: naming ``on_unknown_time_zone``, the count and the first rows.
        """
        removals = self.removals
        if not removals.unplaceable or self.on_unknown_time_zone == "skip":
            return
        rows = ", ".join(map(str, removals.unplaceable_rows))
        more = ", …" if removals.unplaceable > len(removals.unplaceable_rows) else ""
        country = " (nor of its country)" if self.on_unknown_time_zone == "country" else ""
        raise FuseValidationError(
            "on_unknown_time_zone",
            f"{removals.unplaceable} of {self.rows} rows have a destination whose time zone cannot be found "
            f"from its number{country} (rows {rows}{more}; the header is row 1), so their calling hours "
            "are unknown. Correct those rows, or give on_unknown_time_zone='skip' (leave them out, "
            "counted) or 'country' (call them within the hours of every zone of their country)",
        )


def part_windows(
    parts: Sequence[CsvPart], hours: CallingHours, fields: QueueFields, now: float
) -> list[Window | None]:
    """Each part's dialing window at ``now``: the first window of its group's calling hours that
    begins at or after the user's start (or ``now``, when later) and ends by the user's
    ``end_timestamp`` (:func:`~airflow_provider_fuse.calling_hours.calling_window`); ``None`` when
    there is none, and the part is not sent."""
    from airflow_provider_fuse.calling_hours import calling_window

    start = max(int(now), fields.start_timestamp or 0)
    found: dict[tuple[str, ...], Window | None] = {}
    for part in parts:
        if part.group not in found:
            found[part.group] = calling_window(part.group, hours, start=start, end=fields.end_timestamp)
    return [found[part.group] for part in parts]


def part_fields(fields: QueueFields, window: Window | None) -> QueueFields:
    """The fields a part is sent with: the user's, with the part's window when it has one."""
    if window is None:
        return fields
    return replace(fields, start_timestamp=window.start, end_timestamp=window.end)


def plan_content(csv_sha256: str, suppression: SuppressionList | None, parts: Sequence[CsvPart]) -> str:
    """The content the fingerprint covers when the plan shapes the parts: the CSV, the suppression
    list, and each part's group, rows and bytes (so which row goes in which part). No window."""
    document: dict[str, Any] = {
        "csv": csv_sha256,
        "suppression_list": None if suppression is None else suppression.sha256,
        "parts": [[list(part.group), part.rows, part.sha256] for part in parts],
    }
    return hashlib.sha256(json.dumps(document, separators=(",", ":")).encode()).hexdigest()


def describe_plan(
    parts: Sequence[CsvPart], windows: Sequence[Window | None] | None, removals: Removals | None
) -> list[str]:
    """The plan as log lines, one per zone group: rows, parts, and the window in each zone's local
    time and in UTC; then the rows left out. No number, no CSV value."""
    lines: list[str] = []
    if windows is not None:
        groups: dict[tuple[str, ...], tuple[int, int, Window | None]] = {}
        for part, window in zip(parts, windows, strict=True):
            rows, count, _ = groups.get(part.group, (0, 0, None))
            groups[part.group] = (rows + part.rows, count + 1, window)
        for group, (rows, count, window) in groups.items():
            lines.append(
                f"zones {' + '.join(group)}: {rows} rows in {count} part(s), {describe_window(group, window)}"
            )
    if removals is not None:
        lines.append(f"not sent: {removals.describe()}")
    return lines


def describe_window(zones: Sequence[str], window: Window | None) -> str:
    """``08:00-21:00 America/New_York (2026-06-02 12:00 → 2026-06-03 01:00 UTC)``, or that there is
    no window before the user's end."""
    if window is None:
        return "no window within calling hours before end_timestamp: not sent"
    from zoneinfo import ZoneInfo

    local = []
    for zone in zones:
        start = datetime.fromtimestamp(window.start, ZoneInfo(zone))
        end = datetime.fromtimestamp(window.end, ZoneInfo(zone))
        local.append(f"{start:%Y-%m-%d %H:%M}-{end:%H:%M} {zone}")
    utc_start = datetime.fromtimestamp(window.start, timezone.utc)
    utc_end = datetime.fromtimestamp(window.end, timezone.utc)
    return f"local {', '.join(local)}; UTC {utc_start:%Y-%m-%d %H:%M} → {utc_end:%Y-%m-%d %H:%M}"
