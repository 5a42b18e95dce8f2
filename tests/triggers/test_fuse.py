"""FuseCallStatusTrigger: what it serializes, and its polling run against the Fuse sandbox."""

from __future__ import annotations

import asyncio
import json

import pytest

from airflow_provider_fuse.hooks.fuse import FuseHook
from airflow_provider_fuse.sandbox import FuseSandbox
from airflow_provider_fuse.triggers.fuse import FuseCallStatusTrigger
from tests.helpers import DEVELOPER_KEY, EMAIL, connection_json


@pytest.fixture(scope="module")
def sandbox():
    with FuseSandbox(time_scale=600) as running:
        yield running


@pytest.fixture
def connected(sandbox, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", sandbox.connection_json())
    monkeypatch.setattr(FuseCallStatusTrigger, "RETRY_BACKOFF", 0.0)
    sandbox.reset()
    return sandbox


def first_event(trigger: FuseCallStatusTrigger) -> dict:
    async def run() -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(run(), timeout=30))


def queue(phone: str = "6175551234") -> str:
    return FuseHook(retry_backoff=0.0).queue_call(101, 202, phone)


def test_serialize_holds_ids_interval_and_statuses_only(fuse_connection):
    trigger = FuseCallStatusTrigger(call_id="77", poll_interval=5, success_statuses={"completed", "canceled"})
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_fuse.triggers.fuse.FuseCallStatusTrigger"
    assert kwargs == {
        "call_id": "77",
        "fuse_conn_id": "fuse_default",
        "poll_interval": 5.0,
        "success_statuses": ["canceled", "completed"],
    }
    text = json.dumps(kwargs)
    assert DEVELOPER_KEY not in text
    assert EMAIL not in text
    assert FuseCallStatusTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_a_completed_call_fires_one_event_without_the_number(connected):
    call_id = queue()
    payload = first_event(FuseCallStatusTrigger(call_id=call_id, poll_interval=0.05))
    assert payload["status"] == "terminal"
    assert payload["success"] is True
    assert payload["call_details"]["status"] == "completed"
    assert payload["call_details"]["duration"] == 30
    assert "6175551234" not in json.dumps(payload)


def test_an_unanswered_call_fires_as_not_a_success(connected):
    call_id = queue("6175551239")  # the sandbox's rule: a number ending in 9 never answers
    payload = first_event(FuseCallStatusTrigger(call_id=call_id, poll_interval=0.05))
    assert (payload["success"], payload["call_details"]["status"]) == (False, "failed")


def test_polling_gets_are_asked_again_after_5xx_and_dropped_answers(connected):
    call_id = queue()
    connected.inject_fault(status=502, body="html", endpoint="outbound")
    connected.inject_fault(drop=True, endpoint="outbound")
    payload = first_event(FuseCallStatusTrigger(call_id=call_id, poll_interval=0.05))
    assert payload["call_details"]["status"] == "completed"
    assert len([r for r in connected.requests() if r.path.startswith("/api/outbound")]) >= 3


def test_persistent_5xx_ends_in_a_retryable_error(connected):
    call_id = queue()
    connected.inject_fault(status=500, endpoint="outbound", count=10)
    payload = first_event(FuseCallStatusTrigger(call_id=call_id, poll_interval=0.05))
    assert payload["status"] == "error"
    assert payload["retryable"] is True
    assert "Fuse API answered 500" in payload["message"]
    connected.clear_faults()


def test_an_unknown_call_is_a_rejection(connected):
    payload = first_event(FuseCallStatusTrigger(call_id="999999", poll_interval=0.05))
    assert payload == {
        "status": "error",
        "message": "Fuse API answered 404: No outbound call was found by that call id.",
        "retryable": False,
    }


def test_wrong_credentials_are_a_rejection(connected, monkeypatch):
    connection = json.loads(connected.connection_json())
    connection["password"] = "not-the-key"
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", json.dumps(connection))
    payload = first_event(FuseCallStatusTrigger(call_id="1", poll_interval=0.05))
    assert (payload["status"], payload["retryable"]) == ("error", False)
    assert "Fuse API answered 401" in payload["message"]


def test_the_connection_rules_apply_in_the_triggerer(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json(host="http://fuse.example.com/api"))
    payload = first_event(FuseCallStatusTrigger(call_id="1"))
    assert (payload["status"], payload["retryable"]) == ("error", False)
    assert "plain http" in payload["message"]
