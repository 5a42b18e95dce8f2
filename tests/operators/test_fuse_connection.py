"""Every operator's connection and hook settings: ``fuse_conn_id`` templated, ``hook_params`` checked.

A templated connection id must not open a way around the duplicate guard: whatever it renders to,
the connection is read before an intent is recorded, and a retry after success is answered from
the ledger without a second request.
"""

from __future__ import annotations

import inspect
import math
import re

import pytest
import requests
from requests_mock import ANY

from airflow_provider_fuse._compat import AirflowException, AirflowFailException
from airflow_provider_fuse.guard import LEDGER_KEY, QUEUE_CALL_KEY
from airflow_provider_fuse.hooks.fuse import FuseHook
from airflow_provider_fuse.operators.base import HOOK_PARAMS
from airflow_provider_fuse.operators.fuse import (
    FuseBulkQueueOperator,
    FuseCancelCallsOperator,
    FuseQueueCallOperator,
)
from tests.helpers import BASE_URL, MemoryStore, connection_json

requests_mock_any = ANY  # requests-mock's wildcard: every method


def re_any(base: str) -> re.Pattern[str]:
    """Every URL below ``base``."""
    return re.compile(re.escape(base) + "/.*")


OTHER_URL = "https://other-fuse.example.com/api"
IDS = {"application_id": 12, "deployment_id": 34}


def bulk(csv_path, **kwargs) -> FuseBulkQueueOperator:
    return FuseBulkQueueOperator(task_id="queue_calls", csv_path=str(csv_path), **IDS, **kwargs)


def call(**kwargs) -> FuseQueueCallOperator:
    return FuseQueueCallOperator(task_id="queue_call", phone_number="16175551234", **IDS, **kwargs)


def cancel(**kwargs) -> FuseCancelCallsOperator:
    return FuseCancelCallsOperator(task_id="cancel", **IDS, **kwargs)


@pytest.fixture
def build(contacts_csv):
    """Each operator, built with the given keyword arguments."""
    return {
        "bulk": lambda **kwargs: bulk(contacts_csv, **kwargs),
        "call": call,
        "cancel": cancel,
    }


OPERATORS = ("bulk", "call", "cancel")


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr("airflow_provider_fuse.hooks.fuse.time.sleep", slept.append)
    return slept


# --- hook_params ---------------------------------------------------------------------------------


def test_hook_params_covers_exactly_the_settings_fuse_hook_takes():
    taken = {
        name
        for name, parameter in inspect.signature(FuseHook.__init__).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }
    assert set(HOOK_PARAMS) == taken


@pytest.mark.parametrize("kind", OPERATORS)
def test_hook_params_reach_the_hook_the_operator_builds(build, kind):
    settings = {"connect_retries": 5, "retry_backoff": 0.25, "progress_interval": 3.0}
    hook = build[kind](hook_params=settings)._hook()
    assert (hook.connect_retries, hook.retry_backoff, hook.progress_interval) == (5, 0.25, 3.0)


@pytest.mark.parametrize("kind", OPERATORS)
def test_without_hook_params_the_hook_keeps_its_defaults(build, kind):
    hook = build[kind]()._hook()
    defaults = FuseHook("fuse_default")
    assert (hook.connect_retries, hook.retry_backoff, hook.progress_interval) == (
        defaults.connect_retries,
        defaults.retry_backoff,
        defaults.progress_interval,
    )


@pytest.mark.parametrize("kind", OPERATORS)
def test_an_unknown_hook_setting_is_refused_when_the_dag_is_parsed_naming_it(build, kind):
    with pytest.raises(ValueError, match="'connect_retry' is not a FuseHook setting") as caught:
        build[kind](hook_params={"connect_retry": 3})
    assert "connect_retries" in str(caught.value)  # the known ones are listed


def test_the_connection_is_not_given_through_hook_params(contacts_csv):
    with pytest.raises(ValueError, match="fuse_conn_id"):
        bulk(contacts_csv, hook_params={"fuse_conn_id": "other"})


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"connect_retries": "3"}, "connect_retries must be an integer from 0 to 10"),
        ({"connect_retries": True}, "connect_retries must be an integer from 0 to 10"),
        ({"connect_retries": -1}, "connect_retries must be an integer from 0 to 10"),
        ({"connect_retries": 2.0}, "connect_retries must be an integer from 0 to 10"),
        ({"retry_backoff": math.nan}, "retry_backoff must be a finite number"),
        ({"retry_backoff": math.inf}, "retry_backoff must be a finite number"),
        ({"retry_backoff": -0.5}, "retry_backoff must be a finite number"),
        ({"retry_backoff": "1"}, "retry_backoff must be a finite number"),
        ({"progress_interval": 0}, "progress_interval must be a finite number of seconds, more than 0"),
        ({"progress_interval": math.nan}, "progress_interval must be a finite number"),
    ],
)
def test_a_hook_setting_of_the_wrong_kind_is_refused_naming_it(contacts_csv, settings, named):
    with pytest.raises(ValueError, match=named):
        bulk(contacts_csv, hook_params=settings)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"connect_retries": 11}, "connect_retries must be an integer from 0 to 10, got 11"),
        ({"connect_retries": 1024}, "connect_retries must be an integer from 0 to 10, got 1024"),
        ({"retry_backoff": 300.5}, "retry_backoff must be a finite number of seconds from 0 to 300, got"),
        ({"retry_backoff": 1e300}, "retry_backoff must be a finite number of seconds from 0 to 300, got"),
    ],
)
def test_a_hook_setting_beyond_its_bound_is_refused_when_the_dag_is_parsed_naming_the_bound(
    contacts_csv, settings, named
):
    with pytest.raises(ValueError, match=named):
        bulk(contacts_csv, hook_params=settings)


def test_the_operators_bounds_are_the_hooks():
    from airflow_provider_fuse.hooks import fuse as hook_module
    from airflow_provider_fuse.operators import base

    assert (base.MAX_CONNECT_RETRIES, base.MAX_RETRY_BACKOFF) == (
        hook_module.MAX_CONNECT_RETRIES,
        hook_module.MAX_RETRY_BACKOFF,
    )
    FuseHook(connect_retries=base.MAX_CONNECT_RETRIES, retry_backoff=base.MAX_RETRY_BACKOFF)


def test_hook_params_at_their_bounds_are_taken(contacts_csv):
    bulk(contacts_csv, hook_params={"connect_retries": 10, "retry_backoff": 300})


def test_hook_params_must_be_a_dict(contacts_csv):
    with pytest.raises(ValueError, match="hook_params: must be a dict"):
        bulk(contacts_csv, hook_params=[("connect_retries", 1)])


def test_connect_retries_from_hook_params_decide_how_often_an_unsent_request_is_tried(
    fuse_connection, requests_mock, contacts_csv, sleeps
):
    url = f"{BASE_URL}/apps/12/34/bulk_queue"
    requests_mock.post(url, exc=requests.exceptions.ConnectTimeout("no route"))
    with pytest.raises(AirflowException, match="not sent"):
        bulk(contacts_csv, hook_params={"connect_retries": 0}).execute({})
    assert requests_mock.call_count == 1
    with pytest.raises(AirflowException, match="not sent"):
        bulk(contacts_csv, hook_params={"connect_retries": 3, "retry_backoff": 0.5}).execute({})
    assert requests_mock.call_count == 1 + 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_hook_params_spoiled_after_construction_fail_before_an_intent_is_recorded(
    fuse_connection, requests_mock, contacts_csv
):
    task = call()
    task.hook_params = {"retry_backoff": math.nan}
    store = MemoryStore()
    with pytest.raises(AirflowFailException, match="Nothing was sent to Fuse: hook_params: retry_backoff"):
        task.execute({"task_state_store": store})
    assert QUEUE_CALL_KEY not in store.values
    assert not requests_mock.called


# --- fuse_conn_id, templated ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", OPERATORS)
def test_the_connection_id_is_a_template_field(build, kind):
    assert "fuse_conn_id" in type(build[kind]()).template_fields


def test_a_rendered_connection_id_is_the_connection_used(monkeypatch, requests_mock, contacts_csv):
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_OTHER", connection_json(host=OTHER_URL))
    requests_mock.post(f"{OTHER_URL}/apps/12/34/bulk_queue", json={"calls_queued": 3})
    task = bulk(contacts_csv, fuse_conn_id="{{ params.conn }}")
    task.render_template_fields({"params": {"conn": "fuse_other"}})
    assert task.execute({}) == 3
    assert requests_mock.call_count == 1


def test_cancel_uses_the_rendered_connection(monkeypatch, requests_mock):
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_OTHER", connection_json(host=OTHER_URL))
    requests_mock.delete(f"{OTHER_URL}/apps/12/34/cancel", status_code=202)
    task = cancel(fuse_conn_id="{{ params.conn }}")
    task.render_template_fields({"params": {"conn": "fuse_other"}})
    task.execute({})
    assert requests_mock.call_count == 1


@pytest.mark.parametrize("kind", OPERATORS)
@pytest.mark.parametrize("rendered", ["", "  ", "None"])
def test_a_connection_id_that_renders_to_nothing_fails_before_anything_is_sent(
    fuse_connection, requests_mock, build, kind, rendered
):
    task = build[kind](fuse_conn_id="{{ params.conn }}")
    task.render_template_fields({"params": {"conn": rendered}})
    store = MemoryStore()
    with pytest.raises(AirflowFailException, match="Nothing was sent to Fuse: fuse_conn_id"):
        task.execute({"task_state_store": store})
    assert store.values == {}
    assert not requests_mock.called


@pytest.mark.parametrize(("kind", "key"), [("bulk", LEDGER_KEY), ("call", QUEUE_CALL_KEY)])
def test_a_connection_id_that_renders_to_a_missing_connection_leaves_no_intent(
    fuse_connection, requests_mock, build, kind, key
):
    task = build[kind](fuse_conn_id="{{ params.conn }}")
    task.render_template_fields({"params": {"conn": "fuse_nowhere"}})
    store = MemoryStore()
    with pytest.raises(Exception, match="fuse_nowhere"):
        task.execute({"task_state_store": store})
    entry = store.values.get(key)
    assert entry is None or "sending" not in str(entry)
    assert not requests_mock.called


def test_the_dry_run_reads_the_rendered_connection(fuse_connection, requests_mock, contacts_csv):
    task = bulk(contacts_csv, dry_run=True, fuse_conn_id="{{ params.conn }}")
    task.render_template_fields({"params": {"conn": "fuse_nowhere"}})
    with pytest.raises(Exception, match="fuse_nowhere"):
        task.execute({})
    assert not requests_mock.called


def test_a_clear_that_renders_another_connection_is_answered_from_the_ledger(
    monkeypatch, fuse_connection, requests_mock, contacts_csv
):
    """The fingerprint names the deployment by its ids, not by the connection: no second send."""
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_OTHER", connection_json(host=OTHER_URL))
    requests_mock.post(f"{BASE_URL}/apps/12/34/bulk_queue", json={"calls_queued": 3})
    requests_mock.post(f"{OTHER_URL}/apps/12/34/bulk_queue", json={"calls_queued": 3})
    context = {"task_state_store": MemoryStore()}
    assert bulk(contacts_csv).execute(context) == 3
    again = bulk(contacts_csv, fuse_conn_id="{{ params.conn }}")
    again.render_template_fields({"params": {"conn": "fuse_other"}})
    assert again.execute(context) == 3
    assert requests_mock.call_count == 1


def test_a_call_cleared_with_another_connection_is_answered_from_the_ledger(
    monkeypatch, fuse_connection, requests_mock
):
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_OTHER", connection_json(host=OTHER_URL))
    requests_mock.post(f"{BASE_URL}/apps/12/34/queue", json={"call_id": "77"})
    requests_mock.post(f"{OTHER_URL}/apps/12/34/queue", json={"call_id": "78"})
    context = {"task_state_store": MemoryStore()}
    assert call().execute(context) == "77"
    assert call(fuse_conn_id="fuse_other").execute(context) == "77"
    assert requests_mock.call_count == 1


# --- What a 401 tells the user to check ------------------------------------------------------------


@pytest.mark.parametrize("kind", OPERATORS)
def test_a_401_names_the_connection_and_the_developer_key(monkeypatch, requests_mock, build, kind):
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_OTHER", connection_json(host=OTHER_URL))
    requests_mock.register_uri(
        requests_mock_any, re_any(OTHER_URL), status_code=401, json={"error": "Authentication failed."}
    )
    with pytest.raises(AirflowFailException) as caught:
        build[kind](fuse_conn_id="fuse_other").execute({})
    message = str(caught.value)
    assert "'fuse_other'" in message
    assert "Developer key" in message
    assert "401" in message
    assert ".." not in message


def test_a_401_from_the_hook_survives_pickling_with_its_connection(monkeypatch, requests_mock):
    import pickle

    from airflow_provider_fuse.exceptions import FuseAuthenticationError

    monkeypatch.setenv("AIRFLOW_CONN_FUSE_OTHER", connection_json(host=OTHER_URL))
    requests_mock.register_uri(requests_mock_any, re_any(OTHER_URL), status_code=401, json={"error": "no"})
    with pytest.raises(FuseAuthenticationError) as caught:
        FuseHook("fuse_other", connect_retries=0).get_call_status("123")
    assert caught.value.conn_id == "fuse_other"
    again = pickle.loads(pickle.dumps(caught.value))
    assert (again.conn_id, str(again)) == ("fuse_other", str(caught.value))


def test_test_connection_does_not_name_the_uis_temporary_connection_id(monkeypatch, requests_mock):
    monkeypatch.setenv("AIRFLOW_CONN_XK2P9QTEMPORARY", connection_json(host=OTHER_URL))
    requests_mock.register_uri(requests_mock_any, re_any(OTHER_URL), status_code=401, json={"error": "no"})
    ok, message = FuseHook("xk2p9qtemporary").test_connection()
    assert ok is False
    assert "xk2p9qtemporary" not in message
    assert "Developer key" in message
