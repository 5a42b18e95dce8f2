"""FuseHook against a real server on loopback that trickles or floods its answers (issue 10, item 15).

The server is FastAPI under uvicorn, in a thread, on a free port: real sockets, so the hook's own
adapter, its watchdog and its read cap are what is exercised (requests-mock replaces the adapter).
"""

from __future__ import annotations

import resource
import threading
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse, StreamingResponse

from airflow_provider_fuse.exceptions import (
    FuseConnectionLostError,
    FuseInvalidResponseError,
    FuseNotFoundError,
    FuseServerError,
    nothing_queued,
)
from airflow_provider_fuse.hooks.fuse import MAX_ANSWER_BYTES, FuseHook
from airflow_provider_fuse.hooks.requests_client import Watchdog
from tests.helpers import HUGE_BYTES, TRICKLE_SECONDS, Served, connect_to, serving_answers


def make_app(served: Served) -> FastAPI:
    app = FastAPI()

    @app.post("/trickle/apps/{app_id}/{deployment_id}/bulk_queue")
    async def trickling_answer() -> StreamingResponse:
        return StreamingResponse(served.trickle(b'{"calls_queued": 3}'), media_type="application/json")

    @app.post("/huge/apps/{app_id}/{deployment_id}/bulk_queue")
    async def huge_success() -> StreamingResponse:
        return StreamingResponse(served.flood(), media_type="application/json")

    @app.post("/huge500/apps/{app_id}/{deployment_id}/bulk_queue")
    async def huge_failure() -> StreamingResponse:
        return StreamingResponse(served.flood(), status_code=500, media_type="text/html")

    @app.post("/ok/apps/{app_id}/{deployment_id}/bulk_queue")
    async def queued() -> JSONResponse:
        return JSONResponse({"calls_queued": 3})

    @app.get("/trickle/outbound/{call_id}")
    async def no_such_call(call_id: str) -> JSONResponse:
        return JSONResponse({"error": "No call was found."}, status_code=404)

    return app


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Served]]:
    """The base address of a live server, and what it has sent."""
    with serving_answers(monkeypatch, make_app) as server:
        yield server


@pytest.fixture
def received(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the answer bytes the hook takes from the connection (a one-item list)."""
    import requests

    count = [0]
    original = requests.Response.iter_content

    def counting(self: requests.Response, *args: object, **kwargs: object) -> Iterator[bytes]:
        for chunk in original(self, *args, **kwargs):  # type: ignore[arg-type]
            count[0] += len(chunk)
            yield chunk

    monkeypatch.setattr(requests.Response, "iter_content", counting)
    return count


def hook_for(monkeypatch: pytest.MonkeyPatch, url: str, timeout: object = None) -> FuseHook:
    connect_to(monkeypatch, url, timeout)
    return FuseHook(retry_backoff=0.0)


def test_a_trickling_answer_ends_at_the_overall_deadline(monkeypatch, server, contacts_csv):
    address, served = server
    hook = hook_for(monkeypatch, f"{address}/trickle", {"connect": 2, "read": 2, "total": 4})
    started = time.monotonic()
    with pytest.raises(FuseConnectionLostError, match="overall deadline of 4 s") as caught:
        hook.bulk_queue(12, 34, contacts_csv)
    elapsed = time.monotonic() - started
    assert 3.5 < elapsed < 7, f"gave up after {elapsed:.1f} s"
    assert served.bytes < TRICKLE_SECONDS  # well before the trickle ended
    assert not nothing_queued(caught.value)  # the request had left: unknown outcome


def test_the_deadline_also_ends_a_trickle_on_a_kept_alive_connection(monkeypatch, server, contacts_csv):
    address, _ = server
    hook = hook_for(monkeypatch, f"{address}/trickle", {"connect": 2, "read": 2, "total": 3})
    with pytest.raises(FuseNotFoundError):
        hook.get_call_status(77)  # leaves its connection in the pool
    started = time.monotonic()
    with pytest.raises(FuseConnectionLostError, match="overall deadline"):
        hook.bulk_queue(12, 34, contacts_csv)
    assert time.monotonic() - started < 6


def test_a_late_expiry_of_the_last_request_does_not_cut_the_next(monkeypatch, server, contacts_csv):
    # timer.cancel() cannot stop an expiry already past its wait: here it runs, by hand, while the
    # next part of a chunked upload is on the wire, connected (the moment that would cut it).
    address, _ = server
    hook = hook_for(monkeypatch, f"{address}/ok")
    timers: list[threading.Timer] = []
    original_timer = threading.Timer

    def recording_timer(*args: Any, **kwargs: Any) -> threading.Timer:
        timers.append(original_timer(*args, **kwargs))
        return timers[-1]

    monkeypatch.setattr(threading, "Timer", recording_timer)
    assert hook.bulk_queue(12, 34, contacts_csv) == 3
    first = timers[0]
    original_mark_connected = Watchdog.mark_connected

    def late_expiry_once_connected(watchdog: Watchdog) -> None:
        original_mark_connected(watchdog)
        first.function(*first.args, **first.kwargs)

    monkeypatch.setattr(Watchdog, "mark_connected", late_expiry_once_connected)
    assert hook.bulk_queue(12, 34, contacts_csv) == 3
    assert len(timers) == 2
    assert not hook._watchdog.expired


def test_a_huge_success_answer_is_not_read_whole(monkeypatch, server, received, contacts_csv):
    address, _ = server
    hook = hook_for(monkeypatch, f"{address}/huge")
    hook.settings  # noqa: B018
    rss_before = _max_rss_kib()
    tracemalloc.start()
    try:
        with pytest.raises(FuseInvalidResponseError, match="not read whole") as caught:
            hook.bulk_queue(12, 34, contacts_csv)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.status_code == 200
    assert not nothing_queued(caught.value)
    assert MAX_ANSWER_BYTES < received[0] <= MAX_ANSWER_BYTES + 2 * 2**20
    assert peak < 8 * MAX_ANSWER_BYTES, f"peak {peak} bytes allocated"
    print(
        f"read {received[0]} of {HUGE_BYTES} bytes; traced peak {peak} bytes; "
        f"peak RSS {rss_before} -> {_max_rss_kib()} KiB"
    )


def test_a_huge_failure_answer_is_classified_by_its_status_and_described(
    monkeypatch, server, received, contacts_csv
):
    address, _ = server
    hook = hook_for(monkeypatch, f"{address}/huge500")
    with pytest.raises(
        FuseServerError, match="answered 500: no Fuse error text in 1048576 bytes that are neither"
    ) as caught:
        hook.bulk_queue(12, 34, contacts_csv)
    assert len(str(caught.value)) < 400
    assert received[0] <= MAX_ANSWER_BYTES + 2 * 2**20


def _max_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
