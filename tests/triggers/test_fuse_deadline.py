"""FuseCallStatusTrigger against a real server on loopback that trickles or floods its answers.

The server is FastAPI under uvicorn, in a thread, on a free port: real sockets, so httpx's own
timeouts, and the overall deadline and read cap of the hook's async status read, are what is exercised.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from airflow_provider_fuse.hooks.fuse import MAX_ANSWER_BYTES, FuseHook
from airflow_provider_fuse.triggers.fuse import FuseCallStatusTrigger
from tests.helpers import HUGE_BYTES, TRICKLE_SECONDS, Served, connect_to, serving_answers

ANSWER = b'{"call_details": {"status": "completed", "attempts": "1"}}'


def make_app(served: Served) -> FastAPI:
    app = FastAPI()

    @app.get("/trickle/outbound/{call_id}")
    async def trickling_answer(call_id: str) -> StreamingResponse:
        served.requests += 1
        return StreamingResponse(served.trickle(ANSWER), media_type="application/json")

    @app.get("/huge/outbound/{call_id}")
    async def huge_answer(call_id: str) -> StreamingResponse:
        served.requests += 1
        return StreamingResponse(served.flood(), media_type="application/json")

    return app


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Served]]:
    """The base address of a live server, and what it has sent."""
    with serving_answers(monkeypatch, make_app) as server:
        yield server


@pytest.fixture
def received(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the answer bytes the trigger takes from the connection (a one-item list)."""
    count = [0]
    original = httpx.Response.aiter_raw

    async def counting(self: httpx.Response, *args: object, **kwargs: object) -> AsyncIterator[bytes]:
        async for chunk in original(self, *args, **kwargs):  # type: ignore[arg-type]
            count[0] += len(chunk)
            yield chunk

    monkeypatch.setattr(httpx.Response, "aiter_raw", counting)
    return count


def connect(monkeypatch: pytest.MonkeyPatch, url: str, timeout: object = None) -> None:
    connect_to(monkeypatch, url, timeout)
    monkeypatch.setitem(FuseHook.__init__.__kwdefaults__, "retry_backoff", 0.0)


def retries(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """How many more times the trigger's hook asks after an unknown outcome."""
    monkeypatch.setitem(FuseHook.__init__.__kwdefaults__, "connect_retries", count)


def first_event(trigger: FuseCallStatusTrigger) -> dict:
    async def run() -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(run(), timeout=60))


def test_a_trickling_answer_ends_at_the_overall_deadline(monkeypatch, server):
    address, served = server
    connect(monkeypatch, f"{address}/trickle", {"connect": 2, "read": 5, "total": 2})
    retries(monkeypatch, 0)
    started = time.monotonic()
    payload = first_event(FuseCallStatusTrigger(call_id="77", poll_interval=0.05))
    elapsed = time.monotonic() - started
    assert payload["status"] == "error"
    assert "overall deadline of 2 s" in payload["message"]
    assert payload["retryable"] is True  # a status read is safe to ask again
    assert 1.8 < elapsed < 4, f"gave up after {elapsed:.1f} s"
    assert served.bytes < TRICKLE_SECONDS  # well before the trickle ended
    print(f"trickle ended after {elapsed:.2f} s (deadline 2 s), {served.bytes} bytes served")


def test_a_status_read_past_its_deadline_is_asked_again(monkeypatch, server):
    address, served = server
    connect(monkeypatch, f"{address}/trickle", {"connect": 2, "read": 5, "total": 1})
    retries(monkeypatch, 1)
    started = time.monotonic()
    payload = first_event(FuseCallStatusTrigger(call_id="77", poll_interval=0.05))
    assert (payload["status"], payload["retryable"]) == ("error", True)
    assert served.requests == 2
    assert time.monotonic() - started < 4


def test_a_huge_answer_is_not_read_whole(monkeypatch, server, received):
    address, _ = server
    connect(monkeypatch, f"{address}/huge")
    retries(monkeypatch, 0)
    tracemalloc.start()
    try:
        payload = first_event(FuseCallStatusTrigger(call_id="77", poll_interval=0.05))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert payload["status"] == "error"
    assert "not read whole" in payload["message"]
    assert MAX_ANSWER_BYTES < received[0] <= MAX_ANSWER_BYTES + 2 * 2**20
    assert peak < 8 * MAX_ANSWER_BYTES, f"peak {peak} bytes allocated"
    print(f"read {received[0]} of {HUGE_BYTES} bytes; traced peak {peak} bytes")
