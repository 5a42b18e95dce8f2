"""FuseQueueCallOperator and FuseCancelCallsOperator without a scheduler: outcomes, guard, masking."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import requests

from airflow_provider_fuse._compat import AirflowException, AirflowFailException
from airflow_provider_fuse.operators.fuse import FuseCancelCallsOperator, FuseQueueCallOperator
from tests.helpers import BASE_URL, MemoryStore, assert_retryable, decode_multipart

QUEUE_URL = f"{BASE_URL}/apps/12/34/queue"
CANCEL_URL = f"{BASE_URL}/apps/12/34/cancel"
PHONE = "16175551234"


@pytest.fixture(autouse=True)
def _no_connect_backoff(monkeypatch):
    monkeypatch.setattr("airflow_provider_fuse.hooks.fuse.time.sleep", lambda seconds: None)


def queue_call(**kwargs) -> FuseQueueCallOperator:
    arguments = {"task_id": "queue_call", "application_id": 12, "deployment_id": 34, "phone_number": PHONE}
    arguments.update(kwargs)
    return FuseQueueCallOperator(**arguments)


def cancel(**kwargs) -> FuseCancelCallsOperator:
    return FuseCancelCallsOperator(task_id="cancel", application_id=12, deployment_id=34, **kwargs)


# --- FuseQueueCallOperator ---------------------------------------------------------------------------


def test_queue_call_template_fields():
    assert tuple(FuseQueueCallOperator.template_fields) == (
        "application_id",
        "deployment_id",
        "phone_number",
        "call_parameters",
        "start_timestamp",
        "end_timestamp",
        "max_attempts",
        "reattempt_wait",
        "result_url",
        "fuse_conn_id",
    )
    assert FuseQueueCallOperator.template_fields_renderers == {"call_parameters": "json"}


def test_success_returns_the_call_id_and_logs_no_number(fuse_connection, requests_mock, log_text):
    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    assert queue_call(call_parameters={"first_name": "Grace Hopper"}).execute({}) == "77"
    logs = log_text()
    assert "Fuse queued call 77: application 12 / deployment 34" in logs
    assert PHONE not in logs
    assert "Grace Hopper" not in logs


def test_rendered_phone_and_parameters_are_sent_as_a_json_object(fuse_connection, requests_mock):
    seen = {}
    requests_mock.post(
        QUEUE_URL, json=lambda request, context: seen.update(decode_multipart(request)) or {"call_id": "9"}
    )
    task = queue_call(
        phone_number="{{ params.phone }}",
        call_parameters={"name": "{{ params.name }}", "visits": 3},
        max_attempts="{{ params.attempts }}",
        reattempt_wait=60,
    )
    context = {"params": {"phone": "tel:+16175551234", "name": "Ada", "attempts": 2}}
    task.render_template_fields(context)
    assert task.execute(context) == "9"
    assert seen["phone_number"][0] == b"tel:+16175551234"
    assert json.loads(seen["call_parameters"][0]) == {"name": "Ada", "visits": 3}
    assert seen["max_attempts"][0] == b"2"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"phone_number": "(617) 555-1234"}, "phone_number: is not in one of Fuse's formats"),
        ({"call_parameters": {"a": [1]}}, "call_parameters.a: must be a string, number"),
        ({"deployment_id": "x"}, "deployment_id: must be an integer"),
        ({"end_timestamp": "2001-01-01T00:00:00+00:00"}, "end_timestamp: is already past"),
        ({"start_timestamp": datetime(2030, 1, 1)}, "start_timestamp: is a naive datetime"),
    ],
)
def test_invalid_arguments_fail_without_retries_and_send_nothing(
    fuse_connection, requests_mock, kwargs, match
):
    with pytest.raises(AirflowFailException, match=match) as caught:
        queue_call(**kwargs).execute({})
    assert "Nothing was sent to Fuse" in str(caught.value)
    assert not requests_mock.called


def test_a_rejection_fails_without_retries_in_fuses_words(fuse_connection, requests_mock):
    requests_mock.post(QUEUE_URL, status_code=404, json={"error": "No deployment was found."})
    with pytest.raises(AirflowFailException, match="Fuse API answered 404: No deployment was found."):
        queue_call().execute({})


def test_too_many_requests_and_not_sent_are_left_to_the_task_retries(fuse_connection, requests_mock):
    requests_mock.post(QUEUE_URL, status_code=429, json={"error": "Slow down."})
    with pytest.raises(AirflowException) as caught:
        queue_call().execute({})
    assert_retryable(caught.value)
    requests_mock.post(QUEUE_URL, exc=requests.exceptions.ConnectTimeout("no route"))
    with pytest.raises(AirflowException) as caught:
        queue_call().execute({})
    assert_retryable(caught.value)
    assert "not sent" in str(caught.value)


def test_an_unknown_outcome_fails_without_retries_unless_asked(fuse_connection, requests_mock):
    requests_mock.post(QUEUE_URL, status_code=502, text="<html>Bad Gateway</html>")
    with pytest.raises(AirflowFailException, match="Fuse may have queued the call"):
        queue_call().execute({})
    with pytest.raises(AirflowException, match="on_unknown_outcome='retry'") as caught:
        queue_call(on_unknown_outcome="retry").execute({})
    assert_retryable(caught.value)
    assert requests_mock.call_count == 2


def test_a_200_naming_no_call_is_an_unknown_outcome(fuse_connection, requests_mock):
    requests_mock.post(QUEUE_URL, json={"ok": True})
    with pytest.raises(AirflowFailException, match="Unknown outcome: .*names no call_id"):
        queue_call().execute({})


def test_a_retry_after_success_returns_the_recorded_call_id_without_calling(
    fuse_connection, requests_mock, log_text
):
    context = {"task_state_store": MemoryStore()}
    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    assert queue_call().execute(context) == "77"
    assert queue_call().execute(context) == "77"
    assert requests_mock.call_count == 1
    assert "already queued this call (call id 77" in log_text()
    assert PHONE not in json.dumps(context["task_state_store"].values)


def test_an_intent_without_a_result_blocks_the_next_try(fuse_connection, requests_mock):
    context = {"task_state_store": MemoryStore()}
    requests_mock.post(QUEUE_URL, exc=requests.exceptions.ReadTimeout("answer lost"))
    with pytest.raises(AirflowFailException, match="Unknown outcome"):
        queue_call().execute(context)
    requests_mock.post(QUEUE_URL, json={"call_id": "78"})
    with pytest.raises(AirflowFailException, match="outcome of an earlier try is unknown") as caught:
        queue_call().execute(context)
    assert "airflow_provider_fuse.queue_call" in str(caught.value)
    assert requests_mock.call_count == 1
    assert queue_call(on_unknown_outcome="retry").execute(context) == "78"
    assert queue_call().execute(context) == "78"
    assert requests_mock.call_count == 2


def test_a_rejection_clears_the_intent_so_a_fixed_retry_calls(fuse_connection, requests_mock):
    context = {"task_state_store": MemoryStore()}
    requests_mock.post(QUEUE_URL, status_code=429, json={"error": "Slow down."})
    with pytest.raises(AirflowException):
        queue_call().execute(context)
    requests_mock.post(QUEUE_URL, json={"call_id": "79"})
    assert queue_call().execute(context) == "79"


def test_another_call_after_success_fails_unless_resend_is_allowed(fuse_connection, requests_mock):
    context = {"task_state_store": MemoryStore()}
    requests_mock.post(QUEUE_URL, json={"call_id": "80"})
    queue_call().execute(context)
    with pytest.raises(AirflowFailException, match="content of the call changed"):
        queue_call(phone_number="6175550000").execute(context)
    requests_mock.post(QUEUE_URL, json={"call_id": "81"})
    assert queue_call(phone_number="6175550000", allow_resend=True).execute(context) == "81"


def test_rendered_phone_and_parameters_are_masked_in_logs_and_rendered_fields():
    """What Airflow stores as rendered fields is redacted by the same masker the logs go through."""
    from airflow.sdk import DAG
    from airflow.sdk._shared.secrets_masker import redact
    from airflow.sdk._shared.secrets_masker.secrets_masker import SecretsMasker
    from airflow.sdk.execution_time.task_runner import _serialize_rendered_fields

    SecretsMasker.enable_log_masking()
    with DAG("masking", schedule=None, start_date=datetime(2026, 1, 1)):
        task = queue_call(
            phone_number="{{ params.phone }}",
            call_parameters={"name": "{{ params.name }}", "account": "A-31415"},
        )
    task.render_template_fields(
        {"params": {"phone": "tel:+16175559876;ani=8005550199", "name": "Grace Hopper"}}
    )
    stored = json.dumps(_serialize_rendered_fields(task))
    assert "9876" not in stored
    assert "Grace Hopper" not in stored
    assert "A-31415" not in stored
    line = redact("dialing 16175559876 (6175559876) for Grace Hopper, account A-31415")
    assert "9876" not in line
    assert "Grace Hopper" not in line
    assert "A-31415" not in line


# --- FuseCancelCallsOperator -------------------------------------------------------------------------


def test_cancel_sends_a_delete_and_logs_it(fuse_connection, requests_mock, log_text):
    requests_mock.delete(CANCEL_URL, status_code=202)
    assert cancel().execute({}) is None
    assert requests_mock.last_request.method == "DELETE"
    assert "Fuse canceled the pending calls of application 12 / deployment 34." in log_text()


def test_cancel_ids_are_templated_and_validated(fuse_connection, requests_mock):
    assert tuple(FuseCancelCallsOperator.template_fields) == (
        "application_id",
        "deployment_id",
        "fuse_conn_id",
    )
    with pytest.raises(AirflowFailException, match="application_id"):
        FuseCancelCallsOperator(task_id="c", application_id="0", deployment_id=34).execute({})
    assert not requests_mock.called


def test_cancel_rejection_fails_without_retries(fuse_connection, requests_mock):
    message = "No deployment was found by that application id and deployment id."
    requests_mock.delete(CANCEL_URL, status_code=404, json={"error": message})
    with pytest.raises(AirflowFailException, match=f"Fuse API answered 404: {message}"):
        cancel().execute({})


def test_cancel_unknown_outcome_is_retried_by_default(fuse_connection, requests_mock):
    requests_mock.delete(CANCEL_URL, status_code=500, json={"error": "Database error."})
    with pytest.raises(AirflowException, match="canceling again is harmless") as caught:
        cancel().execute({})
    assert_retryable(caught.value)
    with pytest.raises(AirflowFailException):
        cancel(on_unknown_outcome="fail").execute({})


def test_a_stale_run_makes_no_call(fuse_connection, requests_mock):
    from airflow_provider_fuse._compat import AirflowSkipException

    old = {"data_interval_end": datetime(2026, 1, 1, tzinfo=timezone.utc)}
    with pytest.raises(AirflowSkipException, match="Stale run"):
        queue_call().execute(old)
    assert not requests_mock.called


def test_a_clear_after_the_call_was_queued_returns_its_id_even_for_a_stale_run(
    fuse_connection, requests_mock
):
    requests_mock.post(QUEUE_URL, json={"call_id": "c-123"})
    store = MemoryStore()
    assert queue_call().execute({"task_state_store": store}) == "c-123"
    stale = {"task_state_store": store, "data_interval_end": datetime(2026, 1, 1, tzinfo=timezone.utc)}
    assert queue_call().execute(stale) == "c-123"
    assert requests_mock.call_count == 1
