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


def stored_as_rendered(task, name: str):
    """What Airflow stores of a rendered field (the UI's Rendered Template)."""
    from airflow.serialization.helpers import serialize_template_field

    return serialize_template_field(getattr(task, name), name)


def test_a_rendered_suppression_list_shows_its_count_and_is_still_applied(
    fuse_connection, requests_mock, contacts_csv
):
    seen = {}
    requests_mock.post(
        BULK_URL, json=lambda request, ctx: seen.update(decode_multipart(request)) or {"calls_queued": 2}
    )
    suppressed = "6175551234"  # the first contact
    task = operator(contacts_csv, suppression_list=["{{ params.dnc }}", "(808) 555-0104"])
    task.render_template_fields({"params": {"dnc": suppressed}})
    assert stored_as_rendered(task, "suppression_list") == "<2 numbers>"
    assert task.execute({}) == 2
    assert b"\n6175551234," not in seen["csv"][0]
    assert b"Grace" in seen["csv"][0]


def test_a_rendered_suppression_xcom_list_shows_its_count(fuse_connection, contacts_csv):
    task = operator(contacts_csv, suppression_list=["6175550106"], dry_run=True)
    task.render_template_fields({})
    assert stored_as_rendered(task, "suppression_list") == "<1 number>"


def test_a_rendered_suppression_path_shows_as_itself_and_a_number_in_its_place_does_not(
    fuse_connection, contacts_csv, tmp_path
):
    path = str(tmp_path / "dnc.csv")
    task = operator(contacts_csv, suppression_list="{{ params.dnc }}")
    task.render_template_fields({"params": {"dnc": path}})
    assert stored_as_rendered(task, "suppression_list") == path
    mistaken = operator(contacts_csv, suppression_list="{{ params.dnc }}")
    mistaken.render_template_fields({"params": {"dnc": "6175550106,2135550101"}})
    shown = stored_as_rendered(mistaken, "suppression_list")
    assert "6175550106" not in shown
    assert "2135550101" not in shown


def test_a_rendered_suppression_query_shows_its_connection_not_its_sql(fuse_connection, contacts_csv):
    from airflow_provider_fuse.suppression import SuppressionQuery

    query = SuppressionQuery("dnc_db", "SELECT phone FROM dnc WHERE phone <> '6175550106'")
    task = operator(contacts_csv, suppression_list=query)
    task.render_template_fields({})
    shown = stored_as_rendered(task, "suppression_list")
    assert shown == "SuppressionQuery(conn_id='dnc_db', sql=...)"


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
