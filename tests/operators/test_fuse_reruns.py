"""What the duplicate guard's refusals tell the person who has to decide: one wording for both operators."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_fuse._compat import AirflowFailException
from airflow_provider_fuse.guard import LEDGER_KEY, QUEUE_CALL_KEY
from airflow_provider_fuse.operators.fuse import RESEND_CONF_KEY, FuseBulkQueueOperator, FuseQueueCallOperator
from tests.helpers import BASE_URL, MemoryStore

IDS = {"application_id": 12, "deployment_id": 34}


@pytest.fixture(autouse=True)
def _no_connect_backoff(monkeypatch):
    monkeypatch.setattr("airflow_provider_fuse.hooks.fuse.time.sleep", lambda seconds: None)


@pytest.fixture
def send(contacts_csv):
    """Each operator's execute, with the keyword arguments it is built with."""
    return {
        "bulk": lambda context, **kwargs: FuseBulkQueueOperator(
            task_id="queue_calls", csv_path=str(contacts_csv), **IDS, **kwargs
        ).execute(context),
        "call": lambda context, **kwargs: FuseQueueCallOperator(
            task_id="queue_call", phone_number=kwargs.pop("phone_number", "16175551234"), **IDS, **kwargs
        ).execute(context),
    }


ENDPOINTS = {"bulk": ("bulk_queue", {"calls_queued": 3}), "call": ("queue", {"call_id": "77"})}
KEYS = {"bulk": LEDGER_KEY, "call": QUEUE_CALL_KEY}


@pytest.mark.parametrize("kind", ["bulk", "call"])
def test_an_unknown_outcome_refusal_names_the_deployment_the_key_and_the_way_on(
    fuse_connection, requests_mock, send, kind
):
    path, _ = ENDPOINTS[kind]
    requests_mock.post(f"{BASE_URL}/apps/12/34/{path}", exc=requests.exceptions.ReadTimeout("lost"))
    context = {"task_state_store": MemoryStore()}
    with pytest.raises(AirflowFailException, match="Unknown outcome"):
        send[kind](context)
    with pytest.raises(AirflowFailException) as caught:
        send[kind](context)
    message = str(caught.value)
    assert message.startswith("Not sending: the outcome of an earlier try is unknown")
    assert "Check the outbound calls of application 12 / deployment 34 in Fuse" in message
    assert f"state-store/{KEYS[kind]})" in message
    assert "on_unknown_outcome='retry'" in message
    assert requests_mock.call_count == 1


@pytest.mark.parametrize("kind", ["bulk", "call"])
def test_a_changed_send_after_success_is_refused_naming_both_resend_switches(
    fuse_connection, requests_mock, send, kind
):
    path, answer = ENDPOINTS[kind]
    requests_mock.post(f"{BASE_URL}/apps/12/34/{path}", json=answer)
    context = {"task_state_store": MemoryStore()}
    send[kind](context)
    changed = {"max_attempts": 1} if kind == "bulk" else {"phone_number": "16175550000"}
    with pytest.raises(AirflowFailException) as caught:
        send[kind](context, **changed)
    message = str(caught.value)
    assert message.startswith("Not sending: an earlier try of this task already queued")
    assert "allow_resend=True" in message
    assert f'{{"{RESEND_CONF_KEY}": true}}' in message
    assert requests_mock.call_count == 1


@pytest.mark.parametrize("kind", ["bulk", "call"])
def test_a_state_store_key_holding_no_ledger_is_refused_without_advising_a_resend(
    fuse_connection, requests_mock, send, kind
):
    store = MemoryStore()
    store.set(KEYS[kind], {"something": "else"})
    with pytest.raises(AirflowFailException) as caught:
        send[kind]({"task_state_store": store}, allow_resend=True)
    message = str(caught.value)
    assert message.startswith("Not sending: the task state store holds something under")
    assert "allow_resend" not in message
    assert not requests_mock.called


@pytest.mark.parametrize("kind", ["bulk", "call"])
def test_what_was_queued_before_a_resend_replaced_it_is_refused_saying_how_to_dial_it_again(
    fuse_connection, requests_mock, send, kind
):
    path, answer = ENDPOINTS[kind]
    url = f"{BASE_URL}/apps/12/34/{path}"
    context = {"task_state_store": MemoryStore()}
    if kind == "bulk":  # list A: its first part queued, its second rejected
        requests_mock.post(
            url, [{"json": {"calls_queued": 1}}, {"status_code": 400, "json": {"error": "No."}}]
        )
        with pytest.raises(AirflowFailException):
            send[kind](context, chunk_size=1)
        requests_mock.post(url, json={"calls_queued": 1})
        send[kind](context, chunk_size=1, max_attempts=1, allow_resend=True)  # list B, sent once
        again = {"chunk_size": 1}
    else:  # call A, then call B
        requests_mock.post(url, json=answer)
        send[kind](context)
        send[kind](context, phone_number="16175550000", allow_resend=True)
        again = {}
    sent = requests_mock.call_count
    with pytest.raises(AirflowFailException) as caught:
        send[kind](context, allow_resend=True, **again)  # A again, resend allowed
    message = str(caught.value)
    assert message.startswith("Not sending: an earlier try of this task already queued")
    assert "this very" in message
    assert "A resend (allow_resend) never sends again what this task instance queued" in message
    assert f"delete this task instance's state-store key '{KEYS[kind]}'" in message
    assert "docs/safety.md" in message
    assert "set allow_resend=True" not in message
    assert RESEND_CONF_KEY not in message
    assert requests_mock.call_count == sent
