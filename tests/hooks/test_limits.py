"""The hook's bounds (:mod:`airflow_provider_fuse.hooks.limits`): its retry settings are bounded, no
backoff it computes can overflow a sleep, and the operators check them without importing the hook."""

from __future__ import annotations

import ast
import asyncio
import json
import math
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_fuse.exceptions import FuseNotSentError, FuseValidationError
from airflow_provider_fuse.hooks import limits
from airflow_provider_fuse.hooks.fuse import MAX_RETRY_DELAY, FuseHook
from airflow_provider_fuse.operators.base import HOOK_PARAMS, checked_hook_params
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
        ({"progress_interval": 0}, "progress_interval: must be a finite number of seconds, more than 0"),
    ],
)
def test_a_hook_built_directly_refuses_a_setting_beyond_its_bound_naming_it(settings, named):
    with pytest.raises(FuseValidationError, match=named) as caught:
        FuseHook(**settings)
    assert isinstance(caught.value, ValueError)


#: What a DAG, a template or an altered row may give as a setting: numbers of any size (past what
#: str() converts and what a float holds), phone numbers, text, containers.
HOSTILE = st.one_of(
    st.integers(),
    st.integers(min_value=0, max_value=6000).map(lambda digits: 10**digits),
    st.integers(min_value=0, max_value=6000).map(lambda digits: -(10**digits) - 7),
    st.floats(),
    st.booleans(),
    st.none(),
    st.text(max_size=20),
    st.from_regex(r"\+?1?[2-9][0-9]{9}", fullmatch=True),
    st.from_regex(r"\+?1?[2-9][0-9]{9}", fullmatch=True).map(int),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_LONG_DIGITS = re.compile(r"[0-9]{7,}")


def _refusal(build: Callable[[], object]) -> str | None:
    """The message of the FuseValidationError ``build`` raises (any other exception fails the test)."""
    try:
        build()
    except FuseValidationError as error:
        return str(error)
    return None


@given(name=st.sampled_from(["connect_retries", "retry_backoff", "progress_interval"]), value=HOSTILE)
def test_a_hook_refuses_any_hostile_setting_naming_it_without_its_digits(name, value):
    refusal = _refusal(lambda: FuseHook(**{name: value}))
    if refusal is not None:
        assert refusal.startswith(f"{name}: must be ")
        assert not _LONG_DIGITS.search(refusal)


@given(name=st.sampled_from(sorted(HOOK_PARAMS)), value=HOSTILE)
def test_hook_params_refuse_any_hostile_value_naming_the_setting_without_its_digits(name, value):
    refusal = _refusal(lambda: checked_hook_params({name: value}))
    if refusal is not None:
        assert refusal.startswith(f"hook_params: {name} must be ")
        assert not _LONG_DIGITS.search(refusal)


_KNOWN_KEYS = {*HOOK_PARAMS, "fuse_conn_id"}


@given(key=HOSTILE.filter(lambda key: not isinstance(key, (list, dict)) and key not in _KNOWN_KEYS))
def test_hook_params_refuse_any_unknown_key_without_its_digits(key):
    with pytest.raises(FuseValidationError, match="is not a FuseHook setting") as caught:
        checked_hook_params({key: 1})
    assert not _LONG_DIGITS.search(str(caught.value))


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (10**5000, "a number of more than 6 digits"),
        (6175551234, "a number of more than 6 digits"),
        (6175551234.0, "a number of more than 6 digits"),
        ("6175551234", "a string of 10 characters"),
        (1024, "1024"),
        (1e300, "1e+300"),
        (math.nan, "nan"),
        (True, "True"),
        (["a"], "list"),
    ],
    ids=["int-past-str", "phone-int", "phone-float", "phone-text", "int", "float", "nan", "bool", "list"],
)
def test_a_refused_value_is_shown_by_its_size_past_six_digits_and_never_as_text(value, shown):
    assert limits.shown_value(value) == shown


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
