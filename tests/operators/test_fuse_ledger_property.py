"""A property of the duplicate guard, through the real operator and hook: whatever Fuse answers, however
often the task is retried or cleared, no part Fuse may have queued is sent again, and no intent is left
behind for a request that never left the machine."""

from __future__ import annotations

import contextlib

import requests
import requests_mock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_fuse._compat import AirflowException
from airflow_provider_fuse.guard import LEDGER_KEY
from airflow_provider_fuse.operators.fuse import FuseBulkQueueOperator
from tests.helpers import MemoryStore, decode_multipart
from tests.operators.test_fuse import BULK_URL

#: What one request meets. "queued" and the outcomes after it reach Fuse, which (at worst) queues
#: the part; the first three never reach it.
NOT_SENT = ("refused", "invalid_url", "rejected")
REACHED = ("queued", "server_error", "redirect", "lost", "worker_died")


class WorkerDied(BaseException):
    """The task process is gone between Fuse's work and the answer: nothing in it records anything."""


def csv_of(rows: int) -> str:
    return "destination,n\n" + "".join(f"1617555{index:04d},{index}\n" for index in range(rows))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.integers(1, 6),
    chunk_size=st.integers(1, 3),
    tries=st.lists(st.lists(st.sampled_from(NOT_SENT + REACHED), max_size=4), min_size=1, max_size=6),
)
def test_no_part_fuse_may_have_queued_is_sent_twice_and_no_intent_outlives_a_request_that_never_left(
    fuse_connection, tmp_path, monkeypatch, rows, chunk_size, tries
):
    monkeypatch.setattr("airflow_provider_fuse.hooks.fuse.time.sleep", lambda seconds: None)
    path = tmp_path / "contacts.csv"
    path.write_text(csv_of(rows))
    store = MemoryStore()
    queued_by_fuse: dict[int, int] = {}  # row → how many times Fuse may have queued it
    outcomes: list[str] = []
    left_unanswered: set[int] = set()  # parts whose last request reached Fuse and got no 200 back

    def fuse(request, context):
        body = decode_multipart(request)["csv"][0].decode()
        numbers = [int(line.split(",")[1]) for line in body.splitlines()[1:]]
        part = numbers[0] // chunk_size
        outcome = outcomes.pop(0) if outcomes else "queued"
        if outcome == "refused":
            raise requests.exceptions.ConnectTimeout("connect timed out")
        if outcome == "invalid_url":
            raise requests.exceptions.InvalidURL("bad url")
        if outcome == "rejected":
            context.status_code = 400
            return {"error": "Invalid data."}
        for number in numbers:
            queued_by_fuse[number] = queued_by_fuse.get(number, 0) + 1
        left_unanswered.discard(part)
        if outcome == "queued":
            return {"calls_queued": len(numbers)}
        left_unanswered.add(part)
        if outcome == "server_error":
            context.status_code = 500
            return {"error": "database error"}
        if outcome == "redirect":
            context.status_code = 303
            context.headers["Location"] = "/somewhere"
            return None
        if outcome == "lost":
            raise requests.exceptions.ReadTimeout("no answer")
        raise WorkerDied

    with requests_mock.Mocker() as mock:
        mock.post(BULK_URL, json=fuse)
        for try_outcomes in tries:  # each a retry or a clear of the same task instance
            outcomes[:] = try_outcomes
            task = FuseBulkQueueOperator(
                task_id="queue_calls",
                application_id=12,
                deployment_id=34,
                csv_path=str(path),
                chunk_size=chunk_size,
            )
            with contextlib.suppress(AirflowException, WorkerDied):
                task.execute({"task_state_store": store})
            assert all(count == 1 for count in queued_by_fuse.values()), "a part was sent twice"
            recorded = store.values.get(LEDGER_KEY, {"parts": []})["parts"]
            sending = {index for index, entry in enumerate(recorded) if entry and entry["state"] == "sending"}
            assert sending <= left_unanswered, "an intent outlived a request that never reached Fuse"
