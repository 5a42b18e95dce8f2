"""FuseHook's retry settings are bounded, and no backoff it computes can overflow a sleep."""

from __future__ import annotations

import asyncio
import math

import httpx
import pytest

from airflow_provider_fuse.exceptions import FuseNotSentError, FuseValidationError
from airflow_provider_fuse.hooks.fuse import MAX_RETRY_DELAY, FuseHook
from tests.helpers import connection_json


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"connect_retries": 1024}, "connect_retries: must be an integer from 0 to 10, got 1024"),
        ({"connect_retries": -1}, "connect_retries: must be an integer from 0 to 10"),
        ({"connect_retries": True}, "connect_retries: must be an integer from 0 to 10"),
        ({"retry_backoff": 1e300}, "retry_backoff: must be a number of seconds from 0 to 300"),
        ({"retry_backoff": math.nan}, "retry_backoff: must be a number of seconds from 0 to 300"),
        ({"retry_backoff": -1.0}, "retry_backoff: must be a number of seconds from 0 to 300"),
        ({"progress_interval": math.inf}, "progress_interval: must be a finite number of seconds"),
    ],
)
def test_a_hook_built_directly_refuses_a_setting_beyond_its_bound_naming_it(settings, named):
    with pytest.raises(FuseValidationError, match=named) as caught:
        FuseHook(**settings)
    assert isinstance(caught.value, ValueError)


def test_a_retry_delay_never_overflows_however_many_tries(fuse_connection):
    hook = FuseHook(retry_backoff=0.0)
    hook.connect_retries = 2000  # past the constructor's bound, as a subclass or a caller could set it
    failure = FuseNotSentError("not sent: could not connect to Fuse (ConnectError)")
    assert hook._retry_delay(failure, 1024, 2000) == 0.0


def test_a_retry_delay_is_capped_however_far_it_doubled(fuse_connection):
    hook = FuseHook(connect_retries=10, retry_backoff=300.0)
    failure = FuseNotSentError("not sent: could not connect to Fuse (ConnectError)")
    assert hook._retry_delay(failure, 9, 10) == MAX_RETRY_DELAY


def test_the_async_read_waits_at_most_the_capped_delay(monkeypatch):
    # An overall deadline of a day: only the cap bounds the waits.
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json(extra={"timeout": {"total": 86400}}))
    slept: list[float] = []

    async def no_sleep(seconds: float) -> None:
        slept.append(seconds)

    async def refuse(transport: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", refuse)
    with pytest.raises(FuseNotSentError):
        asyncio.run(FuseHook(connect_retries=10, retry_backoff=300.0).aget_call_status("77"))
    assert slept[:5] == [300.0, 600.0, 1200.0, 2400.0, MAX_RETRY_DELAY]
    assert max(slept) == MAX_RETRY_DELAY
