"""What Airflow stores of a rendered task, and what the guard's ledger stores, hold no phone number,
parameter value or URL credential; what is sent is still the rendered value.
"""

from __future__ import annotations

import pytest

from airflow_provider_fuse.guard import QUEUE_CALL_KEY
from airflow_provider_fuse.operators.fuse import FuseQueueCallOperator
from tests.helpers import BASE_URL, MemoryStore, decode_multipart
from tests.operators.test_fuse import BULK_URL, operator

QUEUE_URL = f"{BASE_URL}/apps/12/34/queue"


@pytest.fixture(autouse=True)
def _no_connect_backoff(monkeypatch):
    monkeypatch.setattr("airflow_provider_fuse.hooks.fuse.time.sleep", lambda seconds: None)


# --- what Airflow stores as rendered fields ------------------------------------------------


def test_a_result_url_is_shown_without_its_credentials(
    fuse_connection, requests_mock, contacts_csv, log_text
):
    url = "https://user:s3cr3t-pw@results.example.com/fuse?token=tok-123456&campaign=x"
    task = operator(contacts_csv, result_url="{{ params.url }}", dry_run=True)
    task.render_template_fields({"params": {"url": url}})
    assert task.result_url == "https://***@results.example.com/fuse?token=***&campaign=***"
    assert task.execute({}) == 3
    logs = log_text()
    assert "s3cr3t-pw" not in logs
    assert "tok-123456" not in logs


def test_the_result_url_sent_is_the_rendered_one(fuse_connection, requests_mock, contacts_csv):
    url = "https://results.example.com/fuse?token=tok-123456"
    seen = {}
    requests_mock.post(
        BULK_URL, json=lambda request, ctx: seen.update(decode_multipart(request)) or {"calls_queued": 3}
    )
    task = operator(contacts_csv, result_url="{{ params.url }}")
    task.render_template_fields({"params": {"url": url}})
    task.execute({})
    assert seen["result_url"][0] == url.encode()


def test_a_rendered_call_shows_no_number_and_no_parameter_value_however_short(fuse_connection, requests_mock):
    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    task = FuseQueueCallOperator(
        task_id="call",
        application_id=12,
        deployment_id=34,
        phone_number="{{ params.phone }}",
        call_parameters={"first_name": "{{ params.name }}", "age": 7},
    )
    task.render_template_fields({"params": {"phone": "16175551234", "name": "Ada"}})
    assert task.phone_number == "***"
    assert task.call_parameters == {"first_name": "***", "age": "***"}
    assert task.execute({}) == "77"
    sent = decode_multipart(requests_mock.last_request)
    assert sent["phone_number"][0] == b"16175551234"
    assert b'"first_name":"Ada"' in sent["call_parameters"][0]


def test_rendering_twice_keeps_the_value(fuse_connection, requests_mock):
    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    task = FuseQueueCallOperator(
        task_id="call", application_id=12, deployment_id=34, phone_number="{{ params.phone }}"
    )
    task.render_template_fields({"params": {"phone": "16175551234"}})
    task.render_template_fields({"params": {"phone": "16175551234"}})
    task.execute({})
    assert decode_multipart(requests_mock.last_request)["phone_number"][0] == b"16175551234"


def test_a_mapped_call_renders_through_the_sealed_fields():
    """Mapped tasks are built "from mapped" and render through ``unmapped_task._do_render_template_fields``:
    the fields still hold the template until rendering, then seal the rendered number."""
    from airflow.sdk import DAG

    with DAG("mapped", schedule=None):
        mapped = FuseQueueCallOperator.partial(task_id="call", application_id=12, deployment_id=34).expand(
            phone_number=["{{ '617555' }}1234", "{{ '617555' }}1235"]
        )
    unmapped = mapped.unmap({"phone_number": "{{ '617555' }}1235"})
    assert unmapped.phone_number == "{{ '617555' }}1235"
    unmapped._do_render_template_fields(
        unmapped, unmapped.template_fields, {}, unmapped.get_template_env(), set()
    )
    assert unmapped.phone_number == "***"
    assert type(unmapped).phone_number.value(unmapped) == "6175551235"


# --- one sealing scheme for both ledgers --------------------------------------------------------


def test_the_single_call_ledger_holds_no_recoverable_number(fuse_connection, requests_mock):
    import hashlib
    import json

    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    store = MemoryStore()
    task = FuseQueueCallOperator(
        task_id="call", application_id=12, deployment_id=34, phone_number="16175551234"
    )
    task.execute({"task_state_store": store})
    stored = json.dumps(store.values[QUEUE_CALL_KEY])
    assert "16175551234" not in stored
    assert hashlib.sha256(b"16175551234").hexdigest() not in stored
    assert len(bytes.fromhex(store.values[QUEUE_CALL_KEY]["salt"])) == 16


def test_a_template_assigned_after_construction_is_still_rendered(fuse_connection, requests_mock):
    requests_mock.post(QUEUE_URL, json={"call_id": "77"})
    task = FuseQueueCallOperator(task_id="call", application_id=12, deployment_id=34, phone_number="0")
    task.phone_number = "{{ params.phone }}"
    task.call_parameters = {"name": "{{ params.name }}"}
    assert task.phone_number == "{{ params.phone }}"  # what the DAG (and its serialization) shows
    task.render_template_fields({"params": {"phone": "16175551234", "name": "Grace"}})
    assert (task.phone_number, task.call_parameters) == ("***", {"name": "***"})
    task.execute({})
    sent = decode_multipart(requests_mock.last_request)
    assert sent["phone_number"][0] == b"16175551234"
    assert b'"name":"Grace"' in sent["call_parameters"][0]


def test_a_bare_query_token_is_hidden_whole():
    from airflow_provider_fuse.masking import shown_url

    assert (
        shown_url("https://results.example.com/fuse?s3cr3tT0kenValue")
        == "https://results.example.com/fuse?***"
    )
