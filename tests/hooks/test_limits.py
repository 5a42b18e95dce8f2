"""The hook's bounds (:mod:`airflow_provider_fuse.hooks.limits`): its retry settings are bounded, no
backoff it computes can overflow a sleep, and the operators check them without importing the hook."""

from __future__ import annotations

import ast
import asyncio
import json
import math
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from airflow_provider_fuse.exceptions import FuseNotSentError, FuseValidationError
from airflow_provider_fuse.hooks import limits
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


_DAG_PARSE = """
import json, sys
import airflow.sdk
before = set(sys.modules)
from airflow.sdk import DAG
from airflow_provider_fuse.operators.fuse import (
    FuseBulkQueueOperator, FuseCancelCallsOperator, FuseQueueCallOperator,
)
from airflow_provider_fuse.sensors.fuse import FuseCallStatusSensor, FuseCampaignResultsSensor
hook_params = {"connect_retries": 3, "retry_backoff": 2.0}
with DAG("parsed", schedule=None):
    FuseQueueCallOperator(
        task_id="one", application_id=1, deployment_id=2, phone_number="6175551234",
        hook_params=hook_params,
    )
    FuseCancelCallsOperator(task_id="cancel", application_id=1, deployment_id=2, hook_params=hook_params)
    FuseCallStatusSensor(task_id="wait", call_id="77", hook_params=hook_params)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_parsing_a_dag_with_hook_params_imports_no_http_client_nor_the_hook():
    """The operators and the sensor check ``hook_params`` against these bounds, not the hook's module."""
    result = subprocess.run(
        [sys.executable, "-c", _DAG_PARSE], capture_output=True, text=True, timeout=120, check=True
    )
    added = set(json.loads(result.stdout.splitlines()[-1]))
    for name in (
        "requests",
        "requests_toolbelt",
        "airflow_provider_fuse.hooks.fuse",
        "airflow_provider_fuse.hooks.settings",
        "airflow_provider_fuse.hooks.requests_client",
        "airflow_provider_fuse.hooks.httpx_client",
    ):
        assert name not in added


def test_the_limits_import_only_the_standard_library():
    tree = ast.parse(Path(limits.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name if isinstance(node, ast.Import) else node.module
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert {name.partition(".")[0] for name in imported} <= set(sys.stdlib_module_names) | {"__future__"}
