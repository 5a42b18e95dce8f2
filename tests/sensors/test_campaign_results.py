"""FuseCampaignResultsSensor without a scheduler: what it waits for, the summary, the threshold, deferral.

Outcomes "arrive" by being stored in a real SQLite results table (ResultsTable.store), as the
receiver stores them.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from airflow_provider_fuse._compat import AirflowException, AirflowFailException, AirflowSkipException
from airflow_provider_fuse.calls import CallDetails, CallStatus
from airflow_provider_fuse.results.table import ResultsTable
from airflow_provider_fuse.results.tokens import UploadPart
from airflow_provider_fuse.sensors.fuse import FuseCampaignResultsSensor
from airflow_provider_fuse.triggers.fuse import FuseCampaignResultsTrigger

try:
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # Airflow 3.1
    from airflow.exceptions import TaskDeferred

DAG_ID, RUN_ID, BULK = "campaign", "manual__2026-11-29T02:00:00+00:00", "queue_calls"
TABLE = "fuse_call_results"


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


def record(calls_queued: int = 3, *, window_end: int | None = None, queued_ago: int = 0, start=None) -> dict:
    """A fuse_results XCom as the bulk operator pushes it; times derived from the clock."""
    return {
        "calls_queued": calls_queued,
        "window_end": window_end,
        "queued_timestamp": int(time.time()) - queued_ago,
        "start_timestamp": start,
    }


def open_window(calls_queued: int = 3) -> dict:
    return record(calls_queued, window_end=int(time.time()) + 3600)


def closed_window(calls_queued: int = 3) -> dict:
    return record(calls_queued, window_end=int(time.time()) - 7200, queued_ago=9000)


@pytest.fixture
def database(tmp_path, monkeypatch):
    """The default results connection on a SQLite file (the [fuse] defaults otherwise)."""
    path = tmp_path / "results.db"
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_RESULTS_DEFAULT", f"sqlite://{path}")
    return path


@pytest.fixture
def arrive(database):
    """Store outcomes of the bulk task as the receiver would: ``arrive("completed", map_index=0)``."""
    table = ResultsTable("fuse_results_default", TABLE)
    counter = iter(range(10**6))

    def store(*statuses: str, map_index: int = -1, part: int = 0, task_id: str = BULK) -> None:
        upload = UploadPart(DAG_ID, RUN_ID, task_id, map_index, part, 1000, int(time.time()) + 86400)
        for status in statuses:
            number = next(counter)
            details = CallDetails(
                status=CallStatus(status),
                attempts=1,
                queued_timestamp=int(time.time()) - 60,
                phone_number=f"617555{number:04d}",
            )
            table.store(upload, details, received=time.time())

    yield store
    table.close()


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
    ended_a_minute_ago = record(3, window_end=int(time.time()) - 60, queued_ago=3600)
    assert sensor().poke({"ti": FakeTaskInstance(ended_a_minute_ago)}) is False
    assert sensor(grace_period=timedelta(0)).poke({"ti": FakeTaskInstance(ended_a_minute_ago)}).is_done


def test_without_an_end_timestamp_the_wait_is_the_dialing_timeout_from_when_the_list_was_queued(arrive):
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
    arrive("completed", "rejected", "completed", map_index=1, part=0)
    arrive("canceled", map_index=1, part=1)
    ti = FakeTaskInstance(open_window(2), open_window(4))
    result = sensor().poke({"ti": ti})
    assert result.is_done
    assert result.xcom_value == {
        "calls_queued": 6,
        "completed": 3,
        "failed": 1,
        "canceled": 1,
        "rejected": 1,
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


def test_something_else_under_the_key_fails_clearly(database):
    with pytest.raises(AirflowFailException, match="left no 'fuse_results' XCom"):
        sensor().poke({"ti": FakeTaskInstance({"calls_queued": "3"})})


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
    upload = UploadPart(DAG_ID, RUN_ID, BULK, -1, 0, 1, int(time.time()) + 60)
    table.store(upload, CallDetails(status=CallStatus("completed"), phone_number="6175550000"), received=0.0)
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


def end_after_deferring(context, **kwargs):
    counts = {"completed": 1, "failed": 2, "canceled": 0, "rejected": 0, "other": 0, "received": 3}
    event = {"status": "done", "counts": counts, "calls_queued": 4, "deadline": time.time() - 1}
    return sensor(deferrable=True, **kwargs).execute_complete(context, event)


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
        "calls_queued": 3,
        "deadline": float(window["window_end"] + 600),
        "results_conn_id": "fuse_results_default",
        "results_table": TABLE,
        "poll_interval": 5.0,
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
