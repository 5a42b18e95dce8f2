"""Simulated calls: queued → dialing → connected → completed, no-answer retries, windows, cancel,
and result_url callbacks (loopback only)."""

from __future__ import annotations

import itertools

import pytest
import requests

from airflow_provider_fuse.sandbox.lifecycle import NO_ANSWER_SECONDS, RING_SECONDS, TALK_SECONDS
from tests.sandbox.conftest import CallbackReceiver


def test_answered_call_completes(fuse, sandbox):
    fuse.bulk_queue("destination\n6175551234\n")
    (call,) = sandbox.wait_for_calls()
    assert call.status == "completed"
    assert call.attempts == 1
    assert call.duration == TALK_SECONDS
    assert call.event_names == ["queued", "dialing", "connected", "disconnected", "completed"]
    connected, disconnected = call.events[2].timestamp, call.events[3].timestamp
    assert disconnected - connected == TALK_SECONDS
    details = fuse.outbound(call.call_id).json()["call_details"]
    assert (details["status"], details["duration"], details["attempts"]) == ("completed", "30", "1")


def test_unanswered_call_fails_after_max_attempts_spaced_by_reattempt_wait(fuse, sandbox):
    fuse.bulk_queue("destination\n6175551239\n", max_attempts="3", reattempt_wait="60")
    (call,) = sandbox.wait_for_calls()
    assert call.status == "failed"
    assert call.attempts == 3
    assert call.event_names.count("no_answer") == 3
    assert call.duration is None
    dialing = [e.timestamp for e in call.events if e.event == "dialing"]
    assert [b - a for a, b in itertools.pairwise(dialing)] == [NO_ANSWER_SECONDS + 60] * 2


def test_single_attempt_unanswered_call_fails_at_once(fuse, sandbox):
    fuse.bulk_queue("destination\n6175551239\n")
    assert sandbox.wait_for_calls()[0].attempts == 1


def test_cancel_cancels_pending_calls_of_that_deployment_only(fuse, sandbox):
    sandbox.add_deployment(101, 204)
    later = str(int(sandbox.now()) + 86400)
    fuse.bulk_queue("destination\n6175551234\n6175551235\n", start_timestamp=later)
    fuse.bulk_queue("destination\n6175551236\n", start_timestamp=later, dep=204)
    assert fuse.cancel().status_code == 202
    statuses = {c.destination: c.status for c in sandbox.calls()}
    assert statuses == {"6175551234": "canceled", "6175551235": "canceled", "6175551236": "queued"}
    assert fuse.outbound("1").json()["call_details"]["status"] == "canceled"


def test_cancel_leaves_finished_calls_alone(fuse, sandbox):
    fuse.bulk_queue("destination\n6175551234\n")
    sandbox.wait_for_calls()
    fuse.cancel()
    assert sandbox.calls()[0].status == "completed"


def test_start_timestamp_holds_the_call_until_then(frozen):
    start = int(frozen.sandbox.now()) + 3600
    frozen.bulk_queue(start_timestamp=str(start))
    frozen.sandbox.advance(start - frozen.sandbox.now() - 1)
    assert frozen.sandbox.calls()[0].status == "queued"
    frozen.sandbox.advance(2)
    (call,) = frozen.sandbox.calls()
    assert call.status == "dialing"
    assert call.events[1].timestamp == start


def test_window_closing_between_attempts_fails_the_call(frozen):
    end = int(frozen.sandbox.now()) + 100
    frozen.bulk_queue(
        "destination\n6175551239\n", max_attempts="3", reattempt_wait="600", end_timestamp=str(end)
    )
    frozen.sandbox.advance(200)
    (call,) = frozen.sandbox.calls()
    assert (call.status, call.attempts) == ("failed", 1)
    assert call.event_names[-2:] == ["expired", "failed"]
    assert call.events[-1].timestamp == end


def test_window_closing_while_dialing_fails_the_call(frozen):
    end = int(frozen.sandbox.now()) + 10
    frozen.bulk_queue("destination\n6175551239\n", end_timestamp=str(end))
    frozen.sandbox.advance(60)
    assert frozen.sandbox.calls()[0].status == "failed"


def test_connected_call_finishes_after_the_window_closes(frozen):
    end = int(frozen.sandbox.now()) + RING_SECONDS + 2
    frozen.bulk_queue("destination\n6175551234\n", end_timestamp=str(end))
    frozen.sandbox.advance(RING_SECONDS + TALK_SECONDS + 10)
    assert frozen.sandbox.calls()[0].status == "completed"


def test_clock_can_be_advanced_over_http(frozen):
    frozen.bulk_queue(start_timestamp=str(int(frozen.sandbox.now()) + 3600))
    response = requests.post(f"{frozen.sandbox.root_url}/_sandbox/advance", json={"seconds": 7200}, timeout=5)
    assert response.status_code == 200
    assert frozen.sandbox.calls()[0].status == "completed"


def test_result_url_receives_call_details_when_the_call_ends(fuse, sandbox, receiver):
    fuse.bulk_queue("destination\n6175551234\n6175551239\n", result_url=receiver.url)
    calls = sandbox.wait_for_calls()
    assert [(c.result_delivery, c.result_status_code) for c in calls] == [("delivered", 204)] * 2
    by_phone = {body["phone_number"]: body for body in receiver.bodies}
    assert by_phone["'6175551234'"]["status"] == "completed"
    assert by_phone["'6175551239'"]["status"] == "failed"
    assert set(by_phone["'6175551234'"]) == set(fuse.outbound("1").json()["call_details"])


def test_result_url_receives_canceled_calls(fuse, sandbox, receiver):
    fuse.queue(
        phone_number="6175551234",
        start_timestamp=str(int(sandbox.now()) + 86400),
        result_url=receiver.url.replace("127.0.0.1", "localhost"),
    )
    fuse.cancel()
    sandbox.wait_for_calls()
    assert [b["status"] for b in receiver.bodies] == ["canceled"]


@pytest.mark.parametrize(
    "url", ["http://example.com/result", "https://10.1.2.3/result", "http://[2001:db8::1]/r"]
)
def test_result_url_on_a_non_loopback_host_is_not_called(fuse, sandbox, url):
    fuse.bulk_queue(result_url=url)
    (call,) = sandbox.wait_for_calls()
    assert call.result_delivery == "not_delivered"
    assert "loopback" in (call.result_detail or "")


def test_result_url_that_refuses_is_recorded_as_failed(fuse, sandbox):
    fuse.bulk_queue(result_url="http://127.0.0.1:9/closed")  # discard port: nothing listens
    (call,) = sandbox.wait_for_calls()
    assert call.result_delivery == "failed"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_result_url_redirects_are_not_followed(fuse, sandbox, receiver, status):
    with CallbackReceiver(redirect_to=(status, receiver.url)) as redirecting:
        fuse.bulk_queue(result_url=redirecting.url)
        (call,) = sandbox.wait_for_calls()
    assert (call.result_delivery, call.result_status_code) == ("failed", status)
    assert "does not follow redirects" in (call.result_detail or "")
    assert redirecting.methods == ["POST"]
    assert receiver.methods == []
