"""Local calling hours: which zones a number may ring in, and windows that keep every call inside hours."""

from __future__ import annotations

import datetime
import subprocess
import sys
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from phonenumbers.timezone import time_zones_for_number
from phonenumbers.tzdata import TIMEZONE_DATA

from airflow_provider_fuse.calling_hours import (
    HORIZON_DAYS,
    ON_UNKNOWN_TIME_ZONE,
    CallingHours,
    Window,
    calling_window,
    country_time_zones,
    time_zones,
)
from airflow_provider_fuse.exceptions import FuseValidationError

TCPA = CallingHours.parse(("08:00", "21:00"))
ALL_ZONES = sorted({zone for zones in TIMEZONE_DATA.values() for zone in zones})
COUNTRY_CODES = {str(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE}


def unix(text: str) -> int:
    return int(datetime.datetime.fromisoformat(text).timestamp())


def local(instant: int, zone: str) -> str:
    return datetime.datetime.fromtimestamp(instant, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


# --- CallingHours -------------------------------------------------------------------------------


def test_calling_hours_parse_a_pair_of_local_times():
    hours = CallingHours.parse(("08:00", "21:00"))
    assert hours == CallingHours(datetime.time(8), datetime.time(21))
    assert CallingHours.parse(["08:00", "21:00"]) == hours
    assert CallingHours.parse((datetime.time(8), datetime.time(21))) == hours
    assert CallingHours.parse(hours) is hours
    assert hours.describe() == "08:00-21:00 local time"


@pytest.mark.parametrize(
    "value",
    [
        "08:00-21:00",
        ("08:00",),
        ("08:00", "21:00", "22:00"),
        ("8:00", "21:00"),
        ("08:00", "24:00"),
        ("08:60", "21:00"),
        ("08:00", "21:00:00"),
        ("\u0660\u0668:00", "21:00"),  # Arabic-Indic digits
        ("21:00", "08:00"),  # across midnight
        ("08:00", "08:00"),
        (datetime.time(8, 0, 30), datetime.time(21)),
        (datetime.time(8, tzinfo=datetime.UTC), datetime.time(21)),
        (8, 21),
        None,
    ],
)
def test_calling_hours_refuse_what_is_not_two_whole_minutes_of_one_day_in_order(value):
    with pytest.raises(FuseValidationError) as raised:
        CallingHours.parse(value)
    assert raised.value.parameter == "calling_hours"


def test_a_calling_hours_error_does_not_repeat_a_long_value():
    with pytest.raises(FuseValidationError) as raised:
        CallingHours.parse(("tel:+16175551234", "21:00"))
    assert "6175551234" not in str(raised.value)


@given(st.integers(0, 24 * 60 - 1), st.integers(0, 24 * 60 - 1))
def test_calling_hours_accept_every_ordered_pair_of_minutes(first, second):
    start, end = sorted((first, second))
    pair = (f"{start // 60:02}:{start % 60:02}", f"{end // 60:02}:{end % 60:02}")
    if start == end:
        with pytest.raises(FuseValidationError):
            CallingHours.parse(pair)
    else:
        hours = CallingHours.parse(pair)
        assert hours.describe() == f"{pair[0]}-{pair[1]} local time"


# --- time zones of a number ---------------------------------------------------------------------


def test_the_unknown_time_zone_policies():
    assert ON_UNKNOWN_TIME_ZONE == ("fail", "skip", "country")


def test_a_north_american_number_is_in_its_area_codes_zone():
    assert time_zones(16175551234) == ("America/New_York",)
    assert time_zones(14155551234) == ("America/Los_Angeles",)


def test_an_area_code_across_zones_gives_them_all_and_a_finer_prefix_narrows_it():
    assert time_zones(12085551234) == ("America/Boise", "America/Los_Angeles")
    assert time_zones(12082011234) == ("America/Denver",)


def test_a_number_only_its_country_code_places_is_unknown_unless_the_country_has_one_zone():
    assert time_zones(18005551234) == ()  # toll free: only "1", Guam to Halifax
    assert len(country_time_zones(18005551234)) > 30
    assert time_zones(33612345678) == ("Europe/Paris",)


def test_a_number_of_a_type_libphonenumber_does_not_place_is_unknown_outside_north_america():
    assert time_zones(73832123456) == ("Asia/Novosibirsk",)  # a fixed line in Novosibirsk
    assert time_zones(79161234567) == ()  # a mobile: the data's "79" lists Moscow only
    assert "Asia/Vladivostok" in country_time_zones(79161234567)
    assert time_zones(18765551234) == ("America/Jamaica",)  # a mobile of Jamaica's area code


def test_a_number_of_an_unplaced_type_is_in_its_countrys_zones_when_they_keep_one_clock():
    """+44 lists London, Guernsey, the Isle of Man and Jersey, which keep one clock: a UK mobile is in
    those four zones (libphonenumber's own answer), not unknown. Where the zones keep different
    clocks (Russia, Australia, North America) such a number stays unknown."""
    uk_mobile = int(e164(phonenumbers.example_number_for_type("GB", phonenumbers.PhoneNumberType.MOBILE)))
    assert time_zones(uk_mobile) == country_time_zones(uk_mobile)
    assert "Europe/London" in time_zones(uk_mobile)
    assert len(time_zones(uk_mobile)) > 1
    au_mobile = int(e164(phonenumbers.example_number_for_type("AU", phonenumbers.PhoneNumberType.MOBILE)))
    assert time_zones(au_mobile) == ()
    assert time_zones(79161234567) == ()
    assert time_zones(18005551234) == ()


def test_zones_keep_one_clock_only_when_their_offsets_agree_at_every_change_ahead():
    from airflow_provider_fuse.calling_hours import _one_clock

    assert _one_clock(("Europe/London", "Europe/Jersey", "Europe/Guernsey", "Europe/Isle_of_Man"))
    assert _one_clock(("Europe/London", "Europe/Dublin"))  # Irish "winter time" is still UTC+0
    # The same offset half the year, not the other half: the changes ahead are compared too.
    assert not _one_clock(("America/Phoenix", "America/Denver"))
    assert not _one_clock(("Europe/London", "Atlantic/Reykjavik"))
    assert not _one_clock(("Europe/Moscow", "Asia/Vladivostok"))


def test_a_number_without_a_country_is_unknown_even_to_the_country_policy():
    assert time_zones(80012345678) == ()  # +800, international freephone
    assert country_time_zones(80012345678) == ()


def test_importing_the_module_does_not_import_phonenumbers():
    # What the module imports first (Airflow, through the exceptions) may load phonenumbers itself:
    # Airflow 3.1's sqlalchemy_utils does. Only what this module adds is its own.
    code = (
        "import sys, airflow_provider_fuse.exceptions; before = 'phonenumbers' in sys.modules; "
        "import airflow_provider_fuse.calling_hours; print(before, 'phonenumbers' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = result.stdout.splitlines()[-1].split()
    if before == "True":
        pytest.skip("this Airflow imports phonenumbers itself (sqlalchemy_utils)")
    assert after == "False"


def test_a_number_as_short_as_its_country_code_is_unknown():
    assert time_zones(243) == ()
    assert time_zones(1208) == ()  # a prefix with finer ones under it, and nothing after it


def e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


def valid(digits: str) -> bool:
    """Whether ``digits`` are a valid number to libphonenumber, written that way in E.164."""
    try:
        number = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(number) and e164(number) == digits


def country_code(digits: str) -> str:
    return next(digits[:n] for n in (1, 2, 3) if digits[:n] in COUNTRY_CODES)


def agrees_with_libphonenumber(digits: str) -> None:
    """The prefix lookup gives libphonenumber's own answer for a valid number, but where it differs on
    purpose: "unknown" for a number libphonenumber puts in every zone of its country when those zones
    keep different clocks (a country whose zones keep one clock, such as the UK's four, gets them all,
    as from libphonenumber), and a North American number's area code whatever its type."""
    from airflow_provider_fuse.calling_hours import _one_clock

    number = phonenumbers.parse("+" + digits)
    theirs = tuple(time_zones_for_number(number))
    ours = time_zones(int(digits))
    country = TIMEZONE_DATA.get(country_code(digits), ())
    if ours == ():
        assert (theirs == country and len(country) > 1) or theirs == ("Etc/Unknown",), (digits, theirs)
        assert theirs == ("Etc/Unknown",) or not _one_clock(country), digits
    elif country_code(digits) == "1" and theirs == country:
        kind = phonenumbers.number_type(number)
        assert not phonenumbers.is_number_type_geographical(kind, 1), digits
        assert set(ours) < set(country), digits
    else:
        assert ours == theirs, digits


@settings(max_examples=500, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(st.sampled_from(sorted(TIMEZONE_DATA)), st.integers(8, 15), st.randoms(use_true_random=False))
def test_the_prefix_lookup_agrees_with_libphonenumber_on_valid_numbers_under_its_prefixes(
    prefix, length, rnd
):
    assume(length > len(prefix))
    digits = prefix + "".join(rnd.choice("0123456789") for _ in range(length - len(prefix)))
    assume(valid(digits))
    agrees_with_libphonenumber(digits)


REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
TYPES = [t for t in vars(phonenumbers.PhoneNumberType).values() if isinstance(t, int) and t != 99]


@settings(max_examples=500, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(st.sampled_from(REGIONS), st.sampled_from(TYPES), st.integers(0, 4), st.randoms(use_true_random=False))
def test_the_prefix_lookup_agrees_with_libphonenumber_on_every_type_of_every_region(region, kind, tail, rnd):
    example = phonenumbers.example_number_for_type(region, kind)
    assume(example is not None)
    digits = e164(example)
    digits = digits[: len(digits) - tail] + "".join(rnd.choice("0123456789") for _ in range(tail))
    assume(valid(digits))
    agrees_with_libphonenumber(digits)


# --- calling windows: examples ------------------------------------------------------------------


def test_a_national_list_at_nine_eastern_calls_california_from_eight_pacific():
    nine_eastern = unix("2025-06-02T09:00:00-04:00")
    east = calling_window(["America/New_York"], TCPA, start=nine_eastern, end=None)
    west = calling_window(["America/Los_Angeles"], TCPA, start=nine_eastern, end=None)
    assert east == Window(nine_eastern, unix("2025-06-02T21:00:00-04:00"))
    assert west is not None
    assert (local(west.start, "America/Los_Angeles"), local(west.end, "America/Los_Angeles")) == (
        "2025-06-02 08:00",
        "2025-06-02 21:00",
    )


def test_arizona_keeps_standard_time_while_denver_is_on_summer_time():
    day = unix("2025-07-01T12:00:00+00:00")  # before 08:00 in both
    phoenix = calling_window(["America/Phoenix"], TCPA, start=day, end=None)
    denver = calling_window(["America/Denver"], TCPA, start=day, end=None)
    both = calling_window(["America/Phoenix", "America/Denver"], TCPA, start=day, end=None)
    assert phoenix is not None
    assert denver is not None
    assert denver.start == phoenix.start - 3600
    assert both == Window(phoenix.start, denver.end)


def test_a_split_area_code_takes_the_strictest_window_of_its_zones():
    day = unix("2025-01-15T12:00:00+00:00")  # before 08:00 in both
    boise = calling_window(time_zones(12085551234), TCPA, start=day, end=None)  # Boise and Los Angeles
    assert boise is not None
    assert (local(boise.start, "America/Los_Angeles"), local(boise.end, "America/Boise")) == (
        "2025-01-15 08:00",
        "2025-01-15 21:00",
    )
    indiana = ["America/Chicago", "America/New_York"]
    window = calling_window(indiana, TCPA, start=day, end=None)
    assert window is not None
    assert (local(window.start, "America/Chicago"), local(window.end, "America/New_York")) == (
        "2025-01-15 08:00",
        "2025-01-15 21:00",
    )


def test_zones_whose_hours_never_overlap_have_no_window():
    office = CallingHours.parse(("09:00", "17:00"))
    start = unix("2025-06-02T00:00:00+00:00")
    assert calling_window(["Pacific/Guam", "America/Halifax"], office, start=start, end=None) is None
    assert (
        calling_window(["Pacific/Guam", "America/Halifax"], office, start=start, end=start + 30 * 86_400)
        is None
    )


def test_a_window_that_is_over_today_continues_tomorrow_if_the_end_allows():
    ten_pm = unix("2025-06-02T22:00:00-04:00")
    tomorrow = calling_window(["America/New_York"], TCPA, start=ten_pm, end=None)
    assert tomorrow == Window(unix("2025-06-03T08:00:00-04:00"), unix("2025-06-03T21:00:00-04:00"))
    assert (
        calling_window(["America/New_York"], TCPA, start=ten_pm, end=unix("2025-06-03T08:00:00-04:00"))
        is None
    )
    cut = calling_window(["America/New_York"], TCPA, start=ten_pm, end=unix("2025-06-03T12:00:00-04:00"))
    assert cut == Window(unix("2025-06-03T08:00:00-04:00"), unix("2025-06-03T12:00:00-04:00"))


def test_a_start_in_the_spring_gap_is_the_instant_after_it():
    hours = CallingHours.parse(("02:30", "21:00"))
    window = calling_window(["America/New_York"], hours, start=unix("2025-03-09T00:00:00-05:00"), end=None)
    assert window is not None
    assert window.start == unix("2025-03-09T03:00:00-04:00")


def test_an_ambiguous_start_is_the_later_instant_and_an_ambiguous_end_the_earlier():
    night = unix("2025-11-02T00:00:00-04:00")
    late = calling_window(["America/New_York"], CallingHours.parse(("01:30", "21:00")), start=night, end=None)
    assert late is not None
    assert late.start == unix("2025-11-02T01:30:00-05:00")
    early = calling_window(
        ["America/New_York"], CallingHours.parse(("00:00", "01:30")), start=night, end=None
    )
    assert early == Window(night, unix("2025-11-02T01:30:00-04:00"))


def test_a_day_that_never_happened_has_no_window():
    # Samoa skipped 30 December 2011, moving across the date line.
    start = unix("2011-12-29T22:00:00-10:00")
    window = calling_window(["Pacific/Apia"], TCPA, start=start, end=None)
    assert window is not None
    assert local(window.start, "Pacific/Apia") == "2011-12-31 08:00"


def test_calling_window_needs_a_zone():
    with pytest.raises(ValueError, match="time zone"):
        calling_window([], TCPA, start=0, end=None)


# --- calling windows: properties ----------------------------------------------------------------


def offset(instant: int, zone: str) -> datetime.timedelta | None:
    return datetime.datetime.fromtimestamp(instant, ZoneInfo(zone)).utcoffset()


def transitions(zone: str, start: int, end: int, step: int = 1800) -> list[int]:
    """The instants in ``[start, end)`` at which ``zone``'s UTC offset changes (the first instant of
    the new offset), assuming none closer together than ``step``."""
    found = []
    previous = start
    for instant in [*range(start + step, end, step), end]:
        if offset(instant, zone) != offset(previous, zone):
            low, high = previous, instant
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (
                    (middle, high) if offset(middle, zone) == offset(previous, zone) else (low, middle)
                )
            found.append(high)
        previous = instant
    return found


def inside(instant: int, zone: str, hours: CallingHours) -> bool:
    return hours.start <= datetime.datetime.fromtimestamp(instant, ZoneInfo(zone)).time() < hours.end


def ambiguous(instant: int, zone: str) -> bool:
    wall = datetime.datetime.fromtimestamp(instant, ZoneInfo(zone))
    return wall.replace(fold=1 - wall.fold).timestamp() != instant


def day_starts(zone: str, hours: CallingHours, start: int, end: int) -> list[int]:
    """Every instant in ``[start, end)`` at which ``zone``'s wall clock shows ``hours.start``, or passes
    it in a gap."""
    found = []
    day = datetime.datetime.fromtimestamp(start, ZoneInfo(zone)).date() - datetime.timedelta(days=1)
    while True:
        wall = datetime.datetime.combine(day, hours.start)
        instants = [int(wall.replace(tzinfo=ZoneInfo(zone), fold=fold).timestamp()) for fold in (0, 1)]
        if min(instants) >= end:
            return found
        found += [instant for instant in instants if start <= instant < end]
        day += datetime.timedelta(days=1)


def earlier_candidates(zones: list[str], hours: CallingHours, start: int, until: int) -> set[int]:
    """The instants in ``[start, until)`` at which an interval inside hours in every zone could begin."""
    candidates = {start}
    for zone in zones:
        candidates.update(day_starts(zone, hours, start, until))
        candidates.update(transitions(zone, start, until))
    return {c for c in candidates if start <= c < until}


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[str], CallingHours, int, int | None]:
    zones = draw(st.lists(st.sampled_from(ALL_ZONES), min_size=1, max_size=4, unique=True))
    year = draw(st.integers(1971, 2099))
    base = unix(f"{year}-01-01T00:00:00+00:00") + draw(st.integers(0, 365 * 86_400))
    pivot = base
    near = transitions(zones[0], base - 200 * 86_400, base + 200 * 86_400, step=86_400)
    if near and draw(st.booleans()):
        pivot = draw(st.sampled_from(near))  # a clock change: start near it, hours around its wall times
        base = pivot + draw(st.integers(-36 * 3600, 36 * 3600))
    walls = [datetime.datetime.fromtimestamp(pivot + d, ZoneInfo(zones[0])) for d in (-1, 0)]
    around = st.sampled_from([w.hour * 60 + w.minute for w in walls]).flatmap(
        lambda m: st.integers(-90, 90).map(lambda d: m + d)
    )
    minutes = st.one_of(st.integers(0, 24 * 60 - 1), around)
    first, second = draw(minutes) % 1440, draw(minutes) % 1440
    assume(first != second)
    first, second = sorted((first, second))
    hours = CallingHours(datetime.time(first // 60, first % 60), datetime.time(second // 60, second % 60))
    end = draw(st.none() | st.integers(base + 1, base + 10 * 86_400))
    return zones, hours, base, end


def assert_the_window_contract(zones: list[str], hours: CallingHours, start: int, end: int | None) -> None:
    window = calling_window(zones, hours, start=start, end=end)
    limit = start + HORIZON_DAYS * 86_400 if end is None else end
    if window is not None:
        # (c) within what the user gave
        assert start <= window.start < window.end <= limit
        # (a) every instant inside hours: its first and last, and both sides of every clock change
        for zone in zones:
            changes = transitions(zone, window.start, window.end)
            for instant in {window.start, window.end - 1, *changes, *(c - 1 for c in changes)}:
                if window.start <= instant < window.end:
                    assert inside(instant, zone, hours), (zone, local(instant, zone), hours.describe())
        # (b) it begins at the start or at a zone's local start of hours
        assert window.start == start or any(
            window.start in day_starts(zone, hours, window.start, window.start + 1)
            or window.start in transitions(zone, window.start - 1, window.start + 1)
            for zone in zones
        )
    until = limit if window is None else window.start
    # (b) nothing earlier is inside hours in every zone (bar a repeated wall time, which a window
    # deliberately does not begin in)
    for candidate in earlier_candidates(zones, hours, start, until):
        assert not all(inside(candidate, z, hours) and not ambiguous(candidate, z) for z in zones), (
            local(candidate, zones[0]),
            hours.describe(),
        )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_a_window_is_inside_hours_in_every_zone_and_nothing_earlier_is(case):
    assert_the_window_contract(*case)


@st.composite
def clock_changes(draw: st.DrawFn) -> tuple[list[str], CallingHours, int, int | None]:
    """One zone, a start shortly before one of its clock changes, and hours that begin or end in the
    wall times the change skips or repeats."""
    zone = draw(st.sampled_from(ALL_ZONES))
    year = draw(st.integers(1971, 2099))
    new_year = unix(f"{year}-01-01T00:00:00+00:00")
    changes = transitions(zone, new_year, new_year + 365 * 86_400, 86_400)
    assume(changes)
    change = draw(st.sampled_from(changes))
    walls = sorted(datetime.datetime.fromtimestamp(change + d, ZoneInfo(zone)) for d in (-1, 0))
    low = walls[0].hour * 60 + walls[0].minute
    high = walls[1].hour * 60 + walls[1].minute if walls[0].date() == walls[1].date() else 1439
    inside_change = draw(st.integers(low, max(low, high)))
    other = draw(st.integers(0, 1439))
    assume(inside_change != other)
    first, second = sorted((inside_change, other))
    hours = CallingHours(datetime.time(first // 60, first % 60), datetime.time(second // 60, second % 60))
    start = change - draw(st.integers(0, 30 * 3600))
    end = draw(st.none() | st.integers(start + 1, start + 3 * 86_400))
    return [zone], hours, start, end


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clock_changes())
def test_a_clock_change_never_puts_a_call_outside_hours_nor_delays_one(case):
    assert_the_window_contract(*case)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(ALL_ZONES),
    st.integers(unix("1971-01-01T00:00:00+00:00"), unix("2099-12-31T00:00:00+00:00")),
)
def test_one_zone_always_has_a_window_within_two_days(zone, start):
    window = calling_window([zone], TCPA, start=start, end=None)
    assert window is not None
    assert window.start < start + 2 * 86_400
