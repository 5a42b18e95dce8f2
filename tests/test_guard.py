"""The duplicate guard's ledger, over an in-memory stand-in for Airflow's task state store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_provider_fuse.guard import (
    LEDGER_KEY,
    BulkQueueLedger,
    Fingerprint,
    ListChanged,
    UnknownOutcomeRecorded,
)
from tests.helpers import MemoryStore

LIST = Fingerprint.of("a" * 64, application_id=1, deployment_id=2, fields={}, chunk_size=None)


def test_a_fresh_task_starts_at_the_first_part():
    plan = BulkQueueLedger(MemoryStore(), LIST, 3).plan()
    assert (plan.start, plan.calls_queued, plan.resumed) == (0, 0, False)


def test_after_success_nothing_is_sent_again_and_the_count_is_returned():
    store = MemoryStore()
    first = BulkQueueLedger(store, LIST, 2)
    first.plan()
    for index, queued in enumerate((10, 7)):
        first.sending(index, 10)
        first.queued(index, queued)
    plan = BulkQueueLedger(store, LIST, 2).plan()
    assert (plan.start, plan.calls_queued) == (2, 17)


def test_a_retry_resumes_at_the_first_part_not_queued():
    store = MemoryStore()
    first = BulkQueueLedger(store, LIST, 4)
    first.plan()
    for index in (0, 1):
        first.sending(index, 5)
        first.queued(index, 5)
    first.sending(2, 5)
    first.not_queued(2)  # Fuse said 4xx, or it was never sent
    plan = BulkQueueLedger(store, LIST, 4).plan()
    assert (plan.start, plan.calls_queued, plan.resumed) == (2, 10, True)


def test_an_intent_without_a_result_blocks_sending_whatever_the_fingerprint():
    store = MemoryStore()
    first = BulkQueueLedger(store, LIST, 1)
    first.plan()
    first.sending(0, 1000)  # ... and the worker died
    other = Fingerprint.of("b" * 64, application_id=1, deployment_id=2, fields={}, chunk_size=None)
    for fingerprint in (LIST, other):
        with pytest.raises(UnknownOutcomeRecorded, match="part 1 of 1 \\(1000 rows\\)"):
            BulkQueueLedger(store, fingerprint, 1).plan()
    with pytest.raises(UnknownOutcomeRecorded):
        BulkQueueLedger(store, LIST, 1).plan(resend=True)


def test_an_unknown_outcome_may_be_retried_when_asked():
    store = MemoryStore()
    first = BulkQueueLedger(store, LIST, 2)
    first.plan()
    first.sending(0, 3)
    first.queued(0, 3)
    first.sending(1, 3)
    plan = BulkQueueLedger(store, LIST, 2).plan(retry_unknown=True)
    assert (plan.start, plan.calls_queued) == (1, 3)


@pytest.mark.parametrize(
    ("changed", "kind"),
    [
        (Fingerprint.of("b" * 64, application_id=1, deployment_id=2, fields={}, chunk_size=None), "content"),
        (
            Fingerprint.of("a" * 64, application_id=1, deployment_id=3, fields={}, chunk_size=None),
            "parameters",
        ),
        (
            Fingerprint.of("b" * 64, application_id=1, deployment_id=2, fields={}, chunk_size=100),
            "content and parameters",
        ),
    ],
)
def test_a_changed_list_after_success_is_refused_saying_what_changed(changed, kind):
    store = MemoryStore()
    first = BulkQueueLedger(store, LIST, 1)
    first.plan()
    first.sending(0, 4)
    first.queued(0, 4)
    with pytest.raises(ListChanged, match=f"already queued 4 calls, and the {kind} of the list changed"):
        BulkQueueLedger(store, changed, 1).plan()


def test_resend_sends_a_changed_list_once_and_then_remembers_it():
    store = MemoryStore()
    first = BulkQueueLedger(store, LIST, 1)
    first.plan()
    first.sending(0, 4)
    first.queued(0, 4)
    changed = Fingerprint.of("c" * 64, application_id=1, deployment_id=2, fields={}, chunk_size=None)
    second = BulkQueueLedger(store, changed, 1)
    assert second.plan(resend=True).start == 0
    second.sending(0, 5)
    second.queued(0, 5)
    third = BulkQueueLedger(store, changed, 1).plan(resend=True)
    assert (third.start, third.calls_queued) == (1, 5)


def test_a_changed_list_with_nothing_queued_before_is_sent():
    store = MemoryStore()
    first = BulkQueueLedger(store, LIST, 1)
    first.plan()
    first.sending(0, 4)
    first.not_queued(0)
    changed = Fingerprint.of("d" * 64, application_id=1, deployment_id=2, fields={}, chunk_size=None)
    assert BulkQueueLedger(store, changed, 1).plan().start == 0


def test_entries_never_expire_and_hold_no_personal_data():
    store = MemoryStore()
    ledger = BulkQueueLedger(store, LIST, 1)
    ledger.plan()
    ledger.sending(0, 2)
    ledger.queued(0, 2)
    assert store.retentions[LEDGER_KEY] == timedelta.max
    assert store.values[LEDGER_KEY] == {
        "version": 1,
        "fingerprint": {"content": LIST.content, "parameters": LIST.parameters},
        "fingerprint_sha256": LIST.value,
        "parts": [{"state": "queued", "rows": 2, "calls_queued": 2}],
    }


def test_the_fingerprint_covers_every_parameter():
    base = {"application_id": 1, "deployment_id": 2, "fields": {"max_attempts": "2"}, "chunk_size": None}
    reference = Fingerprint.of("a" * 64, **base)
    assert Fingerprint.of("a" * 64, **base) == reference
    for name, value in [
        ("application_id", 9),
        ("deployment_id", 9),
        ("fields", {"max_attempts": "3"}),
        ("chunk_size", 10),
    ]:
        assert Fingerprint.of("a" * 64, **{**base, name: value}).parameters != reference.parameters
