"""FuseBulkQueueOperator(collect_results=True): a signed result_url per part, checked before sending,
never shown; and the ``fuse_results`` XCom the results sensor waits on."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

import pytest

from airflow_provider_fuse._compat import AirflowException, AirflowFailException
from airflow_provider_fuse.fields import QueueFields
from airflow_provider_fuse.guard import LEDGER_KEY
from airflow_provider_fuse.hooks.fuse import ProbeAnswer
from airflow_provider_fuse.operators import bulk_queue
from airflow_provider_fuse.operators.bulk_queue import RESULTS_XCOM_KEY, dialing_window_end
from airflow_provider_fuse.operators.fuse import FuseBulkQueueOperator
from airflow_provider_fuse.results.config import DEFAULT_TABLE, DEFAULT_TOKEN_LIFETIME
from airflow_provider_fuse.results.tokens import UploadPart, verify
from tests.helpers import BASE_URL, MemoryStore, decode_multipart
from tests.results.outcomes import signed_token

real_probe_receiver = bulk_queue.probe_receiver  # before the autouse fixture replaces it

BULK_URL = f"{BASE_URL}/apps/12/34/bulk_queue"
RESULTS_BASE = "http://127.0.0.1:8080"
RUN_ID = "manual__2026-11-29T02:00:00+00:00"


class FakeTaskInstance:
    """The parts of Airflow's task instance the operator reads: ids, and XCom pushes."""

    def __init__(self, map_index: int = -1, task_id: str = "queue_calls") -> None:
        self.dag_id = "campaign"
        self.run_id = RUN_ID
        self.task_id = task_id
        self.map_index = map_index
        self.xcom: dict = {}

    def xcom_push(self, key, value):
        self.xcom[key] = json.loads(json.dumps(value))  # what a JSON XCom backend stores


@pytest.fixture(autouse=True)
def _no_connect_backoff(monkeypatch):
    monkeypatch.setattr("airflow_provider_fuse.hooks.fuse.time.sleep", lambda seconds: None)


@pytest.fixture(autouse=True)
def receiver_checks(monkeypatch) -> list[str]:
    """The check of the receiver before dialing answers 400 (the token accepted, the empty body
    refused); the URLs checked are kept. Tests of the check itself use a real server."""
    checked: list[str] = []

    def probe(url):
        checked.append(url)
        return ProbeAnswer(400)

    monkeypatch.setattr("airflow_provider_fuse.operators.bulk_queue.probe_receiver", probe)
    return checked


@pytest.fixture
def signing_key(monkeypatch) -> str:
    """A fresh key for each test: what the masker registered for another test cannot hide this one."""
    key = secrets.token_urlsafe(36)
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_SIGNING_KEY", key)
    return key


@pytest.fixture
def results(fuse_connection, signing_key, monkeypatch, tmp_path):
    """The [fuse] options on a loopback base URL and a SQLite results connection; the database path."""
    database = tmp_path / "results.db"
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_BASE_URL", RESULTS_BASE)
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_RESULTS_DEFAULT", f"sqlite://{database}")
    return database


@pytest.fixture
def fuse(requests_mock):
    """Fuse answers each upload with one call per row; each request's form fields are kept."""
    requests_mock.forms = []

    def answer(request, context):
        form = decode_multipart(request)
        requests_mock.forms.append(form)
        return {"calls_queued": len(form["csv"][0].splitlines()) - 1}

    requests_mock.post(BULK_URL, json=answer)
    return requests_mock


def operator(csv_path, **kwargs) -> FuseBulkQueueOperator:
    arguments = {
        "task_id": "queue_calls",
        "application_id": 12,
        "deployment_id": 34,
        "csv_path": str(csv_path),
        "collect_results": True,
    }
    arguments.update(kwargs)
    return FuseBulkQueueOperator(**arguments)


def numbered_csv(tmp_path, rows: int):
    path = tmp_path / "numbered.csv"
    path.write_text("destination,n\n" + "".join(f"1617555{index:04d},{index}\n" for index in range(rows)))
    return path


def sent_urls(fuse) -> list[str]:
    return [form["result_url"][0].decode() for form in fuse.forms]


def token_of(url: str) -> str:
    prefix = f"{RESULTS_BASE}/fuse/results/"
    assert url.startswith(prefix), url
    return url.removeprefix(prefix)


# --- Arguments -----------------------------------------------------------------------------------------


def test_collect_results_and_result_url_together_are_refused_when_the_dag_is_parsed(contacts_csv):
    with pytest.raises(ValueError, match="give result_url or collect_results, not both"):
        operator(contacts_csv, result_url="https://example.com/outcomes")


def test_collect_results_must_be_a_bool(contacts_csv):
    with pytest.raises(ValueError, match="collect_results must be True or False"):
        operator(contacts_csv, collect_results="yes")


def test_collect_results_is_off_by_default_and_sends_no_result_url(fuse_connection, fuse, contacts_csv):
    task = FuseBulkQueueOperator(task_id="q", application_id=12, deployment_id=34, csv_path=str(contacts_csv))
    ti = FakeTaskInstance()
    assert task.execute({"ti": ti}) == 3
    assert "result_url" not in fuse.forms[0]
    assert RESULTS_XCOM_KEY not in ti.xcom


# --- One signed result_url per part --------------------------------------------------------------------


def test_each_part_gets_a_result_url_whose_token_names_that_part(results, fuse, signing_key, tmp_path):
    ti = FakeTaskInstance()
    assert operator(numbered_csv(tmp_path, 10), chunk_size=4).execute({"ti": ti}) == 10
    parts = [verify(token_of(url), signing_key, now=time.time()) for url in sent_urls(fuse)]
    assert [(part.part, part.rows) for part in parts] == [(0, 4), (1, 4), (2, 2)]
    assert {(part.dag_id, part.run_id, part.task_id, part.map_index) for part in parts} == {
        ("campaign", RUN_ID, "queue_calls", -1)
    }
    assert len(set(sent_urls(fuse))) == 3


def test_a_mapped_task_signs_its_map_index(results, fuse, signing_key, contacts_csv):
    operator(contacts_csv).execute({"ti": FakeTaskInstance(map_index=2)})
    (url,) = sent_urls(fuse)
    assert verify(token_of(url), signing_key, now=time.time()).map_index == 2


def test_a_token_signed_with_another_key_does_not_verify(results, fuse, contacts_csv):
    from airflow_provider_fuse.results.tokens import TokenError

    operator(contacts_csv).execute({"ti": FakeTaskInstance()})
    (url,) = sent_urls(fuse)
    with pytest.raises(TokenError):
        verify(token_of(url), secrets.token_urlsafe(36), now=time.time())


def test_a_retry_resumes_with_the_tokens_of_the_parts_it_sends(results, requests_mock, signing_key, tmp_path):
    forms = []

    def ok(request, context):
        forms.append(decode_multipart(request))
        return {"calls_queued": len(forms[-1]["csv"][0].splitlines()) - 1}

    def slow_down(request, context):
        forms.append(decode_multipart(request))
        return {"error": "slow down"}

    requests_mock.post(
        BULK_URL, [{"json": ok}, {"json": ok}, {"status_code": 429, "json": slow_down}, {"json": ok}]
    )
    context = {"ti": FakeTaskInstance(), "task_state_store": MemoryStore()}
    path = numbered_csv(tmp_path, 10)
    with pytest.raises(AirflowException, match="part 3 of 4"):
        operator(path, chunk_size=3).execute(context)
    # The retry signs new tokens, and the ledger does not see a changed list: it resumes at part 3.
    assert operator(path, chunk_size=3).execute(context) == 10
    parts = [verify(token_of(form["result_url"][0].decode()), signing_key, now=time.time()) for form in forms]
    assert [(part.part, part.rows) for part in parts] == [(0, 3), (1, 3), (2, 3), (2, 3), (3, 1)]
    # Each part's token is for the rows that part holds.
    assert [len(form["csv"][0].splitlines()) - 1 for form in forms] == [part.rows for part in parts]
    assert context["ti"].xcom[RESULTS_XCOM_KEY]["calls_queued"] == 10


# --- Expiry: the dialing window plus the token lifetime ------------------------------------------------


def expiry(fuse, signing_key) -> int:
    (url,) = sent_urls(fuse)
    return verify(token_of(url), signing_key, now=time.time()).expires


def test_tokens_expire_the_token_lifetime_after_end_timestamp(results, fuse, signing_key, contacts_csv):
    end = int(time.time()) + 3 * 3600
    operator(contacts_csv, end_timestamp=end, max_attempts=3, reattempt_wait=600).execute(
        {"ti": FakeTaskInstance()}
    )
    assert expiry(fuse, signing_key) == end + DEFAULT_TOKEN_LIFETIME


def test_without_an_end_tokens_expire_after_the_last_attempts_earliest_start(
    results, fuse, signing_key, contacts_csv
):
    start = int(time.time()) + 1800
    operator(contacts_csv, start_timestamp=start, max_attempts=3, reattempt_wait=600).execute(
        {"ti": FakeTaskInstance()}
    )
    assert expiry(fuse, signing_key) == start + 2 * 600 + DEFAULT_TOKEN_LIFETIME


def test_without_a_start_the_window_is_counted_from_when_the_list_is_sent(
    results, fuse, signing_key, contacts_csv
):
    before = int(time.time())
    operator(contacts_csv, max_attempts=2, reattempt_wait=900).execute({"ti": FakeTaskInstance()})
    after = int(time.time())
    assert (
        before + 900 + DEFAULT_TOKEN_LIFETIME
        <= expiry(fuse, signing_key)
        <= after + 900 + DEFAULT_TOKEN_LIFETIME
    )


def test_the_token_lifetime_comes_from_the_config(results, fuse, signing_key, contacts_csv, monkeypatch):
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_TOKEN_LIFETIME", "3600")
    end = int(time.time()) + 7200
    operator(contacts_csv, end_timestamp=end).execute({"ti": FakeTaskInstance()})
    assert expiry(fuse, signing_key) == end + 3600


@pytest.mark.parametrize(
    ("fields", "offset"),
    [
        ({}, 0),
        ({"max_attempts": 1}, 0),
        ({"max_attempts": 4, "reattempt_wait": 60}, 180),
        ({"start_timestamp": -600, "max_attempts": 2, "reattempt_wait": 120}, 120),  # a start already past
        ({"start_timestamp": 600}, 600),
        ({"start_timestamp": 600, "end_timestamp": 5000, "max_attempts": 3, "reattempt_wait": 60}, 5000),
    ],
)
def test_dialing_window_end(fields, offset):
    now = time.time()
    moved = {
        name: int(now) + value if name.endswith("timestamp") else value for name, value in fields.items()
    }
    assert dialing_window_end(QueueFields(**moved), now) == int(now) + offset


# --- Checked before anything is recorded or sent -------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "option"),
    [
        ({"AIRFLOW__FUSE__RESULTS_SIGNING_KEY": ""}, "results_signing_key is not set"),
        ({"AIRFLOW__FUSE__RESULTS_SIGNING_KEY": "short-key-value"}, "results_signing_key is shorter"),
        ({"AIRFLOW__FUSE__RESULTS_BASE_URL": ""}, "results_base_url is not set"),
        (
            {"AIRFLOW__FUSE__RESULTS_BASE_URL": "http://outcomes.example.com"},
            "results_base_url must use https",
        ),
        ({"AIRFLOW__FUSE__RESULTS_BASE_URL": "https://x.example.com/?k=v"}, "results_base_url must have no"),
        ({"AIRFLOW__FUSE__RESULTS_TABLE": "results; drop"}, "results_table must be a table name"),
        ({"AIRFLOW_CONN_FUSE_RESULTS_DEFAULT": ""}, "results_conn_id"),
        ({"AIRFLOW_CONN_FUSE_RESULTS_DEFAULT": json.dumps({"conn_type": "fuse"})}, "results_conn_id"),
    ],
)
def test_an_unusable_results_option_fails_before_anything_is_recorded_or_sent(
    results, fuse, contacts_csv, monkeypatch, environment, option
):
    for name, value in environment.items():
        if value:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)
    store = MemoryStore()
    with pytest.raises(AirflowFailException) as caught:
        operator(contacts_csv, retries=3).execute({"ti": FakeTaskInstance(), "task_state_store": store})
    message = str(caught.value)
    assert message.startswith("Nothing was sent to Fuse: ")
    assert option in message
    for value in environment.values():
        if value and "RESULTS_CONN" not in value:
            assert value not in message
    assert not fuse.called
    assert store.values == {}


def test_a_signing_key_command_that_fails_sends_nothing_and_is_left_to_the_retries(
    results, fuse, contacts_csv, monkeypatch, tmp_path
):
    # A failed _cmd (a secrets backend briefly out of reach) may pass by the next try (review r2, 2).
    command = tmp_path / "key.sh"
    command.write_text("#!/bin/sh\necho k3y-printed-by-the-failing-command-0123456789\nexit 3\n")
    command.chmod(0o755)
    monkeypatch.delenv("AIRFLOW__FUSE__RESULTS_SIGNING_KEY", raising=False)
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_SIGNING_KEY_CMD", str(command))
    store = MemoryStore()
    with pytest.raises(AirflowException) as caught:
        operator(contacts_csv, retries=3).execute({"ti": FakeTaskInstance(), "task_state_store": store})
    assert not isinstance(caught.value, AirflowFailException)
    message = str(caught.value)
    assert message.startswith("Nothing was sent to Fuse: [fuse] results_signing_key could not be read")
    assert "k3y-printed" not in message
    assert not fuse.called
    assert store.values == {}


def test_a_results_database_out_of_reach_is_left_to_the_tasks_retries(
    results, fuse, contacts_csv, monkeypatch
):
    # Nothing was sent, and the database may be back for the next try: not a failure without retries.
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_RESULTS_DEFAULT", "sqlite:///no/such/dir/results.db")
    store = MemoryStore()
    with pytest.raises(AirflowException, match=r"^Nothing was sent to Fuse: the results table") as caught:
        operator(contacts_csv, retries=3).execute({"ti": FakeTaskInstance(), "task_state_store": store})
    assert not isinstance(caught.value, AirflowFailException)
    assert not fuse.called
    assert store.values == {}


def test_a_clear_after_success_is_answered_from_the_ledger_with_the_results_database_down(
    results, fuse, contacts_csv, monkeypatch
):
    context = {"ti": FakeTaskInstance(), "task_state_store": MemoryStore()}
    assert operator(contacts_csv).execute(context) == 3
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_RESULTS_DEFAULT", "sqlite:///no/such/dir/results.db")
    monkeypatch.delenv("AIRFLOW__FUSE__RESULTS_SIGNING_KEY")
    context["ti"] = FakeTaskInstance()
    assert operator(contacts_csv).execute(context) == 3
    assert fuse.call_count == 1
    assert context["ti"].xcom[RESULTS_XCOM_KEY]["calls_queued"] == 3


def test_a_resumed_upload_stopped_by_the_results_setup_says_what_was_queued(
    results, requests_mock, tmp_path, monkeypatch
):
    requests_mock.post(
        BULK_URL, [{"json": {"calls_queued": 3}}, {"status_code": 429, "json": {"error": "slow down"}}]
    )
    context = {"ti": FakeTaskInstance(), "task_state_store": MemoryStore()}
    path = numbered_csv(tmp_path, 6)
    with pytest.raises(AirflowException, match="part 2 of 2"):
        operator(path, chunk_size=3).execute(context)
    monkeypatch.delenv("AIRFLOW__FUSE__RESULTS_SIGNING_KEY")
    with pytest.raises(AirflowFailException) as caught:
        operator(path, chunk_size=3).execute(context)
    assert str(caught.value).startswith(
        "Nothing more was sent to Fuse (earlier tries of this task instance queued 3 calls): "
    )
    assert requests_mock.call_count == 2


def test_a_changed_list_is_not_resent_with_collect_results(results, fuse, tmp_path):
    # Its tokens would name the same parts as the first list's: its outcomes would be refused as the
    # parts filled, and the sensor would count the first list's outcomes as the second's.
    context = {"ti": FakeTaskInstance(), "task_state_store": MemoryStore()}
    assert operator(numbered_csv(tmp_path, 3)).execute(context) == 3
    changed = tmp_path / "changed.csv"
    changed.write_text("destination\n16175550999\n16175550998\n16175550997\n")
    with pytest.raises(AirflowFailException, match="Send the changed list from a new DAG run"):
        operator(changed, allow_resend=True).execute(context)
    assert fuse.call_count == 1


def test_a_dry_run_checks_the_results_options_too(results, fuse, contacts_csv, monkeypatch):
    monkeypatch.delenv("AIRFLOW__FUSE__RESULTS_SIGNING_KEY")
    with pytest.raises(AirflowFailException, match="results_signing_key is not set"):
        operator(contacts_csv, dry_run=True).execute({})
    assert not fuse.called


def test_the_results_table_is_created_before_dialing(results, fuse, contacts_csv):
    operator(contacts_csv).execute({"ti": FakeTaskInstance()})
    with contextlib.closing(sqlite3.connect(results)) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    assert tables == [DEFAULT_TABLE]


def test_without_a_task_instance_nothing_is_signed_or_sent(results, fuse, contacts_csv):
    with pytest.raises(AirflowFailException, match="collect_results: needs the running task instance"):
        operator(contacts_csv).execute({})
    assert not fuse.called


# --- The ledger: a retry or clear is not a "changed list" ----------------------------------------------


def test_a_clear_after_success_is_answered_from_the_ledger_and_pushes_fuse_results_again(
    results, fuse, contacts_csv, log_text
):
    store = MemoryStore()
    first, second = FakeTaskInstance(), FakeTaskInstance()
    assert operator(contacts_csv).execute({"ti": first, "task_state_store": store}) == 3
    assert operator(contacts_csv).execute({"ti": second, "task_state_store": store}) == 3
    assert fuse.call_count == 1
    assert "already queued its list (3 calls" in log_text()
    assert second.xcom[RESULTS_XCOM_KEY]["calls_queued"] == 3


def test_the_ledger_tells_collected_from_not_collected(results, fuse, contacts_csv):
    store = MemoryStore()
    operator(contacts_csv).execute({"ti": FakeTaskInstance(), "task_state_store": store})
    with pytest.raises(AirflowFailException, match="parameters of the list changed"):
        operator(contacts_csv, collect_results=False).execute(
            {"ti": FakeTaskInstance(), "task_state_store": store}
        )
    assert fuse.call_count == 1


def test_the_fingerprint_has_collect_results_and_no_url(results, fuse, contacts_csv, monkeypatch):
    from airflow_provider_fuse.operators import bulk_queue

    seen = []
    original = bulk_queue.FuseBulkQueueOperator._fingerprint
    monkeypatch.setattr(
        bulk_queue.FuseBulkQueueOperator,
        "_fingerprint",
        staticmethod(lambda sha256, parameters: seen.append(parameters) or original(sha256, parameters)),
    )
    operator(contacts_csv).execute({"ti": FakeTaskInstance(), "task_state_store": MemoryStore()})
    (parameters,) = seen
    assert parameters["collect_results"] is True
    assert "result_url" not in json.dumps(parameters)
    assert RESULTS_BASE not in json.dumps(parameters)


def test_without_collect_results_the_fingerprint_is_what_earlier_versions_recorded(
    fuse_connection, fuse, contacts_csv
):
    task = operator(contacts_csv, collect_results=False)
    assert "collect_results" not in task._parameters(12, 34, QueueFields())


# --- The fuse_results XCom --------------------------------------------------------------------------------


def test_fuse_results_records_the_count_and_the_window_without_personal_data(
    results, fuse, contacts_csv, signing_key
):
    start = int(time.time()) + 600
    end = start + 3600
    ti = FakeTaskInstance()
    before = int(time.time())
    operator(contacts_csv, start_timestamp=start, end_timestamp=end).execute({"ti": ti})
    record = ti.xcom[RESULTS_XCOM_KEY]
    assert before <= record.pop("queued_timestamp") <= int(time.time())
    assert record == {
        "campaign": verify(token_of(sent_urls(fuse)[0]), signing_key, now=time.time()).campaign,
        "confirmed": True,
        "calls_queued": 3,
        "rows": 3,
        "window_end": end,
        "start_timestamp": start,
        "last_attempt_timestamp": end,
    }
    assert set(ti.xcom) == {RESULTS_XCOM_KEY}
    text = json.dumps(ti.xcom)
    assert "5551234" not in text
    assert signing_key not in text
    assert token_of(sent_urls(fuse)[0]) not in text


def test_fuse_results_without_a_window(results, fuse, contacts_csv):
    ti = FakeTaskInstance()
    operator(contacts_csv).execute({"ti": ti})
    assert ti.xcom[RESULTS_XCOM_KEY]["window_end"] is None
    assert ti.xcom[RESULTS_XCOM_KEY]["start_timestamp"] is None


def test_a_failing_xcom_push_does_not_fail_a_queued_list(results, fuse, contacts_csv, log_text):
    class Broken(FakeTaskInstance):
        def xcom_push(self, key, value):
            raise RuntimeError("the API server is down")

    assert operator(contacts_csv).execute({"ti": Broken()}) == 3
    assert "the results sensor needs it) failed (RuntimeError); the task goes on" in log_text()


def test_a_dry_run_shows_the_result_url_with_the_token_hidden_and_pushes_nothing(
    results, fuse, contacts_csv, log_text
):
    ti = FakeTaskInstance()
    assert operator(contacts_csv, dry_run=True).execute({"ti": ti}) == 3
    assert f"result_url={RESULTS_BASE}/fuse/results/***" in log_text()
    assert not fuse.called
    assert ti.xcom == {}


# --- Never shown: the log, XCom, rendered fields -------------------------------------------------------


def test_the_token_and_the_key_are_never_in_the_log_xcom_or_rendered_fields(
    results, fuse, signing_key, tmp_path, log_text
):
    """With Airflow's secret masking on, as in a task run: what is logged, pushed and rendered."""
    from airflow.sdk import DAG
    from airflow.sdk._shared.secrets_masker import redact
    from airflow.sdk._shared.secrets_masker.secrets_masker import SecretsMasker
    from airflow.sdk.execution_time.task_runner import _serialize_rendered_fields

    SecretsMasker.enable_log_masking()
    with DAG("collect", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)):
        task = operator("{{ params.csv }}", chunk_size=2, end_timestamp="{{ params.end }}")
    context = {"params": {"csv": str(numbered_csv(tmp_path, 5)), "end": int(time.time()) + 3600}}
    task.render_template_fields(context)
    ti = FakeTaskInstance()
    assert task.execute({**context, "ti": ti}) == 5
    tokens = [token_of(url) for url in sent_urls(fuse)]
    assert len(tokens) == 3
    shown = log_text() + json.dumps(ti.xcom) + json.dumps(_serialize_rendered_fields(task))
    for secret in (signing_key, *tokens):
        assert secret not in shown
        # Registered with the masker: a log line that quoted one would show *** instead.
        assert secret not in redact(f"leaked {secret} and {RESULTS_BASE}/fuse/results/{secret}")


def test_a_retry_after_an_unknown_outcome_is_refused_as_before(results, requests_mock, contacts_csv):
    requests_mock.post(BULK_URL, status_code=502, text="<html>Bad Gateway</html>")
    store = MemoryStore()
    with pytest.raises(AirflowFailException, match="Unknown outcome"):
        operator(contacts_csv).execute({"ti": FakeTaskInstance(), "task_state_store": store})
    with pytest.raises(AirflowFailException, match="outcome of an earlier try is unknown"):
        operator(contacts_csv).execute({"ti": FakeTaskInstance(), "task_state_store": store})
    assert requests_mock.call_count == 1
    assert LEDGER_KEY in store.values


def test_the_result_url_sent_is_https_off_loopback(results, fuse, contacts_csv, monkeypatch, signing_key):
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_BASE_URL", "https://airflow.example.com/base/")
    operator(contacts_csv).execute({"ti": FakeTaskInstance()})
    (url,) = sent_urls(fuse)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("https", "airflow.example.com")
    assert parts.path.startswith("/base/fuse/results/")
    token = parts.path.removeprefix("/base/fuse/results/")
    part = verify(token, signing_key, now=time.time())
    assert part == UploadPart(
        dag_id="campaign",
        run_id=RUN_ID,
        task_id="queue_calls",
        map_index=-1,
        campaign=part.campaign,
        part=0,
        rows=3,
        expires=part.expires,
    )


# --- The campaign: a run id used again is a new campaign; a retry or clear is the same one ------------


def campaigns_sent(fuse, signing_key) -> list[str]:
    return [verify(token_of(url), signing_key, now=time.time()).campaign for url in sent_urls(fuse)]


def test_every_part_is_signed_with_one_campaign_and_the_xcom_names_it(results, fuse, signing_key, tmp_path):
    ti = FakeTaskInstance()
    operator(numbered_csv(tmp_path, 10), chunk_size=4).execute({"ti": ti, "task_state_store": MemoryStore()})
    (campaign,) = set(campaigns_sent(fuse, signing_key))
    assert ti.xcom[RESULTS_XCOM_KEY]["campaign"] == campaign


def test_a_run_id_used_again_with_a_new_ledger_is_a_new_campaign(results, fuse, signing_key, contacts_csv):
    # A DAG run deleted and triggered again under the same run id: its ledger went with the deleted
    # run, so the list is dialed again, and its outcomes must not be taken for the first campaign's.
    first, second = FakeTaskInstance(), FakeTaskInstance()
    operator(contacts_csv).execute({"ti": first, "task_state_store": MemoryStore()})
    operator(contacts_csv).execute({"ti": second, "task_state_store": MemoryStore()})
    assert fuse.call_count == 2
    one, two = campaigns_sent(fuse, signing_key)
    assert one != two
    assert (first.xcom[RESULTS_XCOM_KEY]["campaign"], second.xcom[RESULTS_XCOM_KEY]["campaign"]) == (one, two)


def test_without_a_ledger_every_try_that_sends_is_a_new_campaign(results, fuse, signing_key, contacts_csv):
    # Airflow 3.1: no task state store, nothing remembers the first try's campaign.
    operator(contacts_csv).execute({"ti": FakeTaskInstance()})
    operator(contacts_csv).execute({"ti": FakeTaskInstance()})
    assert len(set(campaigns_sent(fuse, signing_key))) == 2


def test_a_clear_answered_from_the_ledger_keeps_the_campaign_and_the_first_sends_times(
    results, fuse, signing_key, contacts_csv, monkeypatch
):
    store = MemoryStore()
    first, second = FakeTaskInstance(), FakeTaskInstance()
    operator(contacts_csv, max_attempts=3, reattempt_wait=600).execute(
        {"ti": first, "task_state_store": store}
    )
    # The clear comes an hour later: the record must still say when the list was sent.
    later = time.time() + 3600
    monkeypatch.setattr("airflow_provider_fuse.operators.bulk_queue.time.time", lambda: later)
    operator(contacts_csv, max_attempts=3, reattempt_wait=600).execute(
        {"ti": second, "task_state_store": store}
    )
    assert fuse.call_count == 1
    assert second.xcom[RESULTS_XCOM_KEY] == first.xcom[RESULTS_XCOM_KEY]
    (campaign,) = campaigns_sent(fuse, signing_key)
    assert second.xcom[RESULTS_XCOM_KEY]["campaign"] == campaign


def test_a_resumed_upload_keeps_the_campaign(results, requests_mock, signing_key, tmp_path):
    forms = []

    def ok(request, context):
        forms.append(decode_multipart(request))
        return {"calls_queued": len(forms[-1]["csv"][0].splitlines()) - 1}

    requests_mock.post(
        BULK_URL, [{"json": ok}, {"status_code": 429, "json": {"error": "slow"}}, {"json": ok}]
    )
    context = {"ti": FakeTaskInstance(), "task_state_store": MemoryStore()}
    path = numbered_csv(tmp_path, 6)
    with pytest.raises(AirflowException, match="part 2 of 2"):
        operator(path, chunk_size=3).execute(context)
    assert operator(path, chunk_size=3).execute(context) == 6
    campaigns = {
        verify(token_of(form["result_url"][0].decode()), signing_key, now=time.time()).campaign
        for form in forms
    }
    assert campaigns == {context["ti"].xcom[RESULTS_XCOM_KEY]["campaign"]}


def test_the_ledger_holds_the_campaign_before_the_request_leaves(
    results, requests_mock, signing_key, contacts_csv
):
    store = MemoryStore()
    seen = []

    def answer(request, context):
        seen.append(json.loads(json.dumps(store.values[LEDGER_KEY])))
        seen.append(decode_multipart(request)["result_url"][0].decode())
        return {"calls_queued": 3}

    requests_mock.post(BULK_URL, json=answer)
    operator(contacts_csv).execute({"ti": FakeTaskInstance(), "task_state_store": store})
    url = seen[1]
    assert seen[0]["campaign"]["campaign"] == verify(token_of(url), signing_key, now=time.time()).campaign
    assert "5551234" not in json.dumps(store.values)


# --- The record is pushed before sending: the recovery after an unknown outcome keeps the loop -------


def test_an_unknown_outcome_leaves_an_unconfirmed_record_for_the_sensor(
    results, requests_mock, signing_key, contacts_csv
):
    urls = []

    def bad_gateway(request, context):
        urls.append(decode_multipart(request)["result_url"][0].decode())
        context.status_code = 502
        return "<html>Bad Gateway</html>"

    requests_mock.post(BULK_URL, text=bad_gateway)
    ti = FakeTaskInstance()
    before = int(time.time())
    with pytest.raises(AirflowFailException, match="Unknown outcome"):
        operator(contacts_csv).execute({"ti": ti, "task_state_store": MemoryStore()})
    record = ti.xcom[RESULTS_XCOM_KEY]
    (url,) = urls
    assert record["campaign"] == verify(token_of(url), signing_key, now=time.time()).campaign
    assert record["confirmed"] is False
    assert record["calls_queued"] is None
    assert record["rows"] == 3
    assert before <= record["queued_timestamp"] <= int(time.time())


def test_a_push_before_sending_that_fails_does_not_stop_the_list(results, fuse, contacts_csv, log_text):
    class Flaky(FakeTaskInstance):
        pushes = 0

        def xcom_push(self, key, value):
            self.pushes += 1
            if self.pushes == 1:
                raise RuntimeError("the API server is down")
            super().xcom_push(key, value)

    ti = Flaky()
    assert operator(contacts_csv).execute({"ti": ti}) == 3
    assert ti.xcom[RESULTS_XCOM_KEY]["confirmed"] is True


def waited_for(record: dict):
    """What the results sensor makes of ``record`` (its campaign(): counts, deadline, campaigns)."""
    from airflow_provider_fuse.sensors.campaign_results import FuseCampaignResultsSensor

    class Reader:
        dag_id, run_id = "campaign", RUN_ID

        def xcom_pull(self, task_ids=None, key=None, **kwargs):
            return [record]

    sensor = FuseCampaignResultsSensor(task_id="wait_for_outcomes", bulk_task_id="queue_calls")
    return sensor.campaign({"ti": Reader()})


def test_a_clear_refused_after_an_unknown_outcome_pushes_the_record_again(
    results, requests_mock, signing_key, contacts_csv, monkeypatch
):
    """Unknown outcome, then a clear: the new try starts with no XComs, and the guard refuses it. The
    ledger still holds the campaign and the rows sent: the refusal pushes them (unconfirmed, the first
    send's times), so a mark success that follows keeps the results loop."""
    requests_mock.post(BULK_URL, status_code=502, text="<html>Bad Gateway</html>")
    store, first, cleared = MemoryStore(), FakeTaskInstance(), FakeTaskInstance()
    with pytest.raises(AirflowFailException, match="Unknown outcome"):
        operator(contacts_csv).execute({"ti": first, "task_state_store": store})
    later = time.time() + 3600  # the clear comes an hour later
    monkeypatch.setattr("airflow_provider_fuse.operators.bulk_queue.time.time", lambda: later)
    with pytest.raises(AirflowFailException, match="outcome of an earlier try is unknown"):
        operator(contacts_csv).execute({"ti": cleared, "task_state_store": store})
    assert requests_mock.call_count == 1
    record = cleared.xcom[RESULTS_XCOM_KEY]
    assert record == first.xcom[RESULTS_XCOM_KEY]
    assert (record["confirmed"], record["calls_queued"], record["rows"]) == (False, None, 3)
    assert record["campaign"] == store.values[LEDGER_KEY]["campaign"]["campaign"]
    campaign = waited_for(record)
    assert (campaign.calls_queued, campaign.unconfirmed) == (3, 1)


def test_a_refusal_after_part_of_the_list_was_queued_pushes_what_the_ledger_knows(
    results, requests_mock, signing_key, tmp_path
):
    """Part 1 of 3 queued, part 2 unknown, part 3 never sent: the refusal's record waits for the rows
    of the parts that may have been queued, not the whole list."""
    requests_mock.post(
        BULK_URL, [{"json": {"calls_queued": 2}}, {"status_code": 502, "text": "<html>Bad Gateway</html>"}]
    )
    store, path = MemoryStore(), numbered_csv(tmp_path, 7)
    with pytest.raises(AirflowFailException, match="Unknown outcome"):
        operator(path, chunk_size=3).execute({"ti": FakeTaskInstance(), "task_state_store": store})
    cleared = FakeTaskInstance()
    with pytest.raises(AirflowFailException, match="outcome of an earlier try is unknown"):
        operator(path, chunk_size=3).execute({"ti": cleared, "task_state_store": store})
    assert requests_mock.call_count == 2
    record = cleared.xcom[RESULTS_XCOM_KEY]
    assert (record["confirmed"], record["calls_queued"], record["rows"]) == (False, None, 6)


def test_a_changed_list_refused_after_a_queued_part_pushes_the_confirmed_count(
    results, requests_mock, signing_key, tmp_path
):
    """Part 1 of 2 queued (2 calls), part 2 refused 429 (not queued); then the list changes: the
    refusal pushes the count Fuse confirmed for what it has."""
    requests_mock.post(
        BULK_URL, [{"json": {"calls_queued": 2}}, {"status_code": 429, "json": {"error": "slow"}}]
    )
    store, path = MemoryStore(), numbered_csv(tmp_path, 6)
    first = FakeTaskInstance()
    with pytest.raises(AirflowException, match="part 2 of 2"):
        operator(path, chunk_size=3).execute({"ti": first, "task_state_store": store})
    path.write_text(path.read_text() + "16175559999,99\n")
    cleared = FakeTaskInstance()
    with pytest.raises(AirflowFailException, match="Nothing more was sent"):
        operator(path, chunk_size=3).execute({"ti": cleared, "task_state_store": store})
    assert requests_mock.call_count == 2
    record = cleared.xcom[RESULTS_XCOM_KEY]
    assert (record["confirmed"], record["calls_queued"], record["rows"]) == (True, 2, 3)
    assert record["campaign"] == first.xcom[RESULTS_XCOM_KEY]["campaign"]
    assert record["queued_timestamp"] == first.xcom[RESULTS_XCOM_KEY]["queued_timestamp"]


def test_a_refusal_of_a_ledger_without_a_campaign_pushes_nothing(results, requests_mock, contacts_csv):
    """A ledger written without collect_results names no campaign: nothing could be counted."""
    requests_mock.post(BULK_URL, status_code=502, text="<html>Bad Gateway</html>")
    store = MemoryStore()
    with pytest.raises(AirflowFailException, match="Unknown outcome"):
        operator(contacts_csv, collect_results=False).execute(
            {"ti": FakeTaskInstance(), "task_state_store": store}
        )
    cleared = FakeTaskInstance()
    with pytest.raises(AirflowFailException, match="outcome of an earlier try is unknown"):
        operator(contacts_csv).execute({"ti": cleared, "task_state_store": store})
    assert RESULTS_XCOM_KEY not in cleared.xcom


# --- The receiver is asked before dialing: a signing key that differs fails before any call -------------


def real_receiver(monkeypatch, key: str):
    """The results receiver app, configured with ``key``, on a loopback port (a real uvicorn)."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from airflow_provider_fuse.results.config import ResultsConfig
    from airflow_provider_fuse.results.receiver import create_app
    from tests.helpers import serving

    config = ResultsConfig(
        base_url=RESULTS_BASE, conn_id="fuse_results_default", table=DEFAULT_TABLE, signing_key=key
    )
    app = Starlette(routes=[Mount("/fuse", app=create_app(load_config=lambda: config))])
    return serving(monkeypatch, app)


def a_token(key: str) -> str:
    return signed_token(key, run_id=RUN_ID, rows=3, lifetime=600)


def test_probe_receiver_tells_a_refused_token_from_an_accepted_one_and_stores_nothing(
    results, signing_key, monkeypatch
):
    with real_receiver(monkeypatch, signing_key) as base:
        assert real_probe_receiver(f"{base}/fuse/results/{a_token(signing_key)}") == ProbeAnswer(400)
        refused = real_probe_receiver(f"{base}/fuse/results/{a_token(secrets.token_urlsafe(36))}")
        assert refused == ProbeAnswer(403, refuses_token=True)
    # The check stores nothing: the empty body is refused after the token is accepted.
    if results.exists():
        with contextlib.closing(sqlite3.connect(results)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if DEFAULT_TABLE in tables:
                assert db.execute(f"SELECT COUNT(*) FROM {DEFAULT_TABLE}").fetchone() == (0,)


def test_probe_receiver_out_of_reach_is_none(monkeypatch):
    import socket

    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    unreached = real_probe_receiver(f"http://127.0.0.1:{port}/fuse/results/{a_token('k' * 40)}")
    assert unreached == ProbeAnswer(None, connection_refused=True)


def serve_receiver_to(monkeypatch, requests_mock, key: str):
    """The real probe, against a real receiver holding ``key``; Fuse stays mocked."""
    import re

    monkeypatch.setattr("airflow_provider_fuse.operators.bulk_queue.probe_receiver", real_probe_receiver)
    server = real_receiver(monkeypatch, key)
    base = server.__enter__()
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_BASE_URL", base)
    requests_mock.post(re.compile(re.escape(base)), real_http=True)
    return server


def test_a_receiver_with_another_signing_key_fails_the_task_before_dialing(
    results, fuse, signing_key, contacts_csv, monkeypatch
):
    store = MemoryStore()
    server = serve_receiver_to(monkeypatch, fuse, secrets.token_urlsafe(36))
    try:
        with pytest.raises(
            AirflowFailException, match=r"refused this task's results token \(403\)"
        ) as caught:
            operator(contacts_csv).execute({"ti": FakeTaskInstance(), "task_state_store": store})
    finally:
        server.__exit__(None, None, None)
    assert str(caught.value).startswith("Nothing was sent to Fuse")
    assert signing_key not in str(caught.value)
    assert not [request for request in fuse.request_history if request.url == BULK_URL]
    assert store.values == {}  # no intent recorded: a clear may send


def test_a_receiver_with_the_same_key_lets_the_list_go(results, fuse, signing_key, contacts_csv, monkeypatch):
    server = serve_receiver_to(monkeypatch, fuse, signing_key)
    try:
        assert operator(contacts_csv).execute({"ti": FakeTaskInstance()}) == 3
    finally:
        server.__exit__(None, None, None)
    assert len(fuse.forms) == 1


def test_a_receiver_out_of_this_workers_reach_is_a_warning(
    results, fuse, contacts_csv, monkeypatch, log_text
):
    monkeypatch.setattr(
        "airflow_provider_fuse.operators.bulk_queue.probe_receiver", lambda url: ProbeAnswer(None)
    )
    assert operator(contacts_csv).execute({"ti": FakeTaskInstance()}) == 3
    assert "Could not reach the results receiver" in log_text()


def test_a_403_that_is_not_the_receivers_own_is_a_warning_not_a_failure(
    results, fuse, contacts_csv, monkeypatch, log_text
):
    # A proxy between this worker and the receiver, or another server at that path: its 403 says
    # nothing of the receiver's signing key (it failed the task without retries).
    monkeypatch.setattr(
        "airflow_provider_fuse.operators.bulk_queue.probe_receiver", lambda url: ProbeAnswer(403)
    )
    assert operator(contacts_csv).execute({"ti": FakeTaskInstance()}) == 3
    assert "not the results receiver's own" in log_text()


# --- A receiver that could store no outcome stops the list before it is sent (issue 18) ----------------


def assert_nothing_sent(fuse, store: MemoryStore, error: BaseException, signing_key: str) -> None:
    message = str(error)
    assert message.startswith("Nothing was sent to Fuse")
    # What to check next: the option, the plugin on the api-server, its options and its restart.
    for hint in ("[fuse] results_base_url", "plugin", "same [fuse] options", "restarted"):
        assert hint in message
    assert signing_key not in message
    assert "/fuse/results/***" in message  # the URL shown with its token hidden
    assert not [request for request in fuse.request_history if request.url == BULK_URL]
    assert store.values == {}  # no intent recorded: a clear may send


@pytest.mark.parametrize("status", [404, 405, 410])
def test_nothing_at_the_result_url_fails_the_task_before_dialing(
    results, fuse, signing_key, contacts_csv, monkeypatch, status
):
    # Every outcome Fuse posted there would be lost: it dialed and the DAG ended green (issue 18).
    monkeypatch.setattr(
        "airflow_provider_fuse.operators.bulk_queue.probe_receiver", lambda url: ProbeAnswer(status)
    )
    store = MemoryStore()
    with pytest.raises(AirflowFailException, match=f"answered {status}") as caught:
        operator(contacts_csv).execute({"ti": FakeTaskInstance(), "task_state_store": store})
    assert "would be lost" in str(caught.value)
    assert_nothing_sent(fuse, store, caught.value, signing_key)


def test_a_receiver_that_says_it_is_not_configured_fails_the_task_before_dialing(
    results, fuse, signing_key, contacts_csv, monkeypatch
):
    monkeypatch.setattr(
        "airflow_provider_fuse.operators.bulk_queue.probe_receiver",
        lambda url: ProbeAnswer(503, not_configured=True),
    )
    store = MemoryStore()
    with pytest.raises(AirflowFailException, match=r"not configured \(503\)") as caught:
        operator(contacts_csv).execute({"ti": FakeTaskInstance(), "task_state_store": store})
    assert_nothing_sent(fuse, store, caught.value, signing_key)


def test_another_503_is_a_warning_and_the_list_goes(results, fuse, contacts_csv, monkeypatch, log_text):
    # A results database briefly locked: Fuse retries a 503, so the calls may still report.
    monkeypatch.setattr(
        "airflow_provider_fuse.operators.bulk_queue.probe_receiver", lambda url: ProbeAnswer(503)
    )
    assert operator(contacts_csv).execute({"ti": FakeTaskInstance()}) == 3
    assert "answered 503" in log_text()


def test_a_real_server_without_the_receiver_at_the_base_url_fails_the_task_before_dialing(
    results, fuse, signing_key, contacts_csv, monkeypatch
):
    # The receiver is mounted below /fuse; the base URL points one level off: a real 404.
    store = MemoryStore()
    server = serve_receiver_to(monkeypatch, fuse, signing_key)
    try:
        base = os.environ["AIRFLOW__FUSE__RESULTS_BASE_URL"]
        monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_BASE_URL", f"{base}/api")
        with pytest.raises(AirflowFailException, match="answered 404") as caught:
            operator(contacts_csv).execute({"ti": FakeTaskInstance(), "task_state_store": store})
    finally:
        server.__exit__(None, None, None)
    assert_nothing_sent(fuse, store, caught.value, signing_key)


def test_a_real_receiver_without_its_options_fails_the_task_before_dialing(
    results, fuse, signing_key, contacts_csv, monkeypatch
):
    import re

    from starlette.applications import Starlette
    from starlette.routing import Mount

    from airflow_provider_fuse.results.config import ResultsConfigError
    from airflow_provider_fuse.results.receiver import create_app
    from tests.helpers import serving

    def unset():
        raise ResultsConfigError("[fuse] results_signing_key is not set")

    monkeypatch.setattr("airflow_provider_fuse.operators.bulk_queue.probe_receiver", real_probe_receiver)
    app = Starlette(routes=[Mount("/fuse", app=create_app(load_config=unset))])
    store = MemoryStore()
    with serving(monkeypatch, app) as base:
        monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_BASE_URL", base)
        fuse.post(re.compile(re.escape(base)), real_http=True)
        with pytest.raises(AirflowFailException, match=r"not configured \(503\)") as caught:
            operator(contacts_csv).execute({"ti": FakeTaskInstance(), "task_state_store": store})
    assert_nothing_sent(fuse, store, caught.value, signing_key)


def test_a_run_id_too_long_for_a_results_token_fails_before_dialing_naming_it(
    results, fuse, signing_key, contacts_csv, receiver_checks
):
    # Review r3: with a loosened allowed_run_id_pattern, a long non-ASCII run id made a token the
    # receiver calls malformed (its own 403), and the check before dialing blamed the signing key.
    ti = FakeTaskInstance()
    ti.run_id = "manual__" + "\u00e9" * 240
    store = MemoryStore()
    with pytest.raises(AirflowFailException, match=r"the run id is too long for a results token") as caught:
        operator(contacts_csv).execute({"ti": ti, "task_state_store": store})
    message = str(caught.value)
    assert message.startswith("Nothing was sent to Fuse: ")
    assert "signing key" not in message
    assert receiver_checks == []  # refused before the receiver was asked
    assert not fuse.called
    assert store.values == {}
    assert ti.xcom == {}


def test_a_real_receiver_that_cannot_read_its_options_for_now_is_a_warning_and_the_list_goes(
    results, fuse, contacts_csv, monkeypatch, log_text
):
    # A receiver's results_signing_key_cmd failing now (a secrets backend out of reach) may work by
    # the time Fuse posts: failing the task here, without retries, would be for good (review r3, 5).
    import re

    from starlette.applications import Starlette
    from starlette.routing import Mount

    from airflow_provider_fuse.results.config import ResultsConfigUnreadable
    from airflow_provider_fuse.results.receiver import create_app
    from tests.helpers import serving

    def unreadable():
        raise ResultsConfigUnreadable("[fuse] results_signing_key could not be read: AirflowConfigException")

    monkeypatch.setattr("airflow_provider_fuse.operators.bulk_queue.probe_receiver", real_probe_receiver)
    app = Starlette(routes=[Mount("/fuse", app=create_app(load_config=unreadable))])
    with serving(monkeypatch, app) as base:
        monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_BASE_URL", base)
        fuse.post(re.compile(re.escape(base)), real_http=True)
        assert operator(contacts_csv).execute({"ti": FakeTaskInstance()}) == 3
    assert "answered 503" in log_text()
    assert len(fuse.forms) == 1


@pytest.mark.parametrize("suffix", ["/fuse", "/fuse/", "/airflow/fuse", "/fuse/results", "/fuse/results/x"])
def test_a_results_base_url_with_the_receivers_own_path_fails_before_anything_is_sent(
    results, fuse, signing_key, contacts_csv, monkeypatch, receiver_checks, suffix
):
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_BASE_URL", RESULTS_BASE + suffix)
    store = MemoryStore()
    with pytest.raises(AirflowFailException, match=r"\[fuse\] results_base_url must be") as caught:
        operator(contacts_csv).execute({"ti": FakeTaskInstance(), "task_state_store": store})
    assert "without /fuse" in str(caught.value)
    assert receiver_checks == []  # refused when the options are read, before the receiver is asked
    assert not fuse.request_history
    assert store.values == {}


# --- A loopback results_base_url where nothing listens stops the list before it is sent (issue 19) ----


def closed_loopback_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_refused_before_dialing(fuse, store: MemoryStore, error: BaseException, signing_key: str) -> None:
    message = str(error)
    assert message.startswith("Nothing was sent to Fuse")
    assert "nothing listens at" in message
    # What to check next: the receiver's process and its port, and the option that names it.
    for hint in ("api-server", "fuse-results serve", "port", "[fuse] results_base_url", "clear this task"):
        assert hint in message
    assert signing_key not in message
    assert "/fuse/results/***" in message
    assert not [request for request in fuse.request_history if request.url == BULK_URL]
    assert store.values == {}  # no intent recorded: a clear may send


def test_a_loopback_results_base_url_where_nothing_listens_fails_the_task_before_dialing(
    results, fuse, signing_key, contacts_csv, monkeypatch
):
    # A wrong port: Fuse cannot reach a loopback URL, and a sandbox on this machine sees this worker's
    # loopback, so no outcome could be stored; a warning let the list be dialed (newcomer run 19).
    import re

    base = f"http://127.0.0.1:{closed_loopback_port()}"
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_BASE_URL", base)
    monkeypatch.setattr("airflow_provider_fuse.operators.bulk_queue.probe_receiver", real_probe_receiver)
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    fuse.post(re.compile(re.escape(base)), real_http=True)
    store = MemoryStore()
    with pytest.raises(AirflowFailException, match="the connection was refused") as caught:
        operator(contacts_csv).execute({"ti": FakeTaskInstance(), "task_state_store": store})
    assert_refused_before_dialing(fuse, store, caught.value, signing_key)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.2", "[::1]"])
def test_every_loopback_host_refusing_the_connection_fails_the_task_before_dialing(
    results, fuse, signing_key, contacts_csv, monkeypatch, host
):
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_BASE_URL", f"http://{host}:8090")
    monkeypatch.setattr(
        "airflow_provider_fuse.operators.bulk_queue.probe_receiver",
        lambda url: ProbeAnswer(None, connection_refused=True),
    )
    store = MemoryStore()
    with pytest.raises(AirflowFailException, match="the connection was refused") as caught:
        operator(contacts_csv).execute({"ti": FakeTaskInstance(), "task_state_store": store})
    assert_refused_before_dialing(fuse, store, caught.value, signing_key)


def test_a_refused_connection_off_loopback_is_a_warning_and_the_list_goes(
    results, fuse, contacts_csv, monkeypatch, log_text
):
    # This worker may not see the receiver the way Fuse does (another network, a firewall).
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_BASE_URL", "https://airflow.example.com")
    monkeypatch.setattr(
        "airflow_provider_fuse.operators.bulk_queue.probe_receiver",
        lambda url: ProbeAnswer(None, connection_refused=True),
    )
    assert operator(contacts_csv).execute({"ti": FakeTaskInstance()}) == 3
    assert "the connection was refused" in log_text()
    assert len(fuse.forms) == 1


# --- Calling hours: the wait covers the last part's window -----------------------------------------


def test_with_calling_hours_the_sensor_waits_until_the_last_parts_window_ends(results, fuse, tmp_path):
    import time_machine

    from tests.operators.test_fuse_calling_hours import HOURS, at, contacts

    path = contacts(tmp_path, "6175551234", "4155551234")
    ti = FakeTaskInstance()
    with time_machine.travel(at("America/New_York", 6), tick=False):
        assert operator(path, calling_hours=HOURS).execute({"ti": ti, "task_state_store": MemoryStore()}) == 2
    record = ti.xcom[RESULTS_XCOM_KEY]
    assert record["start_timestamp"] == int(at("America/New_York", 8).timestamp())
    assert record["window_end"] == int(at("America/Los_Angeles", 21).timestamp())
    for url in sent_urls(fuse):
        part = verify(token_of(url), os.environ["AIRFLOW__FUSE__RESULTS_SIGNING_KEY"], now=time.time())
        assert part.expires == record["window_end"] + DEFAULT_TOKEN_LIFETIME


def test_a_part_whose_window_closed_during_the_upload_is_not_waited_for(results, requests_mock, tmp_path):
    """Part 1 (New York) takes until Los Angeles' day is over: part 2 is not sent, part 3 (Honolulu)
    is, and Fuse's answer to it is lost. The record the sensor reads counts the rows of parts 1 and 3
    only: it must not wait for part 2's outcomes, which never come."""
    import time_machine

    from airflow_provider_fuse.results.campaign import sent_lists
    from tests.operators.test_fuse_calling_hours import HOURS, at, contacts

    path = contacts(tmp_path, "6175551234", "4155551234", "8085551234")
    forms = []
    late, honolulu_closes = at("America/Los_Angeles", 21, 30), int(at("Pacific/Honolulu", 21).timestamp())
    with time_machine.travel(at("America/New_York", 8), tick=False) as clock:

        def answer(request, context):
            forms.append(decode_multipart(request))
            if len(forms) == 1:
                clock.move_to(late)
                return json.dumps({"calls_queued": 1})
            context.status_code = 502
            return "<html>Bad Gateway</html>"

        requests_mock.post(BULK_URL, text=answer)
        ti = FakeTaskInstance()
        with pytest.raises(AirflowFailException, match="Unknown outcome"):
            operator(path, calling_hours=HOURS).execute({"ti": ti, "task_state_store": MemoryStore()})
    assert len(forms) == 2
    (sent,) = sent_lists([ti.xcom[RESULTS_XCOM_KEY]], "queue_calls", reader="this test")
    assert (sent.confirmed, sent.rows, sent.expected) == (False, 2, 2)
    assert waited_for(ti.xcom[RESULTS_XCOM_KEY]).calls_queued == 2
    # The window waited for is that of the parts sent: Honolulu's day ends last.
    assert sent.window_end == honolulu_closes


def test_the_final_record_counts_only_the_parts_sent(results, fuse, tmp_path):
    """A part left out because its zone has no window before end_timestamp, and one whose window
    closed while the part before it was sent: neither is in the confirmed record's rows."""
    import time_machine

    from airflow_provider_fuse.results.campaign import sent_lists
    from tests.operators.test_fuse_calling_hours import HOURS, at, contacts

    # New York, Los Angeles, Honolulu, and London: London's day is over and its next one starts
    # after end_timestamp, so it is left out before anything is sent.
    path = contacts(tmp_path, "6175551234", "4155551234", "8085551234", "tel:+442079460105")
    end, late = int(at("Pacific/Honolulu", 20).timestamp()), at("America/Los_Angeles", 21, 30)
    with time_machine.travel(at("America/New_York", 20), tick=False) as clock:

        def answer(request, context):
            form = decode_multipart(request)
            fuse.forms.append(form)
            if len(fuse.forms) == 1:
                clock.move_to(late)
            return {"calls_queued": len(form["csv"][0].splitlines()) - 1}

        fuse.post(BULK_URL, json=answer)
        ti = FakeTaskInstance()
        queued = operator(path, calling_hours=HOURS, end_timestamp=end).execute(
            {"ti": ti, "task_state_store": MemoryStore()}
        )
    assert queued == 2
    assert len(fuse.forms) == 2
    (sent,) = sent_lists([ti.xcom[RESULTS_XCOM_KEY]], "queue_calls", reader="this test")
    assert (sent.confirmed, sent.calls_queued, sent.rows) == (True, 2, 2)
    assert waited_for(ti.xcom[RESULTS_XCOM_KEY]).calls_queued == 2
