"""Request-field validation: every rule Fuse documents, each naming its parameter."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_fuse.exceptions import FuseValidationError
from airflow_provider_fuse.fields import (
    TIMESTAMP_RANGE,
    QueueFields,
    to_call_parameters,
    to_phone_number,
    to_positive_id,
    to_unix_timestamp,
)
from airflow_provider_fuse.masking import redact

NOW = 1_800_000_000  # 2027-01-15


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_800_000_000, 1_800_000_000),
        (1_800_000_000.9, 1_800_000_000),
        ("1800000000", 1_800_000_000),
        (" 1800000000.5 ", 1_800_000_000),
        (datetime(2026, 11, 26, tzinfo=timezone.utc), 1_795_651_200),
        (datetime(2026, 11, 26, 1, tzinfo=timezone(timedelta(hours=1))), 1_795_651_200),
        ("2026-11-26 00:00:00+00:00", 1_795_651_200),
        ("2026-11-26T00:00:00+00:00", 1_795_651_200),
        ("2026-11-26T00:00:00Z", 1_795_651_200),
        ("2026-11-25T19:00:00-05:00", 1_795_651_200),
    ],
)
def test_timestamp_forms(value, expected):
    assert to_unix_timestamp("start_timestamp", value) == expected


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (datetime(2026, 11, 26), "naive"),
        ("2026-11-26 00:00:00", "naive"),
        ("", "rendered 'nothing'"),
        ("None", "rendered 'None'"),
        ("tomorrow", "neither unix seconds nor an ISO-8601"),
        (True, "bool"),
        (-5, "after 1970"),
        (float("nan"), "finite"),
        ([1], "not list"),
    ],
)
def test_bad_timestamps_are_refused_naming_the_field(value, match):
    with pytest.raises(FuseValidationError, match=match) as caught:
        to_unix_timestamp("end_timestamp", value)
    assert caught.value.parameter == "end_timestamp"
    assert str(caught.value).startswith("end_timestamp: ")


@pytest.mark.parametrize(("value", "expected"), [(1, 1), ("42", 42), (" 7 ", 7)])
def test_ids_are_positive_integers(value, expected):
    assert to_positive_id("application_id", value) == expected


@pytest.mark.parametrize("value", [0, -1, "x", "1.5", True, None, 2.0])
def test_bad_ids_are_refused(value):
    with pytest.raises(FuseValidationError) as caught:
        to_positive_id("deployment_id", value)
    assert caught.value.parameter == "deployment_id"


@pytest.mark.parametrize(
    ("kwargs", "parameter", "match"),
    [
        ({"max_attempts": 0}, "max_attempts", "between 1 and 10"),
        ({"max_attempts": 11}, "max_attempts", "between 1 and 10"),
        ({"max_attempts": "three"}, "max_attempts", "integer"),
        ({"max_attempts": 2}, "reattempt_wait", "must be supplied when max_attempts is greater than 1"),
        ({"max_attempts": 2, "reattempt_wait": 59}, "reattempt_wait", "between 60 and 86400"),
        ({"reattempt_wait": 86_401}, "reattempt_wait", "between 60 and 86400"),
        ({"start_timestamp": NOW + 100, "end_timestamp": NOW + 100}, "end_timestamp", "after start"),
        ({"end_timestamp": NOW - 1}, "end_timestamp", "already past"),
        ({"result_url": "example.com/x"}, "result_url", "absolute http"),
        ({"result_url": "ftp://example.com/x"}, "result_url", "absolute http"),
        ({"result_url": "https://"}, "result_url", "absolute http"),
        ({"is_pci": 2}, "is_pci", "bool or 0/1"),
        ({"is_pci": "1"}, "is_pci", "bool or 0/1"),
    ],
)
def test_each_rule_names_its_parameter(kwargs, parameter, match):
    with pytest.raises(FuseValidationError, match=match) as caught:
        QueueFields.validate(now=NOW, **kwargs)
    assert caught.value.parameter == parameter


def test_form_fields_hold_only_what_was_given_as_decimal_strings():
    fields = QueueFields.validate(
        start_timestamp=NOW + 60,
        end_timestamp=f"{NOW + 3600}",
        max_attempts="3",
        reattempt_wait=300,
        result_url="https://example.com/results",
        is_pci=1,
        now=NOW,
    )
    assert fields.form_fields() == {
        "start_timestamp": str(NOW + 60),
        "end_timestamp": str(NOW + 3600),
        "max_attempts": "3",
        "reattempt_wait": "300",
        "result_url": "https://example.com/results",
        "is_pci": "1",
    }
    assert QueueFields.validate(now=NOW).form_fields() == {}
    assert QueueFields.validate(is_pci=False, now=NOW).form_fields() == {"is_pci": "0"}


def test_one_attempt_needs_no_reattempt_wait():
    assert QueueFields.validate(max_attempts=1, now=NOW).form_fields() == {"max_attempts": "1"}


def test_a_past_start_is_allowed_fuse_dials_at_once():
    assert QueueFields.validate(start_timestamp=NOW - 3600, now=NOW).start_timestamp == NOW - 3600


# --- Timestamps are real dates: after 1970, before 2100 ----------------------------------------------


@pytest.mark.parametrize("value", [999_999_999_999, "999999999999", 1.8e12, " 1800000000000 "])
def test_a_timestamp_in_milliseconds_is_named_as_such(value):
    with pytest.raises(FuseValidationError, match="looks like milliseconds") as caught:
        to_unix_timestamp("end_timestamp", value)
    assert caught.value.parameter == "end_timestamp"


def test_the_last_second_before_2100_is_accepted():
    assert to_unix_timestamp("end_timestamp", TIMESTAMP_RANGE[1] - 1) == 4_102_444_799


@pytest.mark.parametrize(
    "value",
    [
        TIMESTAMP_RANGE[1],
        datetime(2100, 1, 1, tzinfo=timezone.utc),
        "2150-06-01T00:00:00Z",
        10**400,
        "9" * 5000,
        1e300,
        datetime.max.replace(tzinfo=timezone(-timedelta(hours=23))),
    ],
)
def test_a_time_from_2100_on_is_refused(value):
    with pytest.raises(FuseValidationError, match="must be before 2100-01-01T00:00:00Z") as caught:
        to_unix_timestamp("start_timestamp", value)
    assert caught.value.parameter == "start_timestamp"


@pytest.mark.parametrize("value", [datetime(2100, 1, 1, tzinfo=timezone.utc), "9999-12-31T23:59:59+00:00"])
def test_a_far_date_is_not_called_milliseconds(value):
    with pytest.raises(FuseValidationError) as caught:
        to_unix_timestamp("end_timestamp", value)
    assert "milliseconds" not in str(caught.value)


@pytest.mark.parametrize(
    "value",
    [
        0,
        0.5,
        -(10**400),
        datetime(1969, 12, 31, tzinfo=timezone.utc),
        "1970-01-01T00:00:00Z",
        datetime.min.replace(tzinfo=timezone(timedelta(hours=23))),
    ],
)
def test_a_time_not_after_1970_is_refused(value):
    with pytest.raises(FuseValidationError, match="after 1970"):
        to_unix_timestamp("start_timestamp", value)


@pytest.mark.parametrize(
    "value",
    [
        "\u0661\u0668\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660",  # Arabic-Indic 1800000000
        "\uff11\uff18\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff10",  # fullwidth 1800000000
    ],
)
def test_unicode_digits_are_not_unix_seconds(value):
    with pytest.raises(FuseValidationError, match="neither unix seconds"):
        to_unix_timestamp("start_timestamp", value)


def test_unicode_digits_are_not_an_id():
    with pytest.raises(FuseValidationError, match="must be an integer"):
        to_positive_id("application_id", "\u0661\u0662")


def test_the_window_of_fields_built_directly_with_a_huge_timestamp_is_still_described():
    assert "unix seconds" in QueueFields(end_timestamp=10**20).describe_window()


_TIMESTAMP_INPUTS = st.one_of(
    st.none(),
    st.integers(),
    st.integers(min_value=-(10**13), max_value=10**13),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.from_regex(r"\A\s?[0-9]{1,16}(\.[0-9]{0,3})?\s?\Z"),
    st.datetimes(
        timezones=st.builds(
            timezone,
            st.timedeltas(
                min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
            ),
        )
    ),
    st.datetimes(
        timezones=st.builds(
            timezone,
            st.timedeltas(
                min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
            ),
        )
    ).map(datetime.isoformat),
)


@settings(max_examples=400, deadline=None)
@given(start=_TIMESTAMP_INPUTS, end=_TIMESTAMP_INPUTS)
def test_validated_fields_always_describe_their_window(start, end):
    try:
        fields = QueueFields.validate(start_timestamp=start, end_timestamp=end, check_open=False)
    except FuseValidationError:
        return
    for timestamp in (fields.start_timestamp, fields.end_timestamp):
        assert timestamp is None or TIMESTAMP_RANGE[0] <= timestamp < TIMESTAMP_RANGE[1]
    assert "→" in fields.describe_window()


# --- Times in errors, and Airflow 3's data intervals ------------------------------------------------


def _daily_run_interval() -> tuple[datetime, datetime]:
    """The data interval Airflow gives the next scheduled run of an ``@daily`` DAG (its own timetable)."""
    from airflow.timetables.base import TimeRestriction
    from airflow.timetables.trigger import CronTriggerTimetable

    timetable = CronTriggerTimetable("@daily", timezone="UTC")
    earliest = datetime.now(timezone.utc) - timedelta(days=2)
    info = timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=earliest, latest=None, catchup=True),
    )
    assert info is not None
    return info.data_interval.start, info.data_interval.end


# From 2001 on: unix seconds then have 10 digits, which no ISO time holds in a row.
@given(seconds=st.integers(1_000_000_001, TIMESTAMP_RANGE[1] - 3600))
@settings(max_examples=50, deadline=None)
def test_an_end_not_after_the_start_is_shown_as_times_not_unix_seconds(seconds):
    with pytest.raises(FuseValidationError) as caught:
        QueueFields.validate(start_timestamp=seconds, end_timestamp=seconds - 1, check_open=False)
    message = str(caught.value)
    assert str(seconds) not in message
    assert str(seconds - 1) not in message
    assert datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat() in message


def test_a_past_end_is_shown_as_times_not_unix_seconds():
    now = datetime.now(timezone.utc).timestamp()
    end = int(now) - 3600
    with pytest.raises(FuseValidationError) as caught:
        QueueFields.validate(end_timestamp=end, now=now)
    message = str(caught.value)
    assert str(end) not in message
    assert str(int(now)) not in message
    assert datetime.fromtimestamp(end, tz=timezone.utc).isoformat() in message


def test_data_interval_end_of_a_scheduled_daily_run_works_as_the_docs_use_it():
    """docs/operators.md: ``start_timestamp="{{ data_interval_end }}"``. On Airflow 3 a cron schedule's
    run has a data interval without length, due when the task runs (so a moment in the past)."""
    _start, end = _daily_run_interval()
    rendered = str(end)  # what Jinja renders for {{ data_interval_end }}
    runs_at = end.timestamp() + 5
    fields = QueueFields.validate(start_timestamp=rendered, max_attempts=1, now=runs_at)
    assert fields.start_timestamp == int(end.timestamp())
    later = str(end + timedelta(hours=10))
    assert QueueFields.validate(start_timestamp=rendered, end_timestamp=later, now=runs_at).end_timestamp


def test_an_interval_without_length_as_start_and_end_says_why():
    start, end = _daily_run_interval()
    if start != end:
        pytest.skip("this Airflow gives @daily runs a data interval with a length")
    with pytest.raises(FuseValidationError) as caught:
        QueueFields.validate(start_timestamp=str(start), end_timestamp=str(end), check_open=False)
    assert caught.value.parameter == "end_timestamp"
    assert "data_interval_start" in str(caught.value)


def test_the_queue_field_names_are_validates_keywords_in_fuses_order():
    import inspect

    from airflow_provider_fuse.fields import QUEUE_FIELD_NAMES

    keywords = [
        name
        for name in inspect.signature(QueueFields.validate).parameters
        if name not in ("now", "check_open")
    ]
    assert tuple(keywords) == QUEUE_FIELD_NAMES


def test_validating_a_fields_arguments_gives_the_same_fields_and_form():
    fields = QueueFields.validate(
        start_timestamp=NOW,
        end_timestamp=NOW + 3600,
        max_attempts=2,
        reattempt_wait=60,
        result_url="https://example.com/fuse-results",
        is_pci=False,
        check_open=False,
    )
    again = QueueFields.validate(**fields.arguments(), check_open=False)
    assert again == fields
    assert list(again.form_fields()) == list(fields.arguments())
    assert again.form_fields()["is_pci"] == "0"


# --- A value given in the wrong field is never shown (review r3) -------------------------------------

# What a template may render into a numeric field: a phone number (digits, or spelled with separators
# or a letter O), a long number, a float, or any text.
_WRONG_VALUES = st.one_of(
    st.integers(),
    st.integers(-(10**30), 10**30).map(str),
    st.from_regex(r"\+?1?[ (]?[0-9]{3}[) .-]?[0-9O]{3}[ .-]?[0-9Ol]{4}", fullmatch=True),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
# What the messages name of their own: the bounds of a timestamp, an example of one.
_FIXED_NUMBERS = (
    str(TIMESTAMP_RANGE[1]),
    "2100-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "2026-11-26T09:00:00",
)


def _refusal(check, value) -> str | None:
    try:
        check(value)
    except FuseValidationError as error:
        return str(error)
    return None


@pytest.mark.parametrize(
    "check",
    [
        lambda value: QueueFields.validate(max_attempts=value, reattempt_wait=60, now=NOW),
        lambda value: QueueFields.validate(reattempt_wait=value, now=NOW),
        lambda value: QueueFields.validate(is_pci=value, now=NOW),
        lambda value: QueueFields.validate(start_timestamp=value, now=NOW, check_open=False),
        lambda value: to_positive_id("application_id", value),
        lambda value: to_call_parameters({"name": [value]}),
        lambda value: to_call_parameters({value: None}),
    ],
    ids=["max_attempts", "reattempt_wait", "is_pci", "start_timestamp", "id", "call_parameters", "name"],
)
@given(value=_WRONG_VALUES)
def test_a_refused_value_is_described_never_shown(check, value):
    message = _refusal(check, value)
    if message is None:
        return
    shown = message
    for fixed in _FIXED_NUMBERS:
        shown = shown.replace(fixed, "")
    # No number of 7 or more digits it held, whatever separates them (see masking.redact).
    assert redact(shown) == " ".join(shown.split())
    if isinstance(value, str) and value.strip() not in ("", "None"):
        assert repr(value) not in message
        assert repr(value.strip()) not in message
        assert f"'{value.strip()}'" not in message


def test_a_phone_number_as_reattempt_wait_is_not_shown():
    with pytest.raises(FuseValidationError, match="got a number of 10 digits") as caught:
        QueueFields.validate(reattempt_wait="6175550100", now=NOW)
    assert "6175550100" not in str(caught.value)


# --- Hostile input is refused naming its parameter, never a bare error Airflow would retry (review r5)

_HUGE_INTS = st.integers(4_300, 6_000).flatmap(lambda digits: st.sampled_from([10**digits, -(10**digits)]))


def _only_refused(check, value) -> None:
    with contextlib.suppress(FuseValidationError):
        check(value)


@given(value=st.one_of(_HUGE_INTS, st.integers(), st.text(max_size=30)))
def test_a_phone_number_of_any_size_is_checked_without_a_bare_error(value):
    _only_refused(to_phone_number, value)


def test_an_int_of_thousands_of_digits_is_no_phone_number():
    with pytest.raises(FuseValidationError, match="phone_number: is not in one of Fuse's formats"):
        to_phone_number(10**5000)


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_call_parameters_nested_deeper_than_the_parser_goes_are_refused(depth, opening):
    with pytest.raises(FuseValidationError, match="call_parameters: is a string that is not a JSON object"):
        to_call_parameters(opening * depth)


@given(value=_HUGE_INTS)
def test_a_call_parameter_json_cannot_write_is_refused_so_its_fingerprint_can_be_taken(value):
    with pytest.raises(FuseValidationError, match=r"call_parameters\.a: must be a number of at most 4300"):
        to_call_parameters({"a": value})


def test_the_largest_call_parameter_json_writes_is_taken_and_fingerprinted():
    from airflow_provider_fuse.guard import Fingerprint

    largest = 10**4300 - 1
    assert to_call_parameters({"a": largest}) == {"a": largest}
    Fingerprint.of_call("6175551234", {"a": largest})


@given(name=st.text(st.characters(categories=("Cs",)), min_size=1, max_size=3))
def test_a_lone_surrogate_in_a_call_parameter_name_is_shown_escaped(name):
    with pytest.raises(FuseValidationError) as caught:
        to_call_parameters({name: []})
    str(caught.value).encode("utf-8")  # writable to any UTF-8 log
    assert "\\ud" in str(caught.value)


# Text a result_url may be rendered into: URL syntax, brackets of IPv6 hosts, ports, controls.
_URL_PIECES = st.lists(
    st.sampled_from([*"[]:@%/?#.-_ a1", "\r", "\n", "\x00", "\x7f", "99999", "::1"]), max_size=12
).map("".join)


@given(rest=_URL_PIECES, scheme=st.sampled_from(["http://", "https://", "ftp://", ""]))
def test_any_result_url_is_accepted_whole_or_refused_naming_it(rest, scheme):
    url = scheme + rest
    try:
        fields = QueueFields.validate(result_url=url, now=NOW)
    except FuseValidationError as error:
        refused = error.parameter
    else:
        refused = None
    if refused is not None:
        assert refused == "result_url"
        return
    assert fields.result_url == url
    assert not any(char in url for char in "\r\n\x00\x7f")
    parts = urlsplit(url)
    assert parts.hostname
    assert parts.port is None or 1 <= parts.port <= 65535


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://[foo]/x",
        "https://h/\r\nX: y",
        "https://h/a\nb",
        "https://h/\x00",
        "https://h:99999/",
        "https://h:0/",
        "https://h:port/",
    ],
)
def test_a_result_url_that_cannot_be_one_is_refused(url):
    with pytest.raises(FuseValidationError, match="result_url: must be an absolute http"):
        QueueFields.validate(result_url=url, now=NOW)


@pytest.mark.parametrize("url", ["https://h:443/x", "http://[::1]:8080/fuse-results", "https://h/a?b=c#d"])
def test_a_result_url_with_a_valid_port_or_ipv6_host_is_kept(url):
    assert QueueFields.validate(result_url=url, now=NOW).result_url == url
