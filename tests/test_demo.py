"""What `make demo` (scripts/demo.py) decides from what it reads: the summary line, and whether a
results token reached the api-server's log."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

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


def test_a_hidden_token_counts_as_hidden_in_both_access_logs(demo):
    airflow_3_3 = (
        "[info] request finished [http.access] client_addr=127.0.0.1:48034 duration_us=6490 "
        "method=POST path=/fuse/results/*** query= status_code=200\n"
    )
    uvicorn = 'INFO:     127.0.0.1:41700 - "POST /fuse/results/%2A%2A%2A HTTP/1.1" 200 OK\n'
    assert demo.receiver_paths(airflow_3_3 + uvicorn) == (2, 0)


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
