"""A property of the bulk operator's plan: for any list of North American numbers, any calling hours,
any time of any day of the year (daylight-saving changes included) and any suppression list, every row
sent is sent in a window inside the local hours of every zone its number may ring in, and every row is
either sent or counted once: sent + suppressed + with no time zone + outside calling hours = rows."""

from __future__ import annotations

import csv
import tempfile
import time as clock
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_fuse.calling_hours import CallingHours, time_zones
from airflow_provider_fuse.destinations import destination_number
from airflow_provider_fuse.fields import QueueFields
from airflow_provider_fuse.operators import contact_list
from airflow_provider_fuse.operators.dialing_plan import Router, part_windows
from airflow_provider_fuse.preflight import preflight_csv

#: Area codes across every zone of North America (and some with no area: toll-free, 555), and any.
AREA_CODES = st.one_of(
    st.sampled_from(["617", "415", "312", "808", "907", "208", "850", "787", "684", "671", "800", "555"]),
    st.integers(200, 999).map(str),
)
NUMBER = st.tuples(AREA_CODES, st.integers(2_000_000, 9_999_999)).map(
    lambda parts: "1" + "".join(map(str, parts))
)
MINUTE = st.integers(0, 24 * 60 - 1)
YEAR = 366 * 86_400


@st.composite
def calling_hours(draw) -> tuple[str, str]:
    first, second = sorted(draw(st.lists(MINUTE, min_size=2, max_size=2, unique=True)))
    return tuple(f"{minute // 60:02d}:{minute % 60:02d}" for minute in (first, second))  # type: ignore[return-value]


def inside(zones: tuple[str, ...], hours: CallingHours, start: int, end: int) -> bool:
    for zone in zones:
        opens = datetime.fromtimestamp(start, ZoneInfo(zone))
        closes = datetime.fromtimestamp(end - 1, ZoneInfo(zone))
        if opens.date() != closes.date() or opens.time() < hours.start or closes.time() >= hours.end:
            return False
    return True


@settings(max_examples=150, deadline=None)
@given(
    numbers=st.lists(NUMBER, min_size=1, max_size=40),
    hours=calling_hours(),
    offset=st.integers(0, 2 * YEAR),
    length=st.none() | st.integers(60, 3 * 86_400),
    suppressed=st.sets(st.integers(0, 39), max_size=10),
    chunk_size=st.none() | st.integers(1, 5),
)
def test_every_row_is_sent_inside_local_hours_or_counted_once(
    numbers, hours, offset, length, suppressed, chunk_size
):
    from airflow_provider_fuse.suppression import SuppressionList

    now = int(clock.time()) + offset  # any moment of the next two years, from the real clock
    parsed = CallingHours.parse(hours)
    blocked = SuppressionList(destination_number(numbers[i]) for i in suppressed if i < len(numbers))
    router = Router(parsed, "skip", blocked)
    fields = QueueFields(end_timestamp=None if length is None else now + length)
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir, "contacts.csv")
        path.write_text("destination,row\n" + "".join(f"{n},{i}\n" for i, n in enumerate(numbers)))
        summary = preflight_csv(path)
        parts = contact_list.parts(
            str(path), summary, workdir, chunk_size=chunk_size, on_duplicate_destinations="warn", route=router
        )
        windows = part_windows(parts, parsed, fields, now)
        sent: list[int] = []
        outside = 0
        for part, window in zip(parts, windows, strict=True):
            with open(part.path, newline="") as file:
                rows = [(row[0], int(row[1])) for row in list(csv.reader(file))[1:]]
            assert len(rows) == part.rows
            if window is None:
                outside += part.rows
                continue
            assert now <= window.start < window.end
            assert fields.end_timestamp is None or window.end <= fields.end_timestamp
            for number, index in rows:
                zones = time_zones(destination_number(number))
                assert zones, "a row with no time zone was sent"
                assert set(zones) <= set(part.group)
                assert inside(zones, parsed, window.start, window.end)
                assert destination_number(number) not in blocked
                sent.append(index)
    removals = router.removals
    assert len(sent) == len(set(sent))
    assert len(sent) + removals.suppressed + removals.unplaceable + outside == len(numbers)
    assert removals.suppressed == sum(1 for n in numbers if destination_number(n) in blocked)
