"""FuseCallStatusSensor without a scheduler: poke, the outcome of each terminal status, deferral."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_fuse._compat import AirflowException, AirflowFailException, AirflowSkipException
from airflow_provider_fuse.sensors.fuse import FuseCallStatusSensor
from airflow_provider_fuse.triggers.fuse import FuseCallStatusTrigger
from tests.helpers import BASE_URL

try:
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # Airflow 3.1
    from airflow.exceptions import TaskDeferred

STATUS_URL = f"{BASE_URL}/outbound/77"


def details(status: str, **extra) -> dict:
    return {"call_details": {"status": status, "attempts": "1", "phone_number": "'6175551234'", **extra}}


class FakeTaskInstance:
    def __init__(self) -> None:
        self.xcom: dict = {}

    def xcom_push(self, key, value):
        self.xcom[key] = value


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr("airflow_provider_fuse.hooks.fuse.time.sleep", lambda seconds: None)


def sensor(**kwargs) -> FuseCallStatusSensor:
    return FuseCallStatusSensor(task_id="wait", call_id="77", poke_interval=1, **kwargs)


def test_call_id_and_the_connection_id_are_templated():
    assert tuple(FuseCallStatusSensor.template_fields) == ("call_id", "fuse_conn_id")


def test_the_rendered_connection_id_is_the_one_the_hook_reads():
    waiting = sensor(fuse_conn_id="{{ params.fuse_conn }}")
    waiting.render_template_fields({"params": {"fuse_conn": "fuse_campaigns"}})
    assert waiting.fuse_conn_id == "fuse_campaigns"
    assert waiting.hook.fuse_conn_id == "fuse_campaigns"


@pytest.mark.parametrize("status", ["queued", "dialing", "connected", "ringing"])
def test_a_call_still_going_is_not_done(fuse_connection, requests_mock, status):
    requests_mock.get(STATUS_URL, json=details(status))
    assert sensor().poke({}) is False


def test_a_completed_call_is_done_with_its_details_and_no_number(fuse_connection, requests_mock, log_text):
    requests_mock.get(STATUS_URL, json=details("completed", duration="30"))
    result = sensor().poke({})
    assert result.is_done
    assert result.xcom_value["status"] == "completed"
    assert result.xcom_value["duration"] == 30
    assert result.xcom_value["call_id"] == "77"
    assert "phone_number" not in result.xcom_value
    assert "6175551234" not in log_text()


def test_execute_in_poke_mode_returns_the_details(fuse_connection, requests_mock):
    requests_mock.get(STATUS_URL, [{"json": details("dialing")}, {"json": details("completed")}])
    assert sensor().execute({"ti": FakeTaskInstance()})["status"] == "completed"
    assert requests_mock.call_count == 2


@pytest.mark.parametrize("status", ["failed", "canceled", "rejected"])
def test_another_terminal_status_fails_naming_it(fuse_connection, requests_mock, status):
    requests_mock.get(STATUS_URL, json=details(status))
    ti = FakeTaskInstance()
    with pytest.raises(AirflowFailException, match=f"Fuse call 77 ended {status}, not completed"):
        sensor().poke({"ti": ti})
    assert ti.xcom["call_details"]["status"] == status
    assert "phone_number" not in ti.xcom["call_details"]


def test_on_failure_status_skip_skips(fuse_connection, requests_mock):
    requests_mock.get(STATUS_URL, json=details("failed"))
    with pytest.raises(AirflowSkipException, match="ended failed"):
        sensor(on_failure_status="skip").poke({})


def test_success_statuses_are_configurable(fuse_connection, requests_mock):
    requests_mock.get(STATUS_URL, json=details("canceled"))
    assert sensor(success_statuses={"completed", "canceled"}).poke({}).is_done


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"success_statuses": ["dialing"]}, "success_statuses must be terminal"),
        ({"success_statuses": []}, "success_statuses must be terminal"),
        ({"on_failure_status": "ignore"}, "on_failure_status"),
    ],
)
def test_arguments_are_checked_when_the_dag_is_parsed(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sensor(**kwargs)


@pytest.mark.parametrize(
    ("hook_params", "match"),
    [
        ({"connect_retry": 3}, "'connect_retry' is not a FuseHook setting"),
        ({"connect_retries": 11}, "connect_retries must be an integer from 0 to 10, got 11"),
        ({"fuse_conn_id": "other"}, "fuse_conn_id"),
        ([("connect_retries", 1)], "hook_params: must be a dict"),
    ],
)
def test_hook_params_are_checked_when_the_dag_is_parsed_as_the_operators_check_them(hook_params, match):
    with pytest.raises(ValueError, match=match):
        sensor(hook_params=hook_params)


def test_hook_params_are_passed_to_the_hook():
    hook = sensor(hook_params={"connect_retries": 0, "retry_backoff": 0.25}).hook
    assert (hook.connect_retries, hook.retry_backoff) == (0, 0.25)


def test_without_hook_params_the_hook_keeps_its_defaults():
    hook = sensor().hook
    assert (hook.connect_retries, hook.retry_backoff) == (2, 1.0)


def test_connect_retries_from_hook_params_bound_how_often_a_status_is_asked_again(
    fuse_connection, requests_mock
):
    requests_mock.get(STATUS_URL, status_code=503, json={"error": "Maintenance."})
    with pytest.raises(AirflowException, match="503"):
        sensor(hook_params={"connect_retries": 0}).poke({})
    assert requests_mock.call_count == 1


@pytest.mark.parametrize("status", [401, 403, 404])
def test_a_rejection_fails_without_retries(fuse_connection, requests_mock, status):
    requests_mock.get(STATUS_URL, status_code=status, json={"error": "No outbound call was found."})
    with pytest.raises(AirflowFailException, match=f"Fuse API answered {status}"):
        sensor().poke({})


def test_a_persistent_5xx_is_left_to_the_task_retries(fuse_connection, requests_mock):
    requests_mock.get(STATUS_URL, status_code=503, json={"error": "Maintenance."})
    with pytest.raises(AirflowException, match="503") as caught:
        sensor().poke({})
    assert not isinstance(caught.value, AirflowFailException)
    assert requests_mock.call_count == 3  # asked again by the hook: a read is safe to repeat


# --- deferrable ---------------------------------------------------------------------------------------


def test_deferrable_defers_to_the_trigger_with_ids_and_interval(fuse_connection, requests_mock):
    requests_mock.get(STATUS_URL, json=details("dialing"))
    with pytest.raises(TaskDeferred) as caught:
        sensor(deferrable=True, success_statuses=["completed", "canceled"], timeout=600).execute({})
    deferred = caught.value
    assert isinstance(deferred.trigger, FuseCallStatusTrigger)
    assert deferred.method_name == "execute_complete"
    assert deferred.trigger.serialize()[1] == {
        "call_id": "77",
        "fuse_conn_id": "fuse_default",
        "poll_interval": 1.0,
    }
    assert deferred.timeout.total_seconds() == 600


def test_deferrable_hands_hook_params_to_the_trigger(fuse_connection, requests_mock):
    requests_mock.get(STATUS_URL, json=details("dialing"))
    with pytest.raises(TaskDeferred) as caught:
        sensor(deferrable=True, hook_params={"connect_retries": 5, "retry_backoff": 0.5}).execute({})
    trigger = caught.value.trigger
    assert trigger.serialize()[1]["hook_params"] == {"connect_retries": 5, "retry_backoff": 0.5}


def test_deferrable_does_not_defer_for_a_call_that_already_ended(fuse_connection, requests_mock):
    requests_mock.get(STATUS_URL, json=details("completed"))
    assert sensor(deferrable=True).execute({})["status"] == "completed"


def test_execute_complete_returns_the_details_of_a_success():
    done = {"call_id": "77", "status": "completed", "attempts": 1}
    assert sensor().execute_complete({}, {"status": "terminal", "call_details": done}) == done


def test_execute_complete_does_not_read_a_success_field_of_the_event():
    # 0.1.0's trigger sent one; the sensor's own rule decides, from the status.
    event = {"status": "terminal", "success": True, "call_details": {"call_id": "77", "status": "failed"}}
    with pytest.raises(AirflowFailException, match="ended failed"):
        sensor().execute_complete({}, event)


# --- one rule for an ended call, on every path ----------------------------------------------------


def end_by_poke(fuse_connection, requests_mock, context, **kwargs):
    requests_mock.get(STATUS_URL, json=details("failed"))
    return sensor(**kwargs).poke(context)


def end_before_deferring(fuse_connection, requests_mock, context, **kwargs):
    requests_mock.get(STATUS_URL, json=details("failed"))
    return sensor(deferrable=True, **kwargs).execute(context)


def end_after_deferring(fuse_connection, requests_mock, context, **kwargs):
    event = {"status": "terminal", "call_details": {"call_id": "77", "status": "failed"}}
    return sensor(deferrable=True, **kwargs).execute_complete(context, event)


PATHS = pytest.mark.parametrize("ends", [end_by_poke, end_before_deferring, end_after_deferring])


@PATHS
def test_an_unsuccessful_end_fails_without_soft_fail(fuse_connection, requests_mock, ends):
    with pytest.raises(AirflowFailException, match="Fuse call 77 ended failed, not completed"):
        ends(fuse_connection, requests_mock, {})


@PATHS
def test_an_unsuccessful_end_skips_with_soft_fail(fuse_connection, requests_mock, ends):
    with pytest.raises(AirflowSkipException, match="Fuse call 77 ended failed, not completed"):
        ends(fuse_connection, requests_mock, {}, soft_fail=True)


@PATHS
def test_an_unsuccessful_end_skips_with_on_failure_status_skip(fuse_connection, requests_mock, ends):
    with pytest.raises(AirflowSkipException, match="ended failed"):
        ends(fuse_connection, requests_mock, {}, on_failure_status="skip")


@PATHS
def test_an_unsuccessful_end_pushes_its_details_first(fuse_connection, requests_mock, ends):
    ti = FakeTaskInstance()
    with pytest.raises(AirflowSkipException):
        ends(fuse_connection, requests_mock, {"ti": ti}, soft_fail=True)
    assert ti.xcom["call_details"]["status"] == "failed"
    assert "phone_number" not in ti.xcom["call_details"]


def test_a_rejection_before_deferring_fails_without_soft_fail(fuse_connection, requests_mock):
    requests_mock.get(STATUS_URL, status_code=404, json={"error": "No outbound call was found."})
    with pytest.raises(AirflowFailException, match="Fuse API answered 404"):
        sensor(deferrable=True).execute({})


def test_a_rejection_before_deferring_skips_with_soft_fail(fuse_connection, requests_mock):
    requests_mock.get(STATUS_URL, status_code=404, json={"error": "No outbound call was found."})
    with pytest.raises(AirflowSkipException, match="Fuse API answered 404"):
        sensor(deferrable=True, soft_fail=True).execute({})


def test_a_persistent_5xx_before_deferring_is_left_to_the_task_retries_with_soft_fail(
    fuse_connection, requests_mock
):
    requests_mock.get(STATUS_URL, status_code=503, json={"error": "Maintenance."})
    with pytest.raises(AirflowException, match="503") as caught:
        sensor(deferrable=True, soft_fail=True).execute({})
    assert not isinstance(caught.value, (AirflowFailException, AirflowSkipException))


def test_a_rejection_event_skips_with_soft_fail():
    event = {"status": "error", "message": "Fuse API answered 404", "retryable": False}
    with pytest.raises(AirflowSkipException, match="404"):
        sensor(soft_fail=True).execute_complete({}, event)


def test_execute_complete_maps_trigger_errors():
    with pytest.raises(AirflowFailException, match="404"):
        sensor().execute_complete(
            {}, {"status": "error", "message": "Fuse API answered 404", "retryable": False}
        )
    with pytest.raises(AirflowException, match="503") as caught:
        sensor().execute_complete(
            {}, {"status": "error", "message": "Fuse API answered 503", "retryable": True}
        )
    assert not isinstance(caught.value, AirflowFailException)


def test_a_request_that_cannot_be_made_fails_without_retries(fuse_connection, requests_mock):
    requests_mock.get(STATUS_URL, exc=requests.exceptions.InvalidURL("bad port"))
    with pytest.raises(AirflowFailException, match="could not be made"):
        sensor().poke({})
    assert requests_mock.call_count == 1


def test_a_request_that_cannot_be_made_skips_with_soft_fail(fuse_connection, requests_mock):
    requests_mock.get(STATUS_URL, exc=requests.exceptions.InvalidURL("bad port"))
    with pytest.raises(AirflowSkipException, match="could not be made"):
        sensor(deferrable=True, soft_fail=True).execute({})
