"""FuseCampaignResultsSensor without a scheduler: what it waits for, the summary, the threshold, deferral.

Outcomes "arrive" by being stored in a real SQLite results table (ResultsTable.store), as the
receiver stores them.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import time
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_fuse._compat import AirflowException, AirflowFailException, AirflowSkipException
from airflow_provider_fuse.calls import CallDetails, CallStatus
from airflow_provider_fuse.results.campaign import is_sent_list as _is_record
from airflow_provider_fuse.results.table import ResultsTable
from airflow_provider_fuse.sensors.campaign_results import NAMED_STATUSES, SUMMARY_KEYS, summarize
from airflow_provider_fuse.sensors.fuse import FuseCampaignResultsSensor
from airflow_provider_fuse.triggers.fuse import FuseCampaignResultsTrigger
from tests.results.outcomes import BULK, DAG_ID, RUN_ID, TABLE, frozen_counts, storing, upload_part

try:
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # Airflow 3.1
    from airflow.exceptions import TaskDeferred

#: The bulk task's campaign (map index -1, or 0), and another map index's.
CAMPAIGN, SECOND = "c" * 32, "d" * 32


class FakeTaskInstance:
    """The task instance the sensor reads: its ids, the bulk task's XComs (by map index), pushes."""

    def __init__(self, *records: dict | None) -> None:
        self.dag_id, self.run_id, self.task_id = DAG_ID, RUN_ID, "wait_for_outcomes"
        self.records = list(records)
        self.pulls: list[tuple] = []
        self.xcom: dict = {}

    def xcom_pull(self, task_ids=None, key="return_value", **kwargs):
        self.pulls.append((task_ids, key, kwargs))
        assert task_ids == [BULK]
        if key != "fuse_results":
            return [None]
        # Airflow: every map index's value, or [None] when the task pushed nothing under the key.
        return list(self.records) or [None]

    def xcom_push(self, key, value):
        self.xcom[key] = json.loads(json.dumps(value))


def record(
    calls_queued: int = 3,
    *,
    window_end: int | None = None,
    queued_ago: int = 0,
    start=None,
    campaign: str = CAMPAIGN,
) -> dict:
    """A fuse_results XCom as the bulk operator pushes it once Fuse queued the list; times derived
    from the clock."""
    return {
        "campaign": campaign,
        "confirmed": True,
        "calls_queued": calls_queued,
        "rows": calls_queued,
        "window_end": window_end,
        "queued_timestamp": int(time.time()) - queued_ago,
        "start_timestamp": start,
        "last_attempt_timestamp": None,
    }


def open_window(calls_queued: int = 3, campaign: str = CAMPAIGN) -> dict:
    return record(calls_queued, window_end=int(time.time()) + 3600, campaign=campaign)


def closed_window(calls_queued: int = 3, campaign: str = CAMPAIGN) -> dict:
    return record(calls_queued, window_end=int(time.time()) - 7200, queued_ago=9000, campaign=campaign)


@pytest.fixture
def database(tmp_path, monkeypatch):
    """The default results connection on a SQLite file (the [fuse] defaults otherwise)."""
    path = tmp_path / "results.db"
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_RESULTS_DEFAULT", f"sqlite://{path}")
    return path


@pytest.fixture
def arrive(database):
    """Store outcomes of the bulk task as the receiver would: ``arrive("completed", map_index=0)``."""
    with storing("fuse_results_default", CAMPAIGN) as store:
        yield store


def sensor(**kwargs) -> FuseCampaignResultsSensor:
    arguments = {"task_id": "wait_for_outcomes", "bulk_task_id": BULK, "poke_interval": 5}
    arguments.update(kwargs)
    return FuseCampaignResultsSensor(**arguments)


# --- Arguments -----------------------------------------------------------------------------------------


def test_the_bulk_task_id_is_templated():
    assert tuple(FuseCampaignResultsSensor.template_fields) == ("bulk_task_id",)


def test_the_defaults_are_the_documented_ones():
    waiting = sensor()
    assert waiting.grace_period == timedelta(minutes=30)
    assert waiting.dialing_timeout == timedelta(hours=12)
    assert waiting.min_completed_ratio is None
    assert FuseCampaignResultsSensor(task_id="w", bulk_task_id=BULK).poke_interval == 60


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bulk_task_id": ""}, "bulk_task_id must name a task"),
        ({"grace_period": 60}, "grace_period must be a timedelta"),
        ({"dialing_timeout": timedelta(seconds=-1)}, "dialing_timeout must be a timedelta"),
        ({"min_completed_ratio": 1.5}, "min_completed_ratio must be a number from 0 to 1"),
        ({"min_completed_ratio": True}, "min_completed_ratio"),
        ({"min_completed_ratio": "0.5"}, "min_completed_ratio"),
    ],
)
def test_arguments_are_checked_when_the_dag_is_parsed(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sensor(**kwargs)


# --- What is waited for ----------------------------------------------------------------------------------


def test_it_waits_while_outcomes_are_missing_and_the_window_is_open(arrive, log_text):
    arrive("completed", "failed")
    assert sensor().poke({"ti": FakeTaskInstance(open_window())}) is False
    assert "Fuse results of queue_calls: 2 of 3 calls in" in log_text()


def test_it_is_done_when_every_call_has_an_outcome(arrive, log_text):
    arrive("completed", "completed", "failed")
    result = sensor().poke({"ti": FakeTaskInstance(open_window())})
    assert result.is_done
    assert result.xcom_value == {
        "calls_queued": 3,
        "completed": 2,
        "failed": 1,
        "canceled": 0,
        "rejected": 0,
        "other": 0,
        "missing": 0,
    }
    assert "Fuse results of queue_calls: 3 queued → 2 completed, 1 failed" in log_text()


def test_it_is_done_once_the_window_and_grace_period_have_passed_counting_the_missing(arrive, log_text):
    arrive("completed", "canceled")
    result = sensor(grace_period=timedelta(minutes=30)).poke({"ti": FakeTaskInstance(closed_window(4))})
    assert result.is_done
    assert result.xcom_value["missing"] == 2
    assert result.xcom_value["canceled"] == 1
    logs = log_text()
    assert "4 queued → 1 completed, 1 canceled, 2 missing" in logs
    assert "2 of 4 calls have no outcome after the dialing window and grace period" in logs


def test_the_grace_period_extends_the_wait_past_the_window(arrive):
    arrive("completed")  # some outcome arrived: the end of the wait is a summary, not a failure
    ended_a_minute_ago = record(3, window_end=int(time.time()) - 60, queued_ago=3600)
    assert sensor().poke({"ti": FakeTaskInstance(ended_a_minute_ago)}) is False
    assert sensor(grace_period=timedelta(0)).poke({"ti": FakeTaskInstance(ended_a_minute_ago)}).is_done


def test_without_an_end_timestamp_the_wait_is_the_dialing_timeout_from_when_the_list_was_queued(arrive):
    arrive("failed")
    queued_two_hours_ago = record(3, queued_ago=7200)
    context = {"ti": FakeTaskInstance(queued_two_hours_ago)}
    assert sensor(grace_period=timedelta(0), dialing_timeout=timedelta(hours=3)).poke(context) is False
    assert sensor(grace_period=timedelta(0), dialing_timeout=timedelta(hours=1)).poke(context).is_done


def test_a_later_start_timestamp_moves_the_dialing_timeout_on(arrive):
    later = record(3, queued_ago=7200, start=int(time.time()) + 600)
    context = {"ti": FakeTaskInstance(later)}
    assert sensor(grace_period=timedelta(0), dialing_timeout=timedelta(hours=1)).poke(context) is False


def test_without_an_end_timestamp_the_wait_lasts_until_the_last_attempt_can_start(arrive):
    # max_attempts=3 a day apart: a call reports only once its attempts are used up, two days on.
    retried = record(3, queued_ago=7200) | {"last_attempt_timestamp": int(time.time()) + 2 * 86400 - 7200}
    context = {"ti": FakeTaskInstance(retried)}
    assert sensor(grace_period=timedelta(0), dialing_timeout=timedelta(hours=1)).poke(context) is False


def test_outcomes_of_other_tasks_and_runs_are_not_counted(arrive):
    arrive("completed", "completed", "completed", task_id="another_bulk_task")
    assert sensor().poke({"ti": FakeTaskInstance(open_window())}) is False


def test_a_mapped_bulk_task_is_summed_over_its_map_indexes(arrive):
    arrive("completed", "failed", map_index=0)
    arrive("completed", "rejected", "completed", map_index=1, part=0, campaign=SECOND)
    arrive("canceled", map_index=1, part=1, campaign=SECOND)
    ti = FakeTaskInstance(open_window(2), open_window(4, campaign=SECOND))
    result = sensor().poke({"ti": ti})
    assert result.is_done
    assert result.xcom_value == {
        "calls_queued": 6,
        "completed": 3,
        "failed": 1,
        "canceled": 1,
        "rejected": 1,
        "other": 0,
        "missing": 0,
    }
    assert ti.pulls[0][2] == {}  # every map index: no map_indexes argument


def test_the_latest_window_of_a_mapped_task_decides(arrive):
    ti = FakeTaskInstance(closed_window(2), open_window(2))
    assert sensor().poke({"ti": ti}) is False


def test_a_bulk_task_without_collected_results_fails_clearly(database):
    with pytest.raises(AirflowFailException) as caught:
        sensor(retries=3).poke({"ti": FakeTaskInstance()})
    message = str(caught.value)
    assert "Task 'queue_calls' of this run left no 'fuse_results' XCom" in message
    assert "collect_results=True" in message


@pytest.mark.parametrize(
    "value",
    [
        {"calls_queued": "3"},
        # What 0.1's operator pushed: no campaign, so no way to tell this run's outcomes from another's.
        {"calls_queued": 3, "window_end": None, "queued_timestamp": 1, "start_timestamp": None},
        record() | {"confirmed": "yes"},
        record() | {"campaign": ""},
        record() | {"confirmed": True, "calls_queued": None},
    ],
)
def test_something_else_under_the_key_fails_clearly(database, value):
    with pytest.raises(AirflowFailException, match="left a 'fuse_results' XCom this sensor cannot read"):
        sensor().poke({"ti": FakeTaskInstance(value)})


def test_no_record_does_not_claim_that_nothing_was_dialed(database):
    """The sensor cannot tell "stopped before sending" from "its record was lost": it says neither
    that Fuse dialed nothing nor that the bulk task should be cleared to send."""
    with pytest.raises(AirflowFailException) as caught:
        sensor().poke({"ti": FakeTaskInstance()})
    message = str(caught.value)
    assert "dialed nothing" not in message
    assert "clear it to send" not in message
    assert "Check the outbound calls" in message


NOW = int(time.time())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("window_end", NOW * 1000),  # milliseconds
        ("window_end", 10**30),
        ("window_end", 10**400),
        ("window_end", 1e30),
        ("window_end", float("nan")),
        ("window_end", -1),
        ("window_end", True),
        ("queued_timestamp", 10**17),
        ("queued_timestamp", 1.5),
        ("start_timestamp", 253_402_300_800),
        ("last_attempt_timestamp", 10**12),
        ("rows", 10**400),
        ("rows", 10**9 + 1),
        ("calls_queued", 10**20),
        ("calls_queued", False),
        ("campaign", "6175551234" * 10),
        ("campaign", "c" * 31 + "/"),
        ("confirmed", 1),
    ],
    # A fixed id for the clock's value: pytest-xdist's workers must collect the same ids.
    ids=lambda value: "now-in-ms" if value == NOW * 1000 else str(value)[:24],
)
def test_a_number_out_of_range_is_refused_naming_the_task_and_the_field(database, log_text, field, value):
    hostile = open_window() | {field: value}
    with pytest.raises(AirflowFailException) as caught:
        sensor().poke({"ti": FakeTaskInstance(hostile)})
    message = str(caught.value)
    assert "Task 'queue_calls' of this run left a 'fuse_results' XCom this sensor cannot read" in message
    assert f"'{field}'" in message
    assert "6175551234" not in message + log_text()


def test_an_unconfirmed_record_with_rows_out_of_range_is_refused(database):
    hostile = unconfirmed(3) | {"rows": 10**400}
    with pytest.raises(AirflowFailException, match="'rows'"):
        sensor().poke({"ti": FakeTaskInstance(hostile)})


def test_the_largest_times_and_counts_are_read_and_logged(database, log_text):
    """Year 9999 and 10**9 calls are in range: a deadline that far is waited for and logged; so is a
    deadline past the year 9999 (a huge grace period), without a traceback."""
    far = open_window(10**9) | {"window_end": 253_402_300_799}
    assert sensor().poke({"ti": FakeTaskInstance(far)}) is False
    assert sensor(grace_period=timedelta(days=10**6)).poke({"ti": FakeTaskInstance(far)}) is False
    assert "0 of 1000000000 calls in; waiting until" in log_text()


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**500), max_value=10**500)
    | st.floats()
    | st.text(max_size=70),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
FIELDS = (
    "campaign",
    "confirmed",
    "calls_queued",
    "rows",
    "window_end",
    "queued_timestamp",
    "start_timestamp",
    "last_attempt_timestamp",
)


#: Numbers near every bound the record has, and far past them.
NUMBERS = st.one_of(
    st.integers(min_value=-2, max_value=10**20),
    st.sampled_from([0, 10**9, 10**9 + 1, 253_402_300_799, 253_402_300_800, NOW * 1000, 10**400, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True),
)


@settings(max_examples=400, deadline=None)
@given(
    changes=st.dictionaries(st.sampled_from(FIELDS), st.one_of(NUMBERS, JSONISH), max_size=4),
    removed=st.sets(st.sampled_from(FIELDS), max_size=2),
    whole=st.one_of(st.none(), st.none(), JSONISH),
    confirmed=st.booleans(),
)
def test_any_json_under_the_key_is_read_or_refused_clearly(changes, removed, whole, confirmed):
    """Whatever the XCom holds, the sensor reads it (counts in range, a deadline it can log) or fails
    with the one documented message, never another exception."""
    base = record() | ({} if confirmed else {"confirmed": False, "calls_queued": None})
    value = whole if whole is not None else {k: v for k, v in (base | changes).items() if k not in removed}
    task = sensor()
    try:
        campaign = task.campaign({"ti": FakeTaskInstance(value)})
    except AirflowFailException as error:
        refused = str(error)
    else:
        refused = ""
    if refused:
        assert refused.startswith(
            (
                "Task 'queue_calls' of this run left a 'fuse_results' XCom this sensor cannot read: ",
                "Task 'queue_calls' of this run left no 'fuse_results'",
            )
        )
        assert _is_record(value) is False
        return
    assert _is_record(value)
    assert 0 <= campaign.calls_queued <= 10**9
    assert 0 <= campaign.deadline <= 253_402_300_799 + sensor().dialing_timeout.total_seconds() + 1800
    task._log_progress({"received": 0}, campaign)


def test_nothing_queued_is_done_at_once(database):
    assert sensor().poke({"ti": FakeTaskInstance(open_window(0))}).xcom_value["calls_queued"] == 0


def test_the_summary_holds_no_personal_data(arrive):
    arrive("completed", "completed", "failed")
    result = sensor().poke({"ti": FakeTaskInstance(open_window())})
    assert set(result.xcom_value) == {
        "calls_queued",
        "completed",
        "failed",
        "canceled",
        "rejected",
        "other",
        "missing",
    }
    assert "617555" not in json.dumps(result.xcom_value)


def test_execute_in_poke_mode_returns_the_summary(arrive):
    arrive("completed", "completed", "completed")
    assert sensor().execute({"ti": FakeTaskInstance(open_window())})["completed"] == 3


def test_an_unreadable_table_is_left_to_the_task_retries(arrive, monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_RESULTS_DEFAULT", f"sqlite://{tmp_path}/no/such/dir/results.db")
    with pytest.raises(AirflowException, match="Cannot read the call outcomes: results connection") as caught:
        sensor().poke({"ti": FakeTaskInstance(open_window())})
    assert not isinstance(caught.value, (AirflowFailException, AirflowSkipException))


def test_a_signing_key_command_that_fails_is_left_to_the_task_retries(arrive, monkeypatch, tmp_path):
    """A failed _cmd (a secrets backend briefly out of reach) may pass: the outcomes are all in, and
    one blip must not fail the run for good (review r2, 2). Its output is never shown."""
    command = tmp_path / "key.sh"
    command.write_text("#!/bin/sh\necho k3y-printed-by-the-failing-command-0123456789\nexit 3\n")
    command.chmod(0o755)
    monkeypatch.delenv("AIRFLOW__FUSE__RESULTS_SIGNING_KEY", raising=False)
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_SIGNING_KEY_CMD", str(command))
    with pytest.raises(AirflowException, match=r"\[fuse\] results_signing_key could not be read") as caught:
        sensor().poke({"ti": FakeTaskInstance(open_window())})
    assert not isinstance(caught.value, (AirflowFailException, AirflowSkipException))
    assert "k3y-printed" not in str(caught.value)


def test_an_unusable_results_option_fails_naming_it(arrive, monkeypatch):
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_TABLE", "outcomes; drop table x")
    with pytest.raises(AirflowFailException, match=r"\[fuse\] results_table must be a table name"):
        sensor().poke({"ti": FakeTaskInstance(open_window())})


def test_the_table_and_connection_come_from_the_config(database, monkeypatch, tmp_path):
    other = tmp_path / "other.db"
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_CONN_ID", "campaign_outcomes")
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_TABLE", "outcomes")
    monkeypatch.setenv("AIRFLOW_CONN_CAMPAIGN_OUTCOMES", f"sqlite://{other}")
    table = ResultsTable("campaign_outcomes", "outcomes")
    table.store(
        upload_part(CAMPAIGN, rows=1),
        CallDetails(status=CallStatus("completed"), phone_number="6175550000"),
        received=0.0,
    )
    table.close()
    assert sensor().poke({"ti": FakeTaskInstance(open_window(1))}).xcom_value["completed"] == 1


# --- The threshold --------------------------------------------------------------------------------------


def test_a_completed_share_at_the_threshold_passes(arrive):
    arrive("completed", "completed", "failed", "failed")
    result = sensor(min_completed_ratio=0.5).poke({"ti": FakeTaskInstance(open_window(4))})
    assert result.xcom_value["completed"] == 2


# --- One rule for the end of the wait, on every path -----------------------------------------------------


def end_by_poke(context, **kwargs):
    return sensor(**kwargs).poke(context)


def end_before_deferring(context, **kwargs):
    return sensor(deferrable=True, **kwargs).execute(context)


def ending_after_deferring(name: str, calls_queued: int, **received: int):
    """The path through the trigger: ``execute_complete`` with its event for these outcomes."""

    def end(context, **kwargs):
        counts = {status: received.get(status, 0) for status in (*NAMED_STATUSES, "other")}
        counts["received"] = sum(counts.values())
        event = {
            "status": "done",
            "counts": counts,
            "calls_queued": calls_queued,
            "deadline": time.time() - 1,
        }
        return sensor(deferrable=True, **kwargs).execute_complete(context, event)

    end.__name__ = name
    return end


end_after_deferring = ending_after_deferring("end_after_deferring", 4, completed=1, failed=2)


PATHS = pytest.mark.parametrize("ends", [end_by_poke, end_before_deferring, end_after_deferring])


@pytest.fixture
def one_of_four_completed(arrive):
    """One completed, two failed, one missing, and the window closed."""
    arrive("completed", "failed", "failed")
    return FakeTaskInstance(closed_window(4))


@PATHS
def test_below_the_threshold_fails_without_retries_naming_the_counts(one_of_four_completed, ends):
    with pytest.raises(AirflowFailException) as caught:
        ends({"ti": one_of_four_completed}, min_completed_ratio=0.5, retries=3)
    assert str(caught.value) == (
        "1 of 4 calls completed, fewer than min_completed_ratio=0.5: "
        "4 queued → 1 completed, 2 failed, 1 missing"
    )


@PATHS
def test_below_the_threshold_pushes_the_summary_first(one_of_four_completed, ends):
    with pytest.raises(AirflowFailException):
        ends({"ti": one_of_four_completed}, min_completed_ratio=0.9)
    assert one_of_four_completed.xcom["campaign_results"] == {
        "calls_queued": 4,
        "completed": 1,
        "failed": 2,
        "canceled": 0,
        "rejected": 0,
        "other": 0,
        "missing": 1,
    }


@PATHS
def test_below_the_threshold_skips_with_soft_fail(one_of_four_completed, ends):
    with pytest.raises(AirflowSkipException, match="1 of 4 calls completed"):
        ends({"ti": one_of_four_completed}, min_completed_ratio=0.5, soft_fail=True)


@PATHS
def test_without_a_threshold_the_summary_is_the_result(one_of_four_completed, ends):
    summary = ends({"ti": one_of_four_completed})
    summary = summary.xcom_value if hasattr(summary, "xcom_value") else summary
    assert summary == {
        "calls_queued": 4,
        "completed": 1,
        "failed": 2,
        "canceled": 0,
        "rejected": 0,
        "other": 0,
        "missing": 1,
    }


# --- Deferrable -------------------------------------------------------------------------------------------


def test_deferrable_defers_to_the_trigger_with_ids_counts_and_the_deadline(arrive):
    arrive("completed")
    window = open_window(3)
    with pytest.raises(TaskDeferred) as caught:
        sensor(deferrable=True, timeout=7200, grace_period=timedelta(minutes=10)).execute(
            {"ti": FakeTaskInstance(window)}
        )
    deferred = caught.value
    assert isinstance(deferred.trigger, FuseCampaignResultsTrigger)
    assert deferred.method_name == "execute_complete"
    assert deferred.timeout.total_seconds() == 7200
    classpath, kwargs = deferred.trigger.serialize()
    assert classpath == "airflow_provider_fuse.triggers.campaign_results.FuseCampaignResultsTrigger"
    assert kwargs == {
        "dag_id": DAG_ID,
        "run_id": RUN_ID,
        "bulk_task_id": BULK,
        "campaigns": [CAMPAIGN],
        "calls_queued": 3,
        "deadline": float(window["window_end"] + 600),
        "results_conn_id": "fuse_results_default",
        "results_table": TABLE,
        "poll_interval": 5.0,
        "count_timeout": 30.0,
    }


def test_deferrable_does_not_defer_when_every_outcome_is_in(arrive):
    arrive("completed", "completed", "completed")
    assert sensor(deferrable=True).execute({"ti": FakeTaskInstance(open_window())})["completed"] == 3


def test_deferrable_fails_clearly_without_collected_results(database):
    with pytest.raises(AirflowFailException, match="left no 'fuse_results' XCom"):
        sensor(deferrable=True).execute({"ti": FakeTaskInstance()})


def test_a_retryable_trigger_error_is_left_to_the_task_retries():
    event = {"status": "error", "message": "results connection 'x': cannot read outcomes", "retryable": True}
    with pytest.raises(AirflowException, match="Cannot read the call outcomes: results connection") as caught:
        sensor().execute_complete({}, event)
    assert not isinstance(caught.value, (AirflowFailException, AirflowSkipException))


def test_another_trigger_error_fails_or_skips_with_soft_fail():
    event = {"status": "error", "message": "no", "retryable": False}
    with pytest.raises(AirflowFailException, match="Cannot read the call outcomes: no"):
        sensor().execute_complete({}, event)
    with pytest.raises(AirflowSkipException):
        sensor(soft_fail=True).execute_complete({}, event)


@pytest.mark.parametrize("event", [None, {}, {"status": "terminal"}])
def test_an_unexpected_event_is_an_error(event):
    with pytest.raises(AirflowException, match="Unexpected event from FuseCampaignResultsTrigger"):
        sensor().execute_complete({}, event)


def test_the_default_follows_default_deferrable():
    import inspect

    from airflow_provider_fuse._compat import conf

    default = inspect.signature(FuseCampaignResultsSensor.__init__).parameters["deferrable"].default
    assert default is conf.getboolean("operators", "default_deferrable", fallback=False)


# --- A run id used again is another campaign -------------------------------------------------------------


def test_a_deleted_runs_outcomes_under_the_same_run_id_are_not_counted(arrive, log_text):
    # The first run (deleted) and the second (triggered again with the same run id) share dag, run
    # and task ids; only the campaign tells their outcomes apart.
    arrive("completed", "completed", "completed", campaign=SECOND)
    arrive("failed")
    result = sensor(grace_period=timedelta(0)).poke({"ti": FakeTaskInstance(closed_window(3))})
    assert result.xcom_value["completed"] == 0
    assert (result.xcom_value["failed"], result.xcom_value["missing"]) == (1, 2)


# --- The summary adds up ----------------------------------------------------------------------------------


def test_a_status_besides_the_four_lands_in_other(arrive, log_text):
    arrive("completed", "no answer", "busy", "canceled")
    result = sensor().poke({"ti": FakeTaskInstance(open_window(4))})
    assert result.is_done
    assert (result.xcom_value["other"], result.xcom_value["missing"]) == (2, 0)
    assert "4 queued → 1 completed, 1 canceled, 2 other" in log_text()


STATUS_TEXT = st.sampled_from(
    [
        "completed",
        "failed",
        "canceled",
        "cancelled",
        "rejected",
        "no answer",
        "busy",
        "queued",
        "dialing",
        "Voicemail",
    ]
)


@given(
    counts=st.dictionaries(
        st.one_of(
            st.sampled_from(["completed", "failed", "canceled", "rejected", "other"]), st.text(max_size=8)
        ),
        st.integers(0, 10**6),
        max_size=8,
    ),
    extra=st.integers(0, 10**6),
)
def test_the_summary_fields_add_up_to_the_calls_queued_whatever_the_counts_say(counts, extra):
    named = sum(counts.get(status, 0) for status in NAMED_STATUSES)
    received = named + counts.get("other", 0)
    summary = summarize({**counts, "received": received}, received + extra)
    assert set(summary) == set(SUMMARY_KEYS)
    assert sum(summary[key] for key in SUMMARY_KEYS if key != "calls_queued") == summary["calls_queued"]
    assert summary["missing"] == extra


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(statuses=st.lists(STATUS_TEXT, max_size=12), unanswered=st.integers(0, 3))
def test_every_outcome_received_through_the_table_lands_in_a_field(database, statuses, unanswered):
    table = ResultsTable("fuse_results_default", TABLE)
    campaign = secrets.token_hex(16)  # a fresh campaign per example: the table is shared
    upload = upload_part(campaign)
    try:
        for index, status in enumerate(statuses):
            details = CallDetails(status=CallStatus(status), attempts=1, phone_number=f"617555{index:04d}")
            table.store(upload, details, received=time.time())
    finally:
        table.close()
    queued = len(statuses) + unanswered
    ti = FakeTaskInstance(closed_window(queued, campaign=campaign))
    if queued and not statuses:  # no outcome at all: the task fails, the summary pushed first
        with pytest.raises(AirflowFailException, match="No call outcome arrived"):
            sensor(grace_period=timedelta(0)).poke({"ti": ti})
        summary = ti.xcom["campaign_results"]
    else:
        summary = sensor(grace_period=timedelta(0)).poke({"ti": ti}).xcom_value
    assert sum(summary[key] for key in SUMMARY_KEYS if key != "calls_queued") == queued
    assert summary["missing"] == unanswered


# --- After an unknown outcome, checked in Fuse and marked success ----------------------------------------


def unconfirmed(rows: int = 3) -> dict:
    """The record the bulk task pushed before sending, when Fuse's answer never came."""
    return open_window(rows) | {"confirmed": False, "calls_queued": None, "rows": rows}


def test_an_unconfirmed_list_is_waited_for_up_to_its_rows(arrive):
    arrive("completed", "failed")
    assert sensor().poke({"ti": FakeTaskInstance(unconfirmed(3))}) is False
    arrive("completed")
    result = sensor().poke({"ti": FakeTaskInstance(unconfirmed(3))})
    assert result.is_done
    assert result.xcom_value["calls_queued"] == 3


def test_missing_outcomes_of_an_unconfirmed_list_say_why(arrive, log_text):
    arrive("completed")
    ended = unconfirmed(3) | {"window_end": int(time.time()) - 60, "queued_timestamp": int(time.time()) - 600}
    sensor(grace_period=timedelta(0)).poke({"ti": FakeTaskInstance(ended)})
    assert "Fuse never confirmed how many calls it queued" in log_text()


# --- Every wait on the database is bounded ------------------------------------------------------------------


@pytest.fixture
def frozen_database(database, monkeypatch):
    """Counts that never return until the test ends (a locked or frozen database); how many began."""
    with frozen_counts(monkeypatch) as started:
        yield started


def test_a_poke_on_a_frozen_database_returns_within_the_count_timeout(frozen_database, log_text):
    waiting = sensor(count_timeout=timedelta(seconds=0.3))
    context = {"ti": FakeTaskInstance(open_window())}
    began = time.monotonic()
    assert waiting.poke(context) is False
    assert waiting.poke(context) is False
    assert time.monotonic() - began < 3
    assert len(frozen_database) == 1  # the next poke waits for the same count, none beside it
    assert "did not answer a count within 0.3 s" in log_text()


def test_a_frozen_database_after_the_deadline_is_left_to_the_task_retries(frozen_database):
    with pytest.raises(AirflowException, match="answered no count within 0.3 s") as caught:
        sensor(count_timeout=timedelta(seconds=0.3)).poke({"ti": FakeTaskInstance(closed_window())})
    assert not isinstance(caught.value, (AirflowFailException, AirflowSkipException))


def test_deferrable_defers_when_the_first_count_does_not_come(frozen_database):
    with pytest.raises(TaskDeferred):
        sensor(deferrable=True, count_timeout=timedelta(seconds=0.3)).execute(
            {"ti": FakeTaskInstance(open_window())}
        )


# --- Why outcomes are missing: a receiver with another signing key ----------------------------------------


def test_no_outcome_at_all_from_a_receiver_with_another_key_says_so(database, monkeypatch, log_text):
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from airflow_provider_fuse.results.config import ResultsConfig
    from airflow_provider_fuse.results.receiver import create_app
    from tests.helpers import serving

    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_SIGNING_KEY", secrets.token_urlsafe(36))
    other = ResultsConfig(
        base_url="http://127.0.0.1",
        conn_id="fuse_results_default",
        table=TABLE,
        signing_key=secrets.token_urlsafe(36),
    )
    app = Starlette(routes=[Mount("/fuse", app=create_app(load_config=lambda: other))])
    with serving(monkeypatch, app) as base:
        monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_BASE_URL", base)
        with pytest.raises(AirflowFailException) as caught:
            sensor(grace_period=timedelta(0)).poke({"ti": FakeTaskInstance(closed_window(3))})
    message = str(caught.value)
    assert "No call outcome arrived for any of the 3 calls" in message
    assert "refuses tokens signed with this worker's [fuse] results_signing_key (403)" in message
    assert os.environ["AIRFLOW__FUSE__RESULTS_SIGNING_KEY"] not in message + log_text()


# --- No outcome at all by the deadline fails the task, on every path (issue 18) ---------------------------


NOTHING_PATHS = pytest.mark.parametrize(
    "ends", [end_by_poke, end_before_deferring, ending_after_deferring("nothing_arrived_after_deferring", 3)]
)
ALL_MISSING = {
    "calls_queued": 3,
    "completed": 0,
    "failed": 0,
    "canceled": 0,
    "rejected": 0,
    "other": 0,
    "missing": 3,
}


@NOTHING_PATHS
def test_no_outcome_at_all_by_the_deadline_fails_without_retries_and_pushes_the_summary(database, ends):
    ti = FakeTaskInstance(closed_window(3))
    with pytest.raises(AirflowFailException, match="No call outcome arrived for any of the 3 calls"):
        ends({"ti": ti})
    assert ti.xcom["campaign_results"] == ALL_MISSING


@NOTHING_PATHS
def test_no_outcome_at_all_says_none_was_stored_and_what_to_check_not_that_a_clear_recovers_them(
    database, ends
):
    # Outcomes posted where nothing stored them never come back: "clear this task to count again"
    # read as if they could (newcomer run 19).
    with pytest.raises(AirflowFailException) as caught:
        ends({"ti": FakeTaskInstance(closed_window(3))})
    message = str(caught.value)
    assert "clear this task to count again" not in message
    assert "None of their outcomes was stored" in message
    assert "lost" in message
    for hint in ("[fuse] results_base_url (host and port)", "api-server", "fuse-results serve", "403"):
        assert hint in message


@NOTHING_PATHS
def test_no_outcome_at_all_skips_with_soft_fail(database, ends):
    with pytest.raises(AirflowSkipException, match="No call outcome arrived"):
        ends({"ti": FakeTaskInstance(closed_window(3))}, soft_fail=True)


@PATHS
def test_some_outcomes_by_the_deadline_still_end_green_with_the_missing_counted(one_of_four_completed, ends):
    result = ends({"ti": FakeTaskInstance(closed_window(4))})
    summary = result.xcom_value if hasattr(result, "xcom_value") else result
    assert summary["missing"] == 1


def serve_a_server_without_the_receiver(monkeypatch):
    """A real server whose receiver is mounted below /fuse, with the base URL one level off."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from airflow_provider_fuse.results.config import ResultsConfig
    from airflow_provider_fuse.results.receiver import create_app
    from tests.helpers import serving

    key = secrets.token_urlsafe(36)
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_SIGNING_KEY", key)
    config = ResultsConfig(
        base_url="http://127.0.0.1", conn_id="fuse_results_default", table=TABLE, signing_key=key
    )
    app = Starlette(routes=[Mount("/fuse", app=create_app(load_config=lambda: config))])
    return serving(monkeypatch, app)


def test_no_outcome_at_all_says_nothing_at_the_base_url_is_the_receiver(database, monkeypatch):
    with serve_a_server_without_the_receiver(monkeypatch) as base:
        monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_BASE_URL", f"{base}/api")
        with pytest.raises(AirflowFailException) as caught:
            sensor(grace_period=timedelta(0)).poke({"ti": FakeTaskInstance(closed_window(3))})
    message = str(caught.value)
    assert "is the results receiver (it answers 404)" in message
    assert "[fuse] results_base_url" in message
    assert "restarted" in message
    assert os.environ["AIRFLOW__FUSE__RESULTS_SIGNING_KEY"] not in message


def test_no_outcome_at_all_with_nothing_listening_at_the_base_url_says_so(database, monkeypatch):
    import socket

    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_SIGNING_KEY", secrets.token_urlsafe(36))
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_BASE_URL", f"http://127.0.0.1:{port}")
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(AirflowFailException) as caught:
        sensor(grace_period=timedelta(0)).poke({"ti": FakeTaskInstance(closed_window(3))})
    message = str(caught.value)
    assert f"nothing listens at http://127.0.0.1:{port}/fuse/results/***" in message
    assert "the connection was refused" in message
    assert os.environ["AIRFLOW__FUSE__RESULTS_SIGNING_KEY"] not in message


# --- While none has arrived, the pokes say why (bounded) ---------------------------------------------------


@pytest.fixture
def receiver_checks(monkeypatch) -> list[str]:
    """The receiver check finds a reason; each campaign asked about is kept."""
    asked: list[str] = []

    def check(context, bulk_task_id, campaign):
        asked.append(campaign.campaigns[0])
        return "the results receiver at http://127.0.0.1/fuse/results/*** answers 404"

    monkeypatch.setattr("airflow_provider_fuse.sensors.campaign_results._receiver_check", check)
    return asked


def test_pokes_that_find_nothing_say_why_after_a_few_then_at_most_every_ten_minutes(
    database, receiver_checks, log_text
):
    from airflow_provider_fuse.results.diagnosis import DIAGNOSE_AFTER_POLLS, DIAGNOSE_EVERY

    waiting = sensor()
    context = {"ti": FakeTaskInstance(open_window(3))}
    for _ in range(DIAGNOSE_AFTER_POLLS - 1):
        assert waiting.poke(context) is False
    assert receiver_checks == []
    for _ in range(5):
        assert waiting.poke(context) is False
    assert receiver_checks == [CAMPAIGN]  # once, not at every poke
    assert "0 of 3 calls in; waiting until" in log_text()
    assert "None so far: the results receiver at http://127.0.0.1/fuse/results/*** answers 404." in log_text()
    waiting._diagnosed_at -= DIAGNOSE_EVERY  # ten minutes on
    assert waiting.poke(context) is False
    assert receiver_checks == [CAMPAIGN, CAMPAIGN]


def test_pokes_do_not_ask_once_an_outcome_has_arrived(arrive, receiver_checks):
    arrive("completed")
    waiting = sensor()
    for _ in range(6):
        assert waiting.poke({"ti": FakeTaskInstance(open_window(3))}) is False
    assert receiver_checks == []


def test_in_reschedule_mode_each_new_poke_process_asks_at_most_once_per_interval(database):
    from airflow_provider_fuse.results.diagnosis import DIAGNOSE_AFTER_POLLS, DIAGNOSE_EVERY
    from airflow_provider_fuse.sensors.campaign_results import Campaign

    interval = 60.0
    queued = time.time()
    campaign = Campaign(calls_queued=3, deadline=queued + 86400, campaigns=(CAMPAIGN,), queued=queued)
    pokes = [queued + interval * (index + 1) for index in range(120)]  # two hours of pokes
    asked = [
        now
        for now in pokes  # a fresh sensor for each poke: reschedule mode remembers nothing
        if sensor(mode="reschedule", poke_interval=interval)._due_for_diagnosis(0, campaign, now)
    ]
    assert asked
    assert asked[0] - queued >= DIAGNOSE_AFTER_POLLS * interval
    assert all(later - earlier >= DIAGNOSE_EVERY - interval for earlier, later in itertools.pairwise(asked))
    assert len(asked) <= 2 * 3600 / DIAGNOSE_EVERY + 1
