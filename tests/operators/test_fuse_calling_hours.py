"""The bulk operator's calling hours and suppression list: whom it calls, in which part, in which window,
and what a retry or clear does once time has passed or the settings changed.

"Now" is always the real clock moved by ``time_machine`` to an hour of a day after today, never a
fixed date.
"""

from __future__ import annotations

import errno
import json
import os
import re
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
import time_machine

from airflow_provider_fuse._compat import AirflowException, AirflowFailException, AirflowSkipException
from airflow_provider_fuse.calling_hours import CallingHours, calling_window, time_zones
from airflow_provider_fuse.destinations import destination_number
from airflow_provider_fuse.fields import QueueFields
from airflow_provider_fuse.guard import LEDGER_KEY
from airflow_provider_fuse.masking import RENDERING
from tests.helpers import MemoryStore, decode_multipart
from tests.operators.test_fuse import BULK_URL, operator

NEW_YORK, LOS_ANGELES, CHICAGO = "6175551234", "4155551234", "3125551234"
#: A North American toll-free number: no area, so no time zone.
TOLL_FREE = "8005551234"
HOURS = ("08:00", "21:00")
#: A refused connection is not retried by the hook: the task's try ends there.
NO_CONNECT_RETRIES = {"hook_params": {"connect_retries": 0}}
DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _no_connect_backoff(monkeypatch):
    monkeypatch.setattr("airflow_provider_fuse.hooks.fuse.time.sleep", lambda seconds: None)


def a_day_ahead(days: int = 1) -> date:
    """A day after today (real clock), so that no test takes a fixed date for now."""
    return datetime.now(timezone.utc).date() + timedelta(days=days)


def at(zone: str, hour: int, minute: int = 0, day: date | None = None) -> datetime:
    """The instant the clock of ``zone`` shows ``hour:minute`` on ``day`` (default: tomorrow)."""
    return datetime.combine(day or a_day_ahead(), time(hour, minute), ZoneInfo(zone))


def contacts(tmp_path: Path, *destinations: str, name: str = "contacts.csv") -> Path:
    path = tmp_path / name
    path.write_text("destination,n\n" + "".join(f"{d},{i}\n" for i, d in enumerate(destinations)))
    return path


def uploads(requests_mock) -> list[dict[str, bytes]]:
    """Every bulk_queue request's form fields (``csv`` as bytes), as the answer read them."""
    return requests_mock.sent


def rows_in(upload: dict[str, bytes]) -> list[str]:
    return [line.split(",")[0] for line in upload["csv"].decode().splitlines()[1:]]


def answering(requests_mock, answer) -> None:
    """Fuse answers each request with ``answer(fields, count)``; the fields are kept in ``.sent``."""
    requests_mock.sent = []

    def reply(request, context):
        fields = {name: value for name, (value, _) in decode_multipart(request).items()}
        requests_mock.sent.append(fields)
        return answer(fields, len(requests_mock.sent))

    requests_mock.post(BULK_URL, json=reply)


def queue_every_row(requests_mock) -> None:
    answering(requests_mock, lambda fields, count: {"calls_queued": len(rows_in(fields))})


def inside_hours(number: str, start: int, end: int, hours: tuple[str, str] = HOURS) -> bool:
    """Whether ``[start, end)`` is inside the local hours of every zone ``number`` may ring in."""
    first, last = (time.fromisoformat(value) for value in hours)
    for zone in time_zones(destination_number(number)):
        opens = datetime.fromtimestamp(start, ZoneInfo(zone))
        closes = datetime.fromtimestamp(end - 1, ZoneInfo(zone))
        if opens.date() != closes.date() or opens.time() < first or closes.time() >= last:
            return False
    return True


# --- parameters, checked when the DAG is parsed --------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"calling_hours": ("21:00", "08:00")}, "calling_hours"),
        ({"calling_hours": "08:00-21:00"}, "calling_hours"),
        ({"calling_hours": HOURS, "on_unknown_time_zone": "guess"}, "on_unknown_time_zone"),
        ({"suppression_list": 6175551234}, "suppression_list"),
    ],
)
def test_a_bad_setting_is_refused_when_the_dag_is_parsed_naming_it(tmp_path, arguments, named):
    with pytest.raises(ValueError, match=named) as caught:
        operator(tmp_path / "contacts.csv", **arguments)
    assert "6175551234" not in str(caught.value)


@pytest.mark.parametrize("policy", ["skip", "country"])
def test_an_unknown_time_zone_policy_without_calling_hours_is_refused_naming_both(tmp_path, policy):
    with pytest.raises(ValueError, match="on_unknown_time_zone.*calling_hours"):
        operator(tmp_path / "contacts.csv", on_unknown_time_zone=policy)
    assert operator(tmp_path / "contacts.csv", on_unknown_time_zone="fail").calling_hours is None


def test_calling_hours_are_kept_in_one_form(tmp_path):
    assert operator(tmp_path / "c.csv", calling_hours=[time(8), "21:00"]).calling_hours == HOURS


# --- the plan: zone groups, windows, removals ---------------------------------------------------------


def test_each_zone_group_is_sent_as_a_part_with_the_window_of_its_local_hours(
    fuse_connection, requests_mock, tmp_path
):
    queue_every_row(requests_mock)
    path = contacts(tmp_path, NEW_YORK, LOS_ANGELES, "6175550000", CHICAGO)
    with time_machine.travel(at("America/New_York", 6), tick=False):
        assert operator(path, calling_hours=HOURS).execute({}) == 4
    sent = uploads(requests_mock)
    assert [rows_in(upload) for upload in sent] == [[NEW_YORK, "6175550000"], [LOS_ANGELES], [CHICAGO]]
    for upload in sent:
        start, end = int(upload["start_timestamp"]), int(upload["end_timestamp"])
        assert all(inside_hours(number, start, end) for number in rows_in(upload))
    # New York opens at 08:00 its time; the window runs to 21:00, and so on for each zone.
    assert int(sent[0]["start_timestamp"]) == int(at("America/New_York", 8).timestamp())
    assert int(sent[1]["end_timestamp"]) == int(at("America/Los_Angeles", 21).timestamp())


def test_the_users_window_cuts_each_parts_window(fuse_connection, requests_mock, tmp_path):
    queue_every_row(requests_mock)
    path = contacts(tmp_path, NEW_YORK, LOS_ANGELES)
    end = at("America/New_York", 12)
    with time_machine.travel(at("America/New_York", 6), tick=False):
        operator(path, calling_hours=HOURS, end_timestamp=int(end.timestamp())).execute({})
    sent = uploads(requests_mock)
    assert [int(upload["end_timestamp"]) for upload in sent] == [int(end.timestamp())] * 2
    assert int(sent[1]["start_timestamp"]) == int(at("America/Los_Angeles", 8).timestamp())


def test_a_group_with_no_window_before_the_end_is_not_sent_and_is_counted(
    fuse_connection, requests_mock, tmp_path, log_text
):
    queue_every_row(requests_mock)
    path = contacts(tmp_path, NEW_YORK, LOS_ANGELES)
    # Eastern 09:00-10:00 is 06:00-07:00 in Los Angeles: no call may be made there before the end.
    end = at("America/New_York", 10)
    with time_machine.travel(at("America/New_York", 9), tick=False):
        assert operator(path, calling_hours=HOURS, end_timestamp=int(end.timestamp())).execute({}) == 1
    assert [rows_in(upload) for upload in uploads(requests_mock)] == [[NEW_YORK]]
    assert "Not sending 1 of 2 parts (1 rows: part 2, rows 3-3)" in log_text()
    assert "0 suppressed, 0 with no time zone found, 1 outside calling hours" in log_text()


def test_a_group_whose_day_is_over_waits_for_the_next_days_window(fuse_connection, requests_mock, tmp_path):
    queue_every_row(requests_mock)
    path = contacts(tmp_path, NEW_YORK)
    with time_machine.travel(at("America/New_York", 22), tick=False):
        operator(path, calling_hours=HOURS).execute({})
    (upload,) = uploads(requests_mock)
    next_day = a_day_ahead(2)
    assert int(upload["start_timestamp"]) == int(at("America/New_York", 8, day=next_day).timestamp())


def test_suppressed_rows_are_not_sent_and_are_counted_without_calling_hours(
    fuse_connection, requests_mock, tmp_path, log_text
):
    queue_every_row(requests_mock)
    path = contacts(tmp_path, NEW_YORK, LOS_ANGELES, CHICAGO)
    assert operator(path, suppression_list=["tel:+14155551234", 13125551234]).execute({}) == 1
    (upload,) = uploads(requests_mock)
    assert rows_in(upload) == [NEW_YORK]
    assert "start_timestamp" not in upload  # without calling hours, the user's window: none given
    log = log_text()
    assert "2 suppressed" in log
    assert LOS_ANGELES not in log
    assert CHICAGO not in log


def test_a_list_whose_every_row_is_suppressed_is_skipped(fuse_connection, requests_mock, tmp_path):
    path = contacts(tmp_path, NEW_YORK)
    with pytest.raises(AirflowSkipException, match="1 suppressed"):
        operator(path, suppression_list=[NEW_YORK]).execute({})
    assert not requests_mock.called


def test_a_suppression_list_that_cannot_be_read_fails_before_anything_is_sent(
    fuse_connection, requests_mock, tmp_path
):
    path = contacts(tmp_path, NEW_YORK)
    with pytest.raises(AirflowFailException, match="Nothing was sent to Fuse: suppression_list"):
        operator(path, suppression_list=str(tmp_path / "missing.csv")).execute({})
    assert not requests_mock.called


def test_a_suppression_list_rendered_none_fails_rather_than_sending_without_it(
    fuse_connection, requests_mock, tmp_path
):
    task = operator(contacts(tmp_path, NEW_YORK), suppression_list="{{ ti.xcom_pull('suppressed') }}")
    task.suppression_list = None  # as the template renders when the upstream pushed nothing
    with pytest.raises(AirflowFailException, match="suppression_list: rendered None"):
        task.execute({})
    assert not requests_mock.called


def test_rows_with_no_time_zone_fail_before_sending_naming_their_rows_not_their_numbers(
    fuse_connection, requests_mock, tmp_path
):
    path = contacts(tmp_path, NEW_YORK, TOLL_FREE, LOS_ANGELES, TOLL_FREE)
    with pytest.raises(
        AirflowFailException, match=r"2 of 4 rows .* \(rows 3, 5; the header is row 1\)"
    ) as caught:
        operator(path, calling_hours=HOURS).execute({})
    assert TOLL_FREE not in str(caught.value)
    assert not requests_mock.called


def test_a_suppressed_row_is_never_counted_as_one_with_no_time_zone(fuse_connection, requests_mock, tmp_path):
    queue_every_row(requests_mock)
    path = contacts(tmp_path, NEW_YORK, TOLL_FREE)
    with time_machine.travel(at("America/New_York", 9), tick=False):
        assert operator(path, calling_hours=HOURS, suppression_list=[TOLL_FREE]).execute({}) == 1


def test_skip_leaves_rows_with_no_time_zone_out_and_counts_them(
    fuse_connection, requests_mock, tmp_path, log_text
):
    queue_every_row(requests_mock)
    path = contacts(tmp_path, NEW_YORK, TOLL_FREE)
    with time_machine.travel(at("America/New_York", 9), tick=False):
        assert operator(path, calling_hours=HOURS, on_unknown_time_zone="skip").execute({}) == 1
    assert "1 with no time zone found" in log_text()


def test_country_calls_a_row_with_no_time_zone_within_every_zone_of_its_country(tmp_path):
    from airflow_provider_fuse.calling_hours import country_time_zones
    from airflow_provider_fuse.operators.dialing_plan import Router

    router = Router(CallingHours.parse(HOURS), "country", None)
    assert router(2, destination_number(TOLL_FREE)) == country_time_zones(destination_number(TOLL_FREE))
    assert router.removals.unplaceable == 0


# --- dry run: the plan, with no number in it ------------------------------------------------------


def test_a_dry_run_logs_the_plan_per_zone_group_with_no_number(
    fuse_connection, requests_mock, tmp_path, log_text
):
    path = contacts(tmp_path, NEW_YORK, LOS_ANGELES, "6175550000", CHICAGO, "19075551234")
    with time_machine.travel(at("America/New_York", 6), tick=False):
        rows = operator(
            path, calling_hours=HOURS, suppression_list=[CHICAGO], dry_run=True, chunk_size=1
        ).execute({})
    assert rows == 4
    assert not requests_mock.called
    log = log_text()
    assert "would queue 4 rows in 4 request(s)" in log
    assert "zones America/New_York: 2 rows in 2 part(s), local " in log
    assert "08:00-21:00 America/Los_Angeles; UTC " in log
    assert "zones America/Adak + America/Anchorage: 1 rows" in log
    assert "not sent: 1 suppressed, 0 with no time zone found, 0 outside calling hours" in log
    assert not any(number in log for number in (NEW_YORK, LOS_ANGELES, CHICAGO, "5551234"))


def test_the_plan_line_of_a_whole_country_names_the_zones_that_bind_its_window_not_all(
    fuse_connection, requests_mock, tmp_path, log_text
):
    """Under 'country' a North American toll-free number may ring in every zone of +1: its plan line
    names the zone that opens last and the one that closes first, and counts the others."""
    from airflow_provider_fuse.calling_hours import country_time_zones

    zones = country_time_zones(destination_number(TOLL_FREE))
    assert len(zones) > 3
    path = contacts(tmp_path, NEW_YORK, TOLL_FREE)
    with time_machine.travel(at("America/New_York", 9), tick=False):
        operator(path, calling_hours=HOURS, on_unknown_time_zone="country", dry_run=True).execute({})
    (line,) = [line for line in log_text().splitlines() if f"{len(zones)} zones: 1 rows" in line]
    shown = [zone for zone in zones if zone in line]
    assert 1 <= len(shown) <= 3
    assert f", +{len(zones) - len(shown)} more zones (strictest window of all); UTC " in line
    assert len(line) < 400
    assert "5551234" not in log_text()


def test_a_uk_mobile_is_placed_by_default_in_the_uk_zones_which_keep_one_clock(
    fuse_connection, requests_mock, tmp_path, log_text
):
    """The default on_unknown_time_zone='fail' does not fail an ordinary UK list: its mobiles ring in
    one of four zones that keep one clock, so their window is London's."""
    import phonenumbers

    mobile = phonenumbers.example_number_for_type("GB", phonenumbers.PhoneNumberType.MOBILE)
    number = phonenumbers.format_number(mobile, phonenumbers.PhoneNumberFormat.E164)
    queue_every_row(requests_mock)
    path = contacts(tmp_path, NEW_YORK, f"tel:{number}")
    with time_machine.travel(at("Europe/London", 6), tick=False):
        assert operator(path, calling_hours=HOURS).execute({}) == 2
    london = [upload for upload in uploads(requests_mock) if rows_in(upload) == [f"tel:{number}"]]
    (upload,) = london
    assert int(upload["start_timestamp"]) == int(at("Europe/London", 8).timestamp())
    assert int(upload["end_timestamp"]) == int(at("Europe/London", 21).timestamp())
    # The four zones show the same local window: one is shown, without saying it opens last.
    (line,) = [line for line in log_text().splitlines() if "Part " in line and "more zones" in line]
    assert "08:00-21:00 Europe/" in line
    assert "opens last" not in line
    assert number[1:] not in log_text()


def test_the_window_of_many_zones_shows_the_one_opening_last_and_the_one_closing_first():
    from airflow_provider_fuse.operators.dialing_plan import describe_window

    zones = ("America/Chicago", "America/New_York", "America/St_Johns", "Pacific/Guam", "Pacific/Honolulu")
    start = int(at("Pacific/Guam", 3).timestamp())
    window = calling_window(zones, CallingHours.parse(HOURS), start=start, end=None)
    assert window is not None
    shown = describe_window(zones, window)
    assert re.search(r"08:00-\d\d:\d\d Pacific/Guam \(opens last\)", shown), shown
    assert re.search(r"\d\d:\d\d-21:00 America/St_Johns \(closes first\)", shown), shown
    assert ", +3 more zones (strictest window of all); UTC " in shown
    assert not any(zone in shown for zone in ("America/Chicago", "America/New_York", "Pacific/Honolulu"))
    # Up to three zones, each is shown.
    assert all(zone in describe_window(zones[:3], window) for zone in zones[:3])


@pytest.mark.parametrize(
    ("clock", "expected"),
    [(at("America/New_York", 9), 1), (at("America/New_York", 6), 0)],
    ids=["one zone open", "every zone closed"],
)
def test_a_dry_run_returns_the_rows_its_plan_would_queue(
    fuse_connection, requests_mock, tmp_path, log_text, clock, expected
):
    """What is suppressed, and what lies outside calling hours, is not counted as would be sent."""
    path = contacts(tmp_path, NEW_YORK, LOS_ANGELES, CHICAGO)
    end = int((clock + timedelta(hours=1)).timestamp())
    with time_machine.travel(clock, tick=False):
        rows = operator(
            path, calling_hours=HOURS, suppression_list=[CHICAGO], end_timestamp=end, dry_run=True
        ).execute({})
    assert rows == expected
    assert f"would queue {expected} rows" in log_text()
    assert not requests_mock.called


# --- the ledger: one truth across retries, clears and time ---------------------------------------


def refused_then_queued(requests_mock, refused_at: int) -> None:
    """Fuse queues every part but the ``refused_at``-th request, which never connects."""

    def answer(fields, count):
        if count == refused_at:
            raise requests.exceptions.ConnectTimeout("connect timed out")
        return {"calls_queued": len(rows_in(fields))}

    answering(requests_mock, answer)


def test_a_retry_an_hour_later_resumes_with_its_own_windows_and_sends_nothing_twice(
    fuse_connection, requests_mock, tmp_path
):
    refused_then_queued(requests_mock, refused_at=2)
    path = contacts(tmp_path, NEW_YORK, LOS_ANGELES, CHICAGO)
    store = MemoryStore()
    with (
        time_machine.travel(at("America/New_York", 9), tick=False),
        pytest.raises(Exception, match="never reached Fuse|not sent|connect"),
    ):
        operator(path, calling_hours=HOURS, **NO_CONNECT_RETRIES).execute({"task_state_store": store})
    with time_machine.travel(at("America/New_York", 12), tick=False):
        assert operator(path, calling_hours=HOURS).execute({"task_state_store": store}) == 3
    sent = [rows_in(upload) for upload in uploads(requests_mock)]
    assert sent == [[NEW_YORK], [LOS_ANGELES], [LOS_ANGELES], [CHICAGO]]  # the 2nd never connected
    # The retry's windows start at its own time; the ledger keeps each part's as it was sent.
    assert int(uploads(requests_mock)[3]["start_timestamp"]) == int(at("America/New_York", 12).timestamp())
    parts = store.values[LEDGER_KEY]["parts"]
    assert [part["state"] for part in parts] == ["queued"] * 3
    assert parts[0]["start_timestamp"] == int(at("America/New_York", 9).timestamp())
    assert parts[2]["start_timestamp"] == int(at("America/New_York", 12).timestamp())


def test_a_clear_after_success_answers_from_the_ledger_a_day_later(fuse_connection, requests_mock, tmp_path):
    queue_every_row(requests_mock)
    path = contacts(tmp_path, NEW_YORK, LOS_ANGELES)
    store = MemoryStore()
    with time_machine.travel(at("America/New_York", 9), tick=False):
        operator(path, calling_hours=HOURS, suppression_list=[CHICAGO]).execute({"task_state_store": store})
    with time_machine.travel(at("America/New_York", 9, day=a_day_ahead(2)), tick=False):
        assert (
            operator(path, calling_hours=HOURS, suppression_list=[CHICAGO]).execute(
                {"task_state_store": store}
            )
            == 2
        )
    assert len(uploads(requests_mock)) == 2


@pytest.mark.parametrize(
    "changed",
    [
        {"calling_hours": HOURS, "suppression_list": [NEW_YORK, CHICAGO]},
        {"calling_hours": ("09:00", "20:00"), "suppression_list": [CHICAGO]},
        {"calling_hours": HOURS, "suppression_list": [CHICAGO], "on_unknown_time_zone": "skip"},
    ],
    ids=["suppression list", "calling hours", "unknown-zone policy"],
)
def test_a_changed_suppression_list_or_calling_hours_is_a_changed_list(
    fuse_connection, requests_mock, tmp_path, changed
):
    refused_then_queued(requests_mock, refused_at=2)
    path = contacts(tmp_path, NEW_YORK, LOS_ANGELES)
    store = MemoryStore()
    first = {"calling_hours": HOURS, "suppression_list": [CHICAGO]}
    with (
        time_machine.travel(at("America/New_York", 9), tick=False),
        pytest.raises(Exception, match="never reached Fuse|not sent|connect"),
    ):
        operator(path, **first, **NO_CONNECT_RETRIES).execute({"task_state_store": store})
    with time_machine.travel(at("America/New_York", 10), tick=False):
        with pytest.raises(AirflowFailException, match="changed since"):
            operator(path, **changed).execute({"task_state_store": store})
        assert len(uploads(requests_mock)) == 2
        operator(path, allow_resend=True, **changed).execute({"task_state_store": store})
    assert len(uploads(requests_mock)) > 2


def test_a_retry_after_a_parts_window_became_empty_does_not_send_it_and_says_so(
    fuse_connection, requests_mock, tmp_path, log_text
):
    refused_then_queued(requests_mock, refused_at=2)
    path = contacts(tmp_path, NEW_YORK, LOS_ANGELES)
    store = MemoryStore()
    end = int(at("America/Los_Angeles", 7, day=a_day_ahead(2)).timestamp())
    with (
        time_machine.travel(at("America/Los_Angeles", 12), tick=False),
        pytest.raises(Exception, match="never reached Fuse|not sent|connect"),
    ):
        operator(path, calling_hours=HOURS, end_timestamp=end, **NO_CONNECT_RETRIES).execute(
            {"task_state_store": store}
        )
    with time_machine.travel(at("America/Los_Angeles", 21, 30), tick=False):
        assert (
            operator(path, calling_hours=HOURS, end_timestamp=end).execute({"task_state_store": store}) == 1
        )
    assert len(uploads(requests_mock)) == 2  # the refused request, nothing since
    assert "Not sending 1 of 2 parts (1 rows: part 2, rows 3-3)" in log_text()
    assert store.values[LEDGER_KEY]["parts"][1] is None


def test_a_part_whose_window_closed_during_the_upload_is_counted_and_a_clear_sends_it_alone(
    fuse_connection, requests_mock, tmp_path, log_text
):
    """Part 1 takes until Los Angeles' day is over: part 2 (Los Angeles) is not sent, part 3
    (Honolulu, still open) is. A clear the next morning sends part 2, and nothing else again."""
    path = contacts(tmp_path, NEW_YORK, LOS_ANGELES, "8085551234")
    store = MemoryStore()
    late = at("America/Los_Angeles", 21, 30)
    with time_machine.travel(at("America/New_York", 8), tick=False) as clock:

        def answer(fields, count):
            if count == 1:
                clock.move_to(late)
            return {"calls_queued": len(rows_in(fields))}

        answering(requests_mock, answer)
        assert operator(path, calling_hours=HOURS).execute({"task_state_store": store}) == 2
    assert [part and part["state"] for part in store.values[LEDGER_KEY]["parts"]] == [
        "queued",
        None,
        "queued",
    ]
    assert "Not sending 1 of 3 parts (1 rows: part 2, rows 3-3)" in log_text()
    with time_machine.travel(at("America/Los_Angeles", 9, day=a_day_ahead(2)), tick=False):
        assert operator(path, calling_hours=HOURS).execute({"task_state_store": store}) == 3
    assert [rows_in(upload) for upload in uploads(requests_mock)] == [
        [NEW_YORK],
        ["8085551234"],
        [LOS_ANGELES],
    ]


def test_with_the_new_options_off_a_ledger_written_before_them_still_answers(
    fuse_connection, requests_mock, tmp_path
):
    """The ledger in data/ was written by the operator before calling hours existed: part 1 queued,
    part 2's outcome unknown. Its fingerprint must still match, so the retry resumes at part 2."""
    path = tmp_path / "contacts.csv"
    path.write_text("destination,n\n" + "".join(f"1617555{i:04d},{i}\n" for i in range(5)))
    store = MemoryStore()
    store.values[LEDGER_KEY] = json.loads((DATA / "ledger_before_calling_hours.json").read_text())
    queue_every_row(requests_mock)
    retry = operator(
        path, chunk_size=2, max_attempts=2, reattempt_wait=60, on_unknown_outcome="retry"
    ).execute({"task_state_store": store})
    assert retry == 5
    assert [rows_in(upload) for upload in uploads(requests_mock)] == [
        ["16175550002", "16175550003"],
        ["16175550004"],
    ]


def test_the_fingerprint_parameters_are_unchanged_when_the_options_are_off(tmp_path):
    task = operator(tmp_path / "c.csv", chunk_size=2)
    from airflow_provider_fuse.fields import QueueFields

    assert set(task._parameters(12, 34, QueueFields())) == {
        "application_id",
        "deployment_id",
        "fields",
        "chunk_size",
        "on_duplicate_destinations",
    }


def test_a_changed_phonenumbers_grouping_is_a_changed_list(tmp_path):
    """The plan's content covers which row went in which part, not only the settings."""
    from airflow_provider_fuse.operators.dialing_plan import plan_content
    from airflow_provider_fuse.preflight import CsvPart

    one = [CsvPart("a", 2, 2, 3, ("America/New_York",), "ab")]
    two = [
        CsvPart("a", 1, 2, 2, ("America/New_York",), "cd"),
        CsvPart("b", 1, 3, 3, ("America/Chicago",), "ef"),
    ]
    assert plan_content("csv", None, one) != plan_content("csv", None, two)
    assert re.fullmatch("[0-9a-f]{64}", plan_content("csv", None, one))


def test_windows_are_not_in_the_plans_content(tmp_path):
    from airflow_provider_fuse.operators.dialing_plan import plan_content
    from airflow_provider_fuse.preflight import CsvPart

    part = CsvPart("a", 1, 2, 2, ("America/New_York",), "ab")
    assert plan_content("csv", None, [part]) == plan_content("csv", None, [part])


def test_part_windows_are_the_calling_windows_of_their_groups():
    from airflow_provider_fuse.fields import QueueFields
    from airflow_provider_fuse.operators.dialing_plan import part_windows
    from airflow_provider_fuse.preflight import CsvPart

    now = int(at("America/New_York", 6).timestamp())
    parts = [CsvPart("a", 1, 2, 2, ("America/New_York",)), CsvPart("b", 1, 3, 3, ("America/Chicago",))]
    hours = CallingHours.parse(HOURS)
    assert part_windows(parts, hours, QueueFields(), now) == [
        calling_window(("America/New_York",), hours, start=now, end=None),
        calling_window(("America/Chicago",), hours, start=now, end=None),
    ]


@pytest.mark.parametrize(
    ("changed", "said"),
    [
        (
            {"suppression_list": [LOS_ANGELES, CHICAGO]},
            "the suppression list changed since 2 calls were queued",
        ),
        ({"calling_hours": ("09:00", "20:00")}, "the parameters of the list changed"),
        ({"on_unknown_time_zone": "skip"}, "the parameters of the list changed"),
    ],
    ids=["suppression list", "calling hours", "unknown-zone policy"],
)
def test_a_clear_after_success_refuses_a_changed_suppression_list_or_calling_hours(
    fuse_connection, requests_mock, tmp_path, changed, said
):
    """Answered from the ledger (the list was queued whole): the changed setting is still seen."""
    queue_every_row(requests_mock)
    path = contacts(tmp_path, NEW_YORK, LOS_ANGELES)
    store = MemoryStore()
    first = {"calling_hours": HOURS, "suppression_list": [CHICAGO]}
    with time_machine.travel(at("America/New_York", 9), tick=False):
        assert operator(path, **first).execute({"task_state_store": store}) == 2
        with pytest.raises(AirflowFailException, match=said) as caught:
            operator(path, **{**first, **changed}).execute({"task_state_store": store})
    assert len(uploads(requests_mock)) == 2
    if "suppression_list" in changed:
        message = str(caught.value)
        assert "FuseCancelCallsOperator" in message
        assert "not stopped" in message
        assert "WHOLE list" in message
        assert LOS_ANGELES not in message


def test_a_clear_after_success_refuses_when_the_suppression_list_cannot_be_read(
    fuse_connection, requests_mock, tmp_path
):
    queue_every_row(requests_mock)
    path = contacts(tmp_path, NEW_YORK, LOS_ANGELES)
    dnc = tmp_path / "dnc.csv"
    dnc.write_text("phone\n3125551234\n")
    store = MemoryStore()
    with time_machine.travel(at("America/New_York", 9), tick=False):
        assert operator(path, suppression_list=str(dnc)).execute({"task_state_store": store}) == 2
        assert operator(path, suppression_list=str(dnc)).execute({"task_state_store": store}) == 2
        dnc.unlink()
        with pytest.raises(AirflowFailException, match="suppression_list: .*earlier try"):
            operator(path, suppression_list=str(dnc)).execute({"task_state_store": store})
    assert len(uploads(requests_mock)) == 1


def test_a_resend_after_a_changed_suppression_list_says_it_calls_everyone_again(
    fuse_connection, requests_mock, tmp_path, log_text
):
    queue_every_row(requests_mock)
    path = contacts(tmp_path, NEW_YORK, LOS_ANGELES, CHICAGO)
    store = MemoryStore()
    with time_machine.travel(at("America/New_York", 9), tick=False):
        assert operator(path, suppression_list=[CHICAGO]).execute({"task_state_store": store}) == 2
        again = operator(path, suppression_list=[LOS_ANGELES, CHICAGO], allow_resend=True)
        assert again.execute({"task_state_store": store}) == 1
    assert [rows_in(upload) for upload in uploads(requests_mock)] == [[NEW_YORK, LOS_ANGELES], [NEW_YORK]]
    log = log_text()
    assert re.search(
        r"WARNING.*Resending: earlier tries of this task instance queued 2 calls for 2 rows .*"
        r"sent again \(1 rows?\).*second call",
        log,
        re.IGNORECASE,
    )
    assert "FuseCancelCallsOperator" in log
    assert LOS_ANGELES not in log


def test_an_upstream_task_returning_the_path_of_the_list_suppresses_its_numbers(
    fuse_connection, requests_mock, tmp_path
):
    """What the docs recommend over XCom'ing the numbers: the upstream task returns a path."""
    from unittest import mock

    from airflow.sdk import DAG, task

    dnc = tmp_path / "dnc.csv"
    dnc.write_text(f"phone\n{LOS_ANGELES}\n")

    @task
    def export_dnc() -> str:
        return str(dnc)

    queue_every_row(requests_mock)
    with DAG("xcom_path", schedule=None):
        queue = operator(contacts(tmp_path, NEW_YORK, LOS_ANGELES), suppression_list=export_dnc())
    ti = mock.Mock()
    ti.xcom_pull.return_value = str(dnc)
    queue.render_template_fields({"ti": ti})
    assert queue.suppression_list == str(dnc)  # a path is shown as itself
    assert queue.execute({"ti": ti}) == 1
    assert [rows_in(upload) for upload in uploads(requests_mock)] == [[NEW_YORK]]


def test_the_rows_not_sent_are_pushed_to_xcom_as_counts(fuse_connection, requests_mock, tmp_path):
    from unittest import mock

    queue_every_row(requests_mock)
    path = contacts(tmp_path, NEW_YORK, LOS_ANGELES, CHICAGO, TOLL_FREE)
    end = int(at("America/New_York", 10).timestamp())
    ti = mock.Mock()
    with time_machine.travel(at("America/New_York", 9), tick=False):
        task = operator(
            path,
            calling_hours=HOURS,
            on_unknown_time_zone="skip",
            suppression_list=[CHICAGO],
            end_timestamp=end,
        )
        assert task.execute({"ti": ti}) == 1
    ti.xcom_push.assert_any_call(
        key="fuse_plan", value={"suppressed": 1, "unplaceable": 1, "outside_hours": 1}
    )


def test_without_calling_hours_or_a_suppression_list_no_plan_is_pushed(
    fuse_connection, requests_mock, tmp_path
):
    from unittest import mock

    queue_every_row(requests_mock)
    ti = mock.Mock()
    operator(contacts(tmp_path, NEW_YORK)).execute({"ti": ti})
    assert all(call.kwargs.get("key") != "fuse_plan" for call in ti.xcom_push.call_args_list)


# --- settings assigned after construction (in the DAG file) ---------------------------------------


@pytest.mark.parametrize("given", ["list", "template"])
def test_a_suppression_list_assigned_after_construction_is_applied(
    fuse_connection, requests_mock, tmp_path, given
):
    queue_every_row(requests_mock)
    path = contacts(tmp_path, NEW_YORK, LOS_ANGELES, CHICAGO)
    task = operator(path)
    if given == "list":
        task.suppression_list = [LOS_ANGELES, CHICAGO]
    else:  # a template (as an XComArg is, too), rendered before execute
        task.suppression_list = "{{ ti.xcom_pull('dnc') }}"
        task.__dict__[RENDERING] = True
        task.suppression_list = [LOS_ANGELES, CHICAGO]
        del task.__dict__[RENDERING]
    assert task.execute({}) == 1
    (upload,) = uploads(requests_mock)
    assert rows_in(upload) == [NEW_YORK]
    assert task._parameters(12, 34, QueueFields())["suppression_list"] is True


def test_a_suppression_list_assigned_later_rendering_none_fails_rather_than_sending(
    fuse_connection, requests_mock, tmp_path
):
    task = operator(contacts(tmp_path, NEW_YORK))
    task.suppression_list = "{{ ti.xcom_pull('suppressed') }}"
    task.__dict__[RENDERING] = True
    task.suppression_list = None
    del task.__dict__[RENDERING]
    with pytest.raises(AirflowFailException, match="suppression_list: rendered None"):
        task.execute({})
    assert not requests_mock.called


def test_a_bad_suppression_list_assigned_after_construction_is_refused(tmp_path):
    task = operator(tmp_path / "contacts.csv")
    with pytest.raises(ValueError, match="suppression_list") as caught:
        task.suppression_list = 6175551234
    assert "6175551234" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value"), [("calling_hours", ("21:00", "08:00")), ("on_unknown_time_zone", "guess")]
)
def test_a_bad_plan_setting_assigned_after_construction_is_refused_naming_it(tmp_path, name, value):
    task = operator(tmp_path / "contacts.csv", calling_hours=HOURS)
    with pytest.raises(ValueError, match=name):
        setattr(task, name, value)


def test_calling_hours_assigned_after_construction_are_kept_in_one_form_and_applied(
    fuse_connection, requests_mock, tmp_path
):
    queue_every_row(requests_mock)
    task = operator(contacts(tmp_path, NEW_YORK))
    task.calling_hours = [time(8), "21:00"]
    assert task.calling_hours == HOURS
    with time_machine.travel(at("America/New_York", 22), tick=False):
        task.execute({})
    (upload,) = uploads(requests_mock)
    assert int(upload["start_timestamp"]) == int(at("America/New_York", 8, day=a_day_ahead(2)).timestamp())


def test_an_unknown_time_zone_policy_left_without_calling_hours_later_fails_before_sending(
    fuse_connection, requests_mock, tmp_path
):
    task = operator(contacts(tmp_path, NEW_YORK), calling_hours=HOURS, on_unknown_time_zone="skip")
    task.calling_hours = None
    with pytest.raises(AirflowFailException, match="on_unknown_time_zone.*calling_hours"):
        task.execute({})
    assert not requests_mock.called


# --- parts that cannot be written ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "retried"), [(errno.ENOSPC, True), (errno.EMFILE, False), (errno.EACCES, False)]
)
def test_parts_that_cannot_be_written_fail_before_sending_with_a_clear_message(
    fuse_connection, requests_mock, tmp_path, monkeypatch, code, retried
):
    def unwritable(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(tmp_path / "part-00001.csv"))

    monkeypatch.setattr("airflow_provider_fuse.preflight.write_csv_parts", unwritable)
    task = operator(contacts(tmp_path, NEW_YORK, LOS_ANGELES), chunk_size=1, suppression_list=[CHICAGO])
    with pytest.raises(AirflowException) as caught:
        task.execute({})
    assert isinstance(caught.value, AirflowFailException) is not retried
    message = str(caught.value)
    assert message.startswith("Nothing was sent to Fuse: the list's parts could not be written")
    assert errno.errorcode[code] in message
    assert str(tmp_path) not in message
    assert NEW_YORK not in message
    assert not requests_mock.called
