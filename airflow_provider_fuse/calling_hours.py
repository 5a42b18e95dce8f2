"""Local calling hours: in which time zones a number may ring, and when every one of them allows a call.

A destination's number says where its callee may be: :func:`time_zones` looks it up by prefix in the
numbering-plan time zones of Google's libphonenumber (the ``phonenumbers`` package).
:func:`calling_window` then finds the first interval in which the local time of every such zone is
inside :class:`CallingHours`. Nothing here knows CSV, HTTP or Airflow; ``phonenumbers`` is imported on
first use, never when a DAG is parsed.
"""

from __future__ import annotations

import datetime
import functools
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from airflow_provider_fuse.exceptions import FuseValidationError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

__all__ = [
    "HORIZON_DAYS",
    "ON_UNKNOWN_TIME_ZONE",
    "CallingHours",
    "Window",
    "calling_window",
    "country_time_zones",
    "time_zones",
]

#: What to do with a number :func:`time_zones` cannot place: ``fail`` the task before anything is
#: sent, ``skip`` the row (counted), or call it in the strictest window of every zone of its
#: ``country`` (:func:`country_time_zones`).
ON_UNKNOWN_TIME_ZONE: tuple[str, ...] = ("fail", "skip", "country")

#: How many days after its ``start`` :func:`calling_window` looks for a window when no ``end`` is given.
HORIZON_DAYS = 7

_PARAMETER = "calling_hours"
_DAY = datetime.timedelta(days=1)


def _shown(value: object) -> str:
    """The parameter's own value for an error message: quoted when too short to be a phone number."""
    if isinstance(value, str) and len(value) < 8:
        return repr(value)
    return (
        f"a {type(value).__name__} of {len(value)} characters"
        if isinstance(value, str)
        else f"a {type(value).__name__}"
    )


def _time_of_day(value: object) -> datetime.time:
    if isinstance(value, datetime.time):
        if value.tzinfo is not None:
            raise FuseValidationError(
                _PARAMETER, f"{value.isoformat()} has a time zone; give local wall-clock times"
            )
        if value.second or value.microsecond:
            raise FuseValidationError(_PARAMETER, f"{value.isoformat()} is not a whole minute")
        return value
    if isinstance(value, str):
        hours, colon, minutes = value.partition(":")
        if (
            colon
            and len(hours) == 2
            and len(minutes) == 2
            and (hours + minutes).isascii()
            and (hours + minutes).isdigit()
            and int(hours) < 24
            and int(minutes) < 60
        ):
            return datetime.time(int(hours), int(minutes))
    raise FuseValidationError(
        _PARAMETER, f"{_shown(value)} is not a local time of day, HH:MM from 00:00 to 23:59"
    )


@dataclass(frozen=True)
class CallingHours:
    """The local hours in which a callee may be called: from ``start`` (included) to ``end`` (excluded).

    Both are whole minutes of one local day, ``start`` before ``end``: hours that cross midnight or end
    at 24:00 are not accepted (end at 23:59 instead).
    """

    start: datetime.time
    end: datetime.time

    def __post_init__(self) -> None:
        _time_of_day(self.start)
        _time_of_day(self.end)
        if not self.start < self.end:
            raise FuseValidationError(
                _PARAMETER,
                f"start {self.start:%H:%M} must be before end {self.end:%H:%M} of the same local day "
                "(hours across midnight are not supported)",
            )

    @classmethod
    def parse(cls, value: object) -> CallingHours:
        """``value`` as calling hours: a pair (tuple or list) of ``"HH:MM"`` strings or
        :class:`datetime.time` values, such as ``("08:00", "21:00")``, or a :class:`CallingHours`.

        :raises FuseValidationError: (parameter ``calling_hours``) when ``value`` is not such a pair,
            a time is not a whole minute of 00:00 to 23:59, or ``start`` is not before ``end``. The
            message quotes nothing but (short) parts of ``value`` itself.
        """
        if isinstance(value, CallingHours):
            return value
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise FuseValidationError(
                _PARAMETER, f"expected a pair of local times such as ('08:00', '21:00'), got {_shown(value)}"
            )
        return cls(_time_of_day(value[0]), _time_of_day(value[1]))

    def describe(self) -> str:
        """The hours in words, such as ``08:00-21:00 local time``."""
        return f"{self.start:%H:%M}-{self.end:%H:%M} local time"


# --- time zones of a number ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Country:
    code: str
    zones: tuple[str, ...]  # every zone of the country calling code
    shortest: int  # the length of its shortest finer prefix (0: it has none)
    # Whether a finer prefix places a number whatever its type. True in North America, where an area
    # code belongs to one state, province or country, and where the country has one zone anyway;
    # elsewhere libphonenumber places only geographic numbers (fixed lines, and mobiles in a few
    # countries) by prefix, and the rest at the country level.
    any_type: bool


@dataclass(frozen=True)
class _Index:
    countries: Mapping[str, _Country]
    # Every prefix from a country's shortest finer prefix to each finer prefix: the zones of the
    # longest finer prefix it starts with (None: none yet), and whether a longer one may follow. A
    # lookup walks it from the shortest length down, so a North American number takes one step.
    nodes: Mapping[str, tuple[tuple[str, ...] | None, bool]]


_index: _Index | None = None
_index_lock = threading.Lock()


def _build_index() -> _Index:
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE
    from phonenumbers.tzdata import TIMEZONE_DATA

    codes = {str(code) for code in COUNTRY_CODE_TO_REGION_CODE}
    finer: dict[str, list[str]] = {}
    for prefix in TIMEZONE_DATA:
        code = next((prefix[:n] for n in (1, 2, 3) if prefix[:n] in codes), None)
        if code is not None and len(prefix) > len(code):
            finer.setdefault(code, []).append(prefix)
    countries = {}
    nodes: dict[str, tuple[tuple[str, ...] | None, bool]] = {}
    for code in codes:
        zones = TIMEZONE_DATA.get(code, ())
        prefixes = finer.get(code, [])
        shortest = min(map(len, prefixes), default=0)
        countries[code] = _Country(code, zones, shortest, any_type=code == "1" or len(zones) <= 1)
        for prefix in prefixes:
            for length in range(shortest, len(prefix) + 1):
                node = prefix[:length]
                best = next(
                    (
                        TIMEZONE_DATA[node[:n]]
                        for n in range(length, shortest - 1, -1)
                        if node[:n] in TIMEZONE_DATA
                    ),
                    None,
                )
                nodes[node] = (best, nodes.get(node, (None, False))[1] or length < len(prefix))
    return _Index(countries, nodes)


def _the_index() -> _Index:
    global _index
    if _index is None:
        with _index_lock:
            if _index is None:
                _index = _build_index()
    return _index


def _country(digits: str, index: _Index) -> _Country | None:
    countries = index.countries
    return countries.get(digits[:1]) or countries.get(digits[:2]) or countries.get(digits[:3])


@functools.cache
def _geographic_patterns(code: str) -> re.Pattern[str]:
    """A pattern every national number of country calling code ``code`` that has a place fully
    matches: the fixed-line patterns of each region of the code, and their mobile patterns where
    libphonenumber places mobiles. libphonenumber calls a number of no other type geographic."""
    from phonenumbers import (
        COUNTRY_CODE_TO_REGION_CODE,
        PhoneMetadata,
        PhoneNumberType,
        is_number_type_geographical,
    )

    calling_code = int(code)
    mobiles = is_number_type_geographical(PhoneNumberType.MOBILE, calling_code)
    patterns = []
    for region in COUNTRY_CODE_TO_REGION_CODE.get(calling_code, ()):
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(calling_code, region)
        if metadata is None:
            continue
        for desc in (metadata.fixed_line, metadata.mobile if mobiles else None):
            if desc is not None and desc.national_number_pattern:
                patterns.append(f"(?:{desc.national_number_pattern})")
    return re.compile("|".join(patterns) or "(?!)")


def _is_geographic(digits: str, country: _Country) -> bool:
    """Whether libphonenumber's metadata makes ``digits`` a valid number of a type that has a place
    (a fixed line, or a mobile where mobiles are placed): its own test, without parsing text."""
    national = digits[len(country.code) :]
    if _geographic_patterns(country.code).fullmatch(national) is None:
        return False  # no such type's pattern matches: its type cannot be one with a place
    from phonenumbers import PhoneNumber, PhoneNumberType, is_number_type_geographical, number_type

    zeros = len(national) - len(national.lstrip("0"))
    number = PhoneNumber(
        country_code=int(country.code),
        national_number=int(national or "0"),
        italian_leading_zero=zeros > 0 or None,
        number_of_leading_zeros=zeros if zeros > 1 else None,
    )
    kind = number_type(number)
    return kind != PhoneNumberType.UNKNOWN and bool(is_number_type_geographical(kind, int(country.code)))


def time_zones(number: int) -> tuple[str, ...]:
    """The IANA time zones in which ``number`` may ring; ``()`` when the numbering plan does not say.

    ``number`` is the integer of a number's E.164 digits, country code first, as
    :func:`~airflow_provider_fuse.destinations.destination_number` gives it (``16175551234``).

    The answer is that of the longest prefix of the number under its country code in libphonenumber's
    time-zone data (a North American area code, such as ``1617``, or a finer range, such as
    ``1208201``): the zones listed there, one or more. Where that prefix leaves more than one zone of
    the country possible, the number is placed the way libphonenumber places it:

    * in North America (country code ``1``) by its area code, whatever its type: an area code belongs
      to one state, province or country (libphonenumber itself gives the types it does not place,
      such as a Jamaican mobile, every zone of ``1``);
    * elsewhere only when libphonenumber's metadata makes it a valid number of a type it places
      (fixed lines, and mobiles in the few countries whose mobiles it places); any other, such as a
      Russian or Australian mobile, is unknown, as it is to libphonenumber, which gives it the whole
      country.

    A number that no prefix finer than its country code places is in its country's zone when the
    country has one; when the country has several (the ``1`` of North America lists Guam to Halifax)
    it is unknown: ``()``. So is a number without a country calling code. The number's length and
    digits are not otherwise checked: an invalid number under a placed prefix gets that prefix's
    zones.
    """
    index = _index or _the_index()
    digits = str(number)
    country = _country(digits, index)
    if country is None:
        return ()
    nodes = index.nodes
    zones: tuple[str, ...] | None = None
    length = country.shortest
    node = nodes.get(digits[:length]) if length else None
    while node is not None:
        if node[0] is not None:
            zones = node[0]
        if not node[1] or length >= len(digits):
            break
        length += 1
        node = nodes.get(digits[:length])
    if zones is not None and (country.any_type or zones == country.zones or _is_geographic(digits, country)):
        return zones
    return country.zones if len(country.zones) == 1 else ()


def country_time_zones(number: int) -> tuple[str, ...]:
    """Every time zone of ``number``'s country calling code (the ``country`` policy of
    :data:`ON_UNKNOWN_TIME_ZONE`); ``()`` when the number has no country calling code, or its code is
    not in one country (such as the international freephone ``800``).

    ``number`` is as for :func:`time_zones`.
    """
    country = _country(str(number), _the_index())
    return () if country is None else country.zones


# --- calling windows ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """An interval of time in unix seconds (UTC): from ``start`` (included) to ``end`` (excluded)."""

    start: int
    end: int


def _instant(day: datetime.date, time: datetime.time, zone: ZoneInfo, *, later: bool) -> int:
    """The unix second at which the wall clock of ``zone`` shows ``time`` on ``day``.

    A wall time that occurs twice (a fold) gives its ``later`` or its earlier instant; one that never
    occurs (a gap) gives the instant the gap ends, the first at which the wall clock shows ``time`` or
    later.
    """
    wall = datetime.datetime.combine(day, time)
    first = int(wall.replace(tzinfo=zone, fold=0).timestamp())
    second = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    if first == second or first < second:  # one instant, or a fold: (earlier, later)
        return second if later else first
    # A gap: fold=0 reads the wall time with the offset before it, fold=1 with the one after, so the
    # gap ends in (second, first]; find its end, the first instant with the later offset.
    before = _offset(second, zone)
    low, high = second, first
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(middle, zone) == before:
            low = middle
        else:
            high = middle
    return high


def _offset(instant: int, zone: ZoneInfo) -> datetime.timedelta | None:
    return datetime.datetime.fromtimestamp(instant, zone).utcoffset()


def _day_windows(zone: ZoneInfo, hours: CallingHours, since: int) -> Iterator[tuple[int, int]]:
    """The windows of ``hours`` in ``zone``, one per local day, in order, from the one that ends
    after ``since``; days whose window is empty (a gap swallowed it) are left out."""
    day = datetime.datetime.fromtimestamp(since, zone).date() - _DAY
    while True:
        start = _instant(day, hours.start, zone, later=True)
        end = _instant(day, hours.end, zone, later=False)
        if start < end and end > since:
            yield start, end
        day += _DAY


def calling_window(
    zones: Sequence[str], hours: CallingHours, *, start: int, end: int | None
) -> Window | None:
    """The first interval at or after ``start`` (and before ``end``, when given) in which the local time
    in every zone of ``zones`` is inside ``hours``: the strictest window of those zones.

    In each zone a local day's window runs from the instant its wall clock shows ``hours.start`` to
    the instant it shows ``hours.end``; where a clock change makes a wall time occur twice, the window
    starts at the later instant and ends at the earlier one, and where it makes a wall time never
    occur, at the instant the clock jumps past it. So no instant of a window is outside ``hours`` in
    any zone. The answer is the earliest interval common to every zone's day windows, cut to
    ``[start, end)``; when today's common window is empty or over, the next day's is taken, if it
    begins before ``end``.

    :param zones: IANA zone names (one or more), as :func:`time_zones` gives them.
    :param start: unix seconds, the earliest instant a call may be made.
    :param end: unix seconds, the instant by which calls must be over (excluded); ``None`` looks
        :data:`HORIZON_DAYS` days ahead of ``start``.
    :return: the window, or ``None`` when there is none before ``end`` (or within the horizon).
    :raises ValueError: when ``zones`` is empty.
    :raises zoneinfo.ZoneInfoNotFoundError: when a zone is not in the time-zone database.
    """
    if not zones:
        raise ValueError("calling_window needs at least one time zone")
    limit = start + HORIZON_DAYS * 86_400 if end is None else end
    cursor = start
    days = [_day_windows(ZoneInfo(zone), hours, start) for zone in dict.fromkeys(zones)]
    current = [next(windows) for windows in days]
    while cursor < limit:
        for i, windows in enumerate(days):
            while current[i][1] <= cursor:
                current[i] = next(windows)
        low = max(cursor, *(window[0] for window in current))
        high = min(window[1] for window in current)
        if low >= limit:
            return None
        if low < high:
            return Window(low, min(high, limit))
        cursor = low
    return None
