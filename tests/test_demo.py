"""What `make demo` (scripts/demo.py) decides from what it reads — the summary line, whether a
results token reached the api-server's log — and how it says it to a first-timer."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "demo.py"


@pytest.fixture(scope="module")
def demo():
    spec = importlib.util.spec_from_file_location("fuse_demo_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_summary_line_names_the_counts_that_are_not_zero_in_the_sensors_order(demo):
    summary = {"calls_queued": 3, "completed": 2, "failed": 1, "canceled": 0, "rejected": 0, "missing": 0}
    assert demo.summary_line(summary) == "3 queued → 2 completed, 1 failed"
    assert demo.summary_line({**summary, "completed": 0, "failed": 0, "missing": 3}) == "3 queued → 3 missing"
    assert demo.summary_line({"calls_queued": 0}) == "0 queued → no outcome"


def test_the_summary_line_names_outcomes_of_other_statuses(demo):
    summary = {"calls_queued": 4, "completed": 1, "canceled": 1, "other": 2, "missing": 0}
    assert demo.summary_line(summary) == "4 queued → 1 completed, 1 canceled, 2 other"


def test_a_hidden_token_counts_as_hidden_in_both_access_logs(demo):
    airflow_3_3 = (
        "[info] request finished [http.access] client_addr=127.0.0.1:48034 duration_us=6490 "
        "method=POST path=/fuse/results/*** query= status_code=200\n"
    )
    uvicorn = 'INFO:     127.0.0.1:41700 - "POST /fuse/results/%2A%2A%2A HTTP/1.1" 200 OK\n'
    assert demo.receiver_paths(airflow_3_3 + uvicorn) == (2, 0)


# Each * as a server may write it: as is, or percent-encoded in either case.
STAR_SPELLINGS = st.lists(st.sampled_from(["*", "%2A", "%2a"]), min_size=3, max_size=3).map("".join)


@given(spelling=STAR_SPELLINGS)
def test_the_hidden_token_counts_as_hidden_in_any_spelling_a_server_may_log(demo, spelling):
    line = f'INFO:     127.0.0.1:41700 - "POST /fuse/results/{spelling} HTTP/1.1" 200 OK\n'
    assert demo.receiver_paths(line) == (1, 0)


@given(token=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1))
def test_any_token_is_caught_however_it_is_spelled(demo, token):
    for spelling in (token, token.replace(".", "%2E")):
        assert demo.receiver_paths(f"path=/fuse/results/{spelling} status_code=403") == (0, 1)


@pytest.mark.parametrize(
    "line",
    [
        "method=POST path=/fuse/results/eyJkYWciOiJ4In0.c2lnbmF0dXJl query= status_code=200",
        'INFO:     127.0.0.1:1 - "POST /fuse/results/eyJkYWciOiJ4In0.c2ln HTTP/1.1" 403 Forbidden',
        "path=/fuse/results/***x status_code=403",
        "path=/fuse/results/%2A%2A%2Aabc status_code=403",
    ],
)
def test_a_token_in_the_log_is_caught(demo, line):
    assert demo.receiver_paths(line)[1] == 1


def test_counted_says_one_thing_and_many_things(demo):
    assert [demo.counted(n, "attempt") for n in (0, 1, 2)] == ["0 attempts", "1 attempt", "2 attempts"]


@pytest.mark.parametrize(
    ("delivery", "status_code", "said"),
    [
        ("delivered", 200, "posted to the receiver, which answered 200"),
        ("failed", 403, "refused it (403)"),
        ("failed", None, "could not be posted"),
        ("pending", None, "still being posted"),
        ("not_delivered", None, "no outcome was posted"),
        (None, None, "no outcome was posted"),
    ],
)
def test_what_became_of_an_outcome_is_said_in_plain_words(demo, delivery, status_code, said):
    words = demo.delivery_words(delivery, status_code)
    assert said in words
    assert "delivery" not in words  # the sandbox's field name, not a word a first-timer knows


def test_the_receivers_requests_are_split_into_outcomes_and_checks(demo):
    # 3 calls' outcomes, the demo's made-up token and the bulk task's check before dialing.
    line = demo.receiver_requests(logged=5, leaked=0, posted=3)
    assert line.startswith("5 requests to the receiver (3 outcomes from the sandbox, 2 checks")
    assert "hidden" in line
    assert "visible in 1" in demo.receiver_requests(logged=4, leaked=1, posted=3)


@given(logged=st.integers(0, 50), leaked=st.integers(0, 50), posted=st.integers(0, 60))
def test_the_receivers_requests_add_up_whatever_the_log_holds(demo, logged, leaked, posted):
    numbers = [int(n) for n in re.findall(r"\d+", demo.receiver_requests(logged, leaked, posted))[:3]]
    total, outcomes, checks = numbers
    assert total == logged + leaked
    assert outcomes + checks == total
    assert min(outcomes, checks) >= 0


# --- The approval step ----------------------------------------------------------------------------


def test_the_verdict_is_success_only_without_problems_and_says_no_real_call_was_placed(
    demo, monkeypatch, capsys
):
    monkeypatch.setattr(demo, "contact_exports", list)
    assert demo.verdict([], started=0.0) == 0
    said = capsys.readouterr().out
    assert said.startswith("SUCCESS: the three DAG runs succeeded")
    assert "approved list was sent once" in said
    assert demo.NO_REAL_CALL in said

    assert demo.verdict(["example_fuse_approval run state 'failed'", "a forged token"], started=0.0) == 1
    said = capsys.readouterr().out
    assert said.startswith("FAILED: example_fuse_approval run state 'failed'; a forged token")
    assert demo.NO_REAL_CALL in said


def test_a_contact_export_left_behind_fails_the_demo(demo, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(demo, "contact_exports", lambda: [tmp_path / "contacts.csv"])
    assert demo.verdict([], started=0.0) == 1
    assert "1 contact export left behind" in capsys.readouterr().out


def test_runs_an_interrupted_demo_left_unfinished_are_failed_before_the_scheduler_starts(demo):
    """A scheduler takes up every queued or running run of its database: an earlier demo's must not dial."""

    class Api:
        def __init__(self):
            self.patched = []

        def call(self, method, path, body=None, **params):
            if method == "GET":
                runs = {
                    "queued": [],
                    "running": [{"dag_id": "example_fuse_bulk_queue", "dag_run_id": "manual__x+1"}],
                }
                return {"dag_runs": runs[params["state"]]}
            self.patched.append((path, body))
            return {}

    api = Api()
    assert demo.finish_unfinished_runs(api) == 1
    assert api.patched == [
        ("/api/v2/dags/example_fuse_bulk_queue/dagRuns/manual__x%2B1", {"state": "failed"})
    ]
