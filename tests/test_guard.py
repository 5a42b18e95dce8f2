"""The duplicate guard's ledger, over an in-memory stand-in for Airflow's task state store."""

from __future__ import annotations

import contextlib
import hashlib
import json
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_fuse.guard import (
    LEDGER_KEY,
    QUEUE_CALL_KEY,
    BulkQueueLedger,
    CampaignRecord,
    Fingerprint,
    GuardError,
    ListChanged,
    QueueCallLedger,
    UnknownOutcomeRecorded,
    seal,
)
from tests.helpers import MemoryStore

PARAMETERS = {"application_id": 1, "deployment_id": 2, "fields": {}, "chunk_size": None}
LIST = Fingerprint.of("a" * 64, **PARAMETERS)


def record_success(store: MemoryStore, fingerprint: Fingerprint = LIST, counts=(4,)) -> None:
    ledger = BulkQueueLedger(store)
    ledger.plan(fingerprint, len(counts))
    for index, queued in enumerate(counts):
        ledger.sending(index, queued)
        ledger.queued(index, queued)


def test_a_fresh_task_starts_at_the_first_part():
    plan = BulkQueueLedger(MemoryStore()).plan(LIST, 3)
    assert (plan.start, plan.calls_queued, plan.resumed) == (0, 0, False)


def test_after_success_nothing_is_sent_again_and_the_count_is_returned():
    store = MemoryStore()
    record_success(store, counts=(10, 7))
    plan = BulkQueueLedger(store).plan(LIST, 2)
    assert (plan.start, plan.calls_queued) == (2, 17)


def test_after_success_the_ledger_answers_without_the_list():
    store = MemoryStore()
    record_success(store, counts=(10, 7))
    assert BulkQueueLedger(store).answer(PARAMETERS) == 17


def test_the_answer_without_the_list_refuses_changed_parameters():
    store = MemoryStore()
    record_success(store)
    with pytest.raises(ListChanged, match="already queued 4 calls, and the parameters of the list changed"):
        BulkQueueLedger(store).answer({**PARAMETERS, "deployment_id": 3})


def test_the_answer_without_the_list_defers_to_the_list_when_a_resend_is_allowed_or_parts_are_left():
    store = MemoryStore()
    record_success(store)
    assert BulkQueueLedger(store).answer(PARAMETERS, resend=True) is None
    partial = MemoryStore()
    ledger = BulkQueueLedger(partial)
    ledger.plan(LIST, 2)
    ledger.sending(0, 5)
    ledger.queued(0, 5)
    assert BulkQueueLedger(partial).answer(PARAMETERS) is None
    assert BulkQueueLedger(MemoryStore()).answer(PARAMETERS) is None


def test_a_retry_resumes_at_the_first_part_not_queued():
    store = MemoryStore()
    first = BulkQueueLedger(store)
    first.plan(LIST, 4)
    for index in (0, 1):
        first.sending(index, 5)
        first.queued(index, 5)
    first.sending(2, 5)
    first.not_queued(2)  # Fuse said 4xx, or it never left the machine
    plan = BulkQueueLedger(store).plan(LIST, 4)
    assert (plan.start, plan.calls_queued, plan.resumed) == (2, 10, True)


def test_an_intent_without_a_result_blocks_sending_whatever_the_fingerprint():
    store = MemoryStore()
    first = BulkQueueLedger(store)
    first.plan(LIST, 1)
    first.sending(0, 1000)  # ... and the worker died
    other = Fingerprint.of("b" * 64, **PARAMETERS)
    for fingerprint in (LIST, other):
        with pytest.raises(UnknownOutcomeRecorded, match="part 1 of 1 \\(1000 rows\\)"):
            BulkQueueLedger(store).plan(fingerprint, 1)
    with pytest.raises(UnknownOutcomeRecorded):
        BulkQueueLedger(store).plan(LIST, 1, resend=True)
    with pytest.raises(UnknownOutcomeRecorded):
        BulkQueueLedger(store).answer(PARAMETERS)


def test_an_unknown_outcome_may_be_retried_when_asked():
    store = MemoryStore()
    first = BulkQueueLedger(store)
    first.plan(LIST, 2)
    first.sending(0, 3)
    first.queued(0, 3)
    first.sending(1, 3)
    plan = BulkQueueLedger(store).plan(LIST, 2, retry_unknown=True)
    assert (plan.start, plan.calls_queued) == (1, 3)


@pytest.mark.parametrize(
    ("changed", "kind"),
    [
        (Fingerprint.of("b" * 64, **PARAMETERS), "content"),
        (Fingerprint.of("a" * 64, **{**PARAMETERS, "deployment_id": 3}), "parameters"),
        (Fingerprint.of("b" * 64, **{**PARAMETERS, "chunk_size": 100}), "content and parameters"),
    ],
)
def test_a_changed_list_after_success_is_refused_saying_what_changed(changed, kind):
    store = MemoryStore()
    record_success(store)
    with pytest.raises(ListChanged, match=f"already queued 4 calls, and the {kind} of the list changed"):
        BulkQueueLedger(store).plan(changed, 1)


def test_resend_sends_a_changed_list_once_and_then_remembers_it():
    store = MemoryStore()
    record_success(store)
    changed = Fingerprint.of("c" * 64, **PARAMETERS)
    second = BulkQueueLedger(store)
    assert second.plan(changed, 1, resend=True).start == 0
    second.sending(0, 5)
    second.queued(0, 5)
    third = BulkQueueLedger(store).plan(changed, 1, resend=True)
    assert (third.start, third.calls_queued) == (1, 5)


def test_a_changed_list_with_nothing_queued_before_is_sent():
    store = MemoryStore()
    first = BulkQueueLedger(store)
    first.plan(LIST, 1)
    first.sending(0, 4)
    first.not_queued(0)
    changed = Fingerprint.of("d" * 64, **PARAMETERS)
    assert BulkQueueLedger(store).plan(changed, 1).start == 0


def test_entries_never_expire_and_hold_no_personal_data():
    store = MemoryStore()
    record_success(store, counts=(2,))
    assert store.retentions[LEDGER_KEY] == timedelta.max
    value = store.values[LEDGER_KEY]
    salt = bytes.fromhex(value["salt"])
    assert len(salt) == 16
    assert value == {
        "version": 2,
        "salt": salt.hex(),
        "fingerprint": {"content": seal(LIST.content, salt), "parameters": seal(LIST.parameters, salt)},
        "parts": [{"state": "queued", "rows": 2, "calls_queued": 2}],
    }


def test_no_unsalted_hash_of_the_list_is_stored():
    """A one-row list is a phone number away from a dictionary attack on a bare SHA-256."""
    csv = b"destination\n6175551234\n"
    digest = hashlib.sha256(csv).hexdigest()
    store = MemoryStore()
    record_success(store, Fingerprint.of(digest, **PARAMETERS), counts=(1,))
    stored = json.dumps(store.values)
    assert digest not in stored
    assert hashlib.sha256(digest.encode()).hexdigest() not in stored


def test_the_same_list_seals_differently_in_two_task_instances():
    first, second = MemoryStore(), MemoryStore()
    record_success(first)
    record_success(second)
    assert first.values[LEDGER_KEY]["salt"] != second.values[LEDGER_KEY]["salt"]
    assert first.values[LEDGER_KEY]["fingerprint"] != second.values[LEDGER_KEY]["fingerprint"]


def test_the_fingerprint_covers_every_parameter():
    reference = Fingerprint.of("a" * 64, **PARAMETERS)
    assert Fingerprint.of("a" * 64, **PARAMETERS) == reference
    for name, value in [
        ("application_id", 9),
        ("deployment_id", 9),
        ("fields", {"max_attempts": "3"}),
        ("chunk_size", 10),
    ]:
        assert Fingerprint.of("a" * 64, **{**PARAMETERS, name: value}).parameters != reference.parameters


def test_a_ledger_written_by_0_1_0_is_still_read():
    parameters = json.dumps(PARAMETERS, sort_keys=True, separators=(",", ":")).encode()
    store = MemoryStore()
    store.values[LEDGER_KEY] = {
        "version": 1,
        "fingerprint": {"content": "a" * 64, "parameters": hashlib.sha256(parameters).hexdigest()},
        "fingerprint_sha256": "ignored",
        "parts": [{"state": "queued", "rows": 3, "calls_queued": 3}],
    }
    assert BulkQueueLedger(store).answer(PARAMETERS) == 3
    assert BulkQueueLedger(store).plan(LIST, 1).start == 1
    with pytest.raises(ListChanged, match="content of the list changed"):
        BulkQueueLedger(store).plan(Fingerprint.of("b" * 64, **PARAMETERS), 1)


def test_something_else_under_the_key_blocks_sending():
    store = MemoryStore()
    store.values[LEDGER_KEY] = {"parts": "not a ledger"}
    with pytest.raises(GuardError, match="not this provider's ledger"):
        BulkQueueLedger(store)


# --- a single call -----------------------------------------------------------------------------------

CALL = Fingerprint.of_call("6175551234", {"first_name": "Ada"}, application_id=1, deployment_id=2, fields={})


def test_a_queued_call_is_answered_with_its_call_id():
    store = MemoryStore()
    ledger = QueueCallLedger(store, CALL)
    assert ledger.plan() is None
    ledger.sending()
    ledger.queued("c-1")
    assert QueueCallLedger(store, CALL).plan() == "c-1"


def test_a_call_whose_outcome_is_unknown_blocks_the_next_try():
    store = MemoryStore()
    ledger = QueueCallLedger(store, CALL)
    ledger.plan()
    ledger.sending()
    with pytest.raises(UnknownOutcomeRecorded):
        QueueCallLedger(store, CALL).plan()
    assert QueueCallLedger(store, CALL).plan(retry_unknown=True) is None


def test_another_call_after_a_queued_one_is_refused_unless_resend():
    store = MemoryStore()
    ledger = QueueCallLedger(store, CALL)
    ledger.plan()
    ledger.sending()
    ledger.queued("c-1")
    other = Fingerprint.of_call("6175550000", None, application_id=1, deployment_id=2, fields={})
    with pytest.raises(ListChanged, match="already queued call c-1, and the content of the call changed"):
        QueueCallLedger(store, other).plan()
    assert QueueCallLedger(store, other).plan(resend=True) is None


def test_a_resend_never_queues_a_call_queued_before_it_was_replaced():
    store = MemoryStore()
    first = QueueCallLedger(store, CALL)  # call A
    assert first.plan() is None
    first.sending()
    first.queued("c-1")
    other = Fingerprint.of_call("6175550000", None, application_id=1, deployment_id=2, fields={})
    second = QueueCallLedger(store, other)  # call B, sent once
    assert second.plan(resend=True) is None
    second.sending()
    second.queued("c-2")
    with pytest.raises(ListChanged, match="already queued this very call before another call replaced it"):
        QueueCallLedger(store, CALL).plan(resend=True)  # call A again: never dialed twice
    with pytest.raises(ListChanged, match="already queued call c-2"):
        QueueCallLedger(store, CALL).plan()
    assert QueueCallLedger(store, other).plan(resend=True) == "c-2"


def test_a_call_queued_before_it_was_replaced_is_refused_after_the_other_was_rejected():
    store = MemoryStore()
    first = QueueCallLedger(store, CALL)
    first.plan()
    first.sending()
    first.queued("c-1")
    other = Fingerprint.of_call("6175550000", None, application_id=1, deployment_id=2, fields={})
    second = QueueCallLedger(store, other)
    second.plan(resend=True)
    second.sending()
    second.not_queued()  # Fuse rejected B: the ledger holds no queued call, only A in its history
    with pytest.raises(ListChanged, match="this very call"):
        QueueCallLedger(store, CALL).plan(resend=True)


def test_the_call_ledger_stores_no_phone_number_and_uses_the_same_sealing():
    store = MemoryStore()
    ledger = QueueCallLedger(store, CALL)
    ledger.plan()
    ledger.sending()
    ledger.queued("c-1")
    value = store.values[QUEUE_CALL_KEY]
    assert "6175551234" not in json.dumps(value)
    salt = bytes.fromhex(value["salt"])
    assert value["fingerprint"]["content"] == seal(CALL.content, salt)
    assert value["parts"] == [{"state": "queued", "call_id": "c-1"}]


def test_a_call_ledger_written_by_0_1_0_is_still_read():
    store = MemoryStore()
    store.values[QUEUE_CALL_KEY] = {
        "version": 1,
        "fingerprint": CALL.legacy(),
        "state": "queued",
        "call_id": "c-0",
    }
    assert QueueCallLedger(store, CALL).plan() == "c-0"


def test_a_resend_never_sends_a_list_queued_before_it_was_replaced():
    store = MemoryStore()
    record_success(store)  # list A, 4 calls
    other = Fingerprint.of("b" * 64, **PARAMETERS)
    second = BulkQueueLedger(store)
    assert second.plan(other, 1, resend=True).start == 0  # list B, sent once
    second.sending(0, 5)
    second.queued(0, 5)
    back = BulkQueueLedger(store).plan(LIST, 1, resend=True)  # list A again
    assert (back.start, back.calls_queued) == (1, 4)


def test_a_resend_never_sends_a_list_queued_by_0_1_0_before_it_was_replaced():
    store = MemoryStore()
    store.values[LEDGER_KEY] = {  # list A, queued whole by 0.1.0
        "fingerprint": LIST.legacy(),
        "parts": [{"state": "queued", "rows": 5, "calls_queued": 5}],
    }
    other = Fingerprint.of("b" * 64, **PARAMETERS)
    second = BulkQueueLedger(store)
    assert second.plan(other, 1, resend=True).start == 0  # list B, sent once
    second.sending(0, 3)
    second.queued(0, 3)
    assert store.values[LEDGER_KEY]["history"][0]["salt"] is None
    back = BulkQueueLedger(store).plan(LIST, 1, resend=True)  # list A again
    assert (back.start, back.calls_queued) == (1, 5)
    assert BulkQueueLedger(store).plan(other, 1, resend=True).start == 1  # and B is not re-sent either


def test_a_resend_refuses_a_list_partly_queued_by_0_1_0_before_it_was_replaced():
    store = MemoryStore()
    store.values[LEDGER_KEY] = {
        "fingerprint": LIST.legacy(),
        "parts": [{"state": "queued", "rows": 5, "calls_queued": 5}, None],
    }
    other = Fingerprint.of("b" * 64, **PARAMETERS)
    second = BulkQueueLedger(store)
    second.plan(other, 1, resend=True)
    second.sending(0, 3)
    second.queued(0, 3)
    with pytest.raises(ListChanged):
        BulkQueueLedger(store).plan(LIST, 2, resend=True)


def test_a_resend_refuses_a_list_that_was_partly_queued_before_it_was_replaced():
    store = MemoryStore()
    first = BulkQueueLedger(store)
    first.plan(LIST, 2)
    first.sending(0, 3)
    first.queued(0, 3)  # part 2 of list A never went out
    other = Fingerprint.of("b" * 64, **PARAMETERS)
    second = BulkQueueLedger(store)
    second.plan(other, 1, resend=True)
    second.sending(0, 5)
    second.queued(0, 5)
    with pytest.raises(ListChanged, match="already queued 3 calls of this very list"):
        BulkQueueLedger(store).plan(LIST, 2, resend=True)


# --- The campaign of a collect_results list -----------------------------------------------------------

CAMPAIGN = CampaignRecord(campaign="c" * 32, rows=4, queued_timestamp=1_000, last_attempt_timestamp=1_600)


def test_the_campaign_is_written_with_the_first_intent_and_kept_by_later_tries():
    store = MemoryStore()
    ledger = BulkQueueLedger(store)
    ledger.plan(LIST, 2)
    ledger.set_campaign(CAMPAIGN)
    ledger.sending(0, 2)
    assert store.values[LEDGER_KEY]["campaign"] == CAMPAIGN.as_dict()
    ledger.queued(0, 2)
    # A retry (resuming part 2) and a clear read the same campaign back.
    again = BulkQueueLedger(store)
    assert again.campaign == CAMPAIGN
    again.plan(LIST, 2)
    again.sending(1, 2)
    again.queued(1, 2)
    assert BulkQueueLedger(store).campaign == CAMPAIGN
    assert BulkQueueLedger(store).answer(PARAMETERS) == 4


def test_a_ledger_without_a_campaign_has_none():
    store = MemoryStore()
    record_success(store)
    assert BulkQueueLedger(store).campaign is None
    assert "campaign" not in store.values[LEDGER_KEY]


@pytest.mark.parametrize(
    "campaign",
    [
        {"campaign": "", "rows": 1, "queued_timestamp": 1},
        {"campaign": "c" * 32, "rows": -1, "queued_timestamp": 1},
        7,
    ],
)
def test_a_campaign_that_is_not_one_blocks_sending(campaign):
    store = MemoryStore()
    record_success(store)
    store.values[LEDGER_KEY]["campaign"] = campaign
    with pytest.raises(GuardError, match="not this provider's ledger"):
        BulkQueueLedger(store)


# --- A tampered ledger is refused, never read as something sent or not (review r5) -------------------

OTHER = Fingerprint.of("b" * 64, **PARAMETERS)


def bulk_ledger_with_history() -> dict:
    store = MemoryStore()
    record_success(store)  # list A
    second = BulkQueueLedger(store)
    second.plan(OTHER, 2, resend=True)
    second.sending(0, 2)
    second.queued(0, 2)
    return json.loads(json.dumps(store.values[LEDGER_KEY]))


def call_ledger() -> dict:
    store = MemoryStore()
    ledger = QueueCallLedger(store, CALL)
    ledger.plan()
    ledger.sending()
    ledger.queued("c-1")
    return json.loads(json.dumps(store.values[QUEUE_CALL_KEY]))


def _use_bulk(store: MemoryStore) -> None:
    BulkQueueLedger(store).answer(PARAMETERS)
    BulkQueueLedger(store).plan(LIST, 1, resend=True)
    BulkQueueLedger(store).plan(OTHER, 2, retry_unknown=True)


def _use_call(store: MemoryStore) -> None:
    QueueCallLedger(store, CALL).plan(retry_unknown=True)


@pytest.mark.parametrize(
    ("tamper", "finding"),
    [
        (lambda value: value["parts"][0].update(calls_queued="abc"), "#4"),
        (lambda value: value["parts"][0].update(calls_queued=-2), "#4"),
        (lambda value: value["parts"][0].update(calls_queued=True), "#4"),
        (lambda value: value["history"][0].update(salt="zz"), "#5"),
        (lambda value: value.update(parts=[0]), "#7"),
        (lambda value: value.update(parts=[]), "#7"),
        (lambda value: value.update(parts=[False, None]), "#7"),
        (
            lambda value: value["parts"].__setitem__(1, {"state": "queued", "rows": "x", "calls_queued": 1}),
            "#7",
        ),
        (lambda value: value.update(version=float("inf")), "r8 #17"),
        (lambda value: value.update(version=-5), "r8 #21"),
        (lambda value: value.update(version="2"), "r8 #21"),
        (lambda value: value["history"][0].update(calls_queued=float("inf")), "r8 #18"),
        (lambda value: value["history"][0].update(calls_queued=-3), "r8 #19"),
        (lambda value: value["history"][0].update(calls_queued=2.7), "r8 #19"),
        (lambda value: value["history"][0].update(complete="false"), "r8 #20"),
    ],
)
def test_a_tampered_bulk_ledger_is_refused_as_not_this_providers(tamper, finding):
    value = bulk_ledger_with_history()
    tamper(value)
    store = MemoryStore()
    store.values[LEDGER_KEY] = value
    with pytest.raises(GuardError, match="not this provider's ledger"):
        _use_bulk(store)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda value: value.update(parts=[{"state": "queued"}]),  # no call_id (#6)
        lambda value: value.update(parts=[{"state": "queued", "call_id": 7}]),
        lambda value: value.update(parts=[{"state": "queued", "call_id": ""}]),
        lambda value: value.update(parts=[]),  # (#7)
        lambda value: value.update(parts=[0]),
        lambda value: value.update(parts=[None, {"state": "queued", "call_id": "c-2"}]),
    ],
)
def test_a_tampered_call_ledger_is_refused_as_not_this_providers(tamper):
    value = call_ledger()
    tamper(value)
    store = MemoryStore()
    store.values[QUEUE_CALL_KEY] = value
    with pytest.raises(GuardError, match="not this provider's ledger"):
        _use_call(store)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2**40) | st.text(max_size=6) | st.floats(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)
_BULK_PATHS = [
    ("version",),
    ("salt",),
    ("parts",),
    ("parts", 0),
    ("parts", 0, "state"),
    ("parts", 0, "rows"),
    ("parts", 0, "calls_queued"),
    ("parts", 1),
    ("history",),
    ("history", 0),
    ("history", 0, "salt"),
    ("history", 0, "calls_queued"),
    ("history", 0, "fingerprint"),
    ("history", 0, "complete"),
]
_CALL_PATHS = [
    ("parts",),
    ("parts", 0),
    ("parts", 0, "state"),
    ("parts", 0, "call_id"),
    ("salt",),
    ("version",),
]


def _set(value: dict, path: tuple, item: object) -> None:
    for step in path[:-1]:
        value = value[step]
    value[path[-1]] = item


@settings(max_examples=60, deadline=None)
@given(path=st.sampled_from(_BULK_PATHS), item=_JSON)
def test_any_tampered_bulk_ledger_is_read_or_refused_never_a_bare_error(path, item):
    value = bulk_ledger_with_history_cached()
    _set(value, path, item)
    store = MemoryStore()
    store.values[LEDGER_KEY] = value
    with contextlib.suppress(GuardError):
        _use_bulk(store)


@settings(max_examples=60, deadline=None)
@given(path=st.sampled_from(_CALL_PATHS), item=_JSON)
def test_any_tampered_call_ledger_is_read_or_refused_never_a_bare_error(path, item):
    value = json.loads(json.dumps(_CALL_LEDGER))
    _set(value, path, item)
    store = MemoryStore()
    store.values[QUEUE_CALL_KEY] = value
    with contextlib.suppress(GuardError):
        _use_call(store)


_BULK_LEDGER = bulk_ledger_with_history()
_CALL_LEDGER = call_ledger()


def bulk_ledger_with_history_cached() -> dict:
    return json.loads(json.dumps(_BULK_LEDGER))


# --- the suppression list: compared before the list is read ------------------------------------

SUPPRESSION = "c" * 64


def test_the_answer_without_the_list_refuses_a_changed_suppression_list():
    from airflow_provider_fuse.guard import SuppressionListChanged

    store = MemoryStore()
    record_success(store, LIST.with_suppression_list(SUPPRESSION))
    assert BulkQueueLedger(store).answer(PARAMETERS, suppression_list=SUPPRESSION) == 4
    with pytest.raises(
        SuppressionListChanged, match="the suppression list changed since 4 calls were queued"
    ):
        BulkQueueLedger(store).answer(PARAMETERS, suppression_list="d" * 64)
    assert BulkQueueLedger(store).answer(PARAMETERS, suppression_list="d" * 64, resend=True) is None


def test_a_ledger_that_recorded_no_suppression_list_refuses_one_given_now():
    from airflow_provider_fuse.guard import SuppressionListChanged

    store = MemoryStore()
    record_success(store)
    with pytest.raises(SuppressionListChanged):
        BulkQueueLedger(store).answer(PARAMETERS, suppression_list=SUPPRESSION)
    assert BulkQueueLedger(store).answer(PARAMETERS) == 4  # without one: as before


def test_the_suppression_list_is_stored_sealed_and_kept_across_a_resume():
    store = MemoryStore()
    fingerprint = LIST.with_suppression_list(SUPPRESSION)
    ledger = BulkQueueLedger(store)
    ledger.plan(fingerprint, 2)
    ledger.sending(0, 3)
    ledger.queued(0, 3)
    stored = store.values[LEDGER_KEY]["fingerprint"]
    assert set(stored) == {"content", "parameters", "suppression_list"}
    assert SUPPRESSION not in json.dumps(store.values[LEDGER_KEY])
    plan = BulkQueueLedger(store).plan(fingerprint, 2)
    assert (plan.start, plan.calls_queued) == (1, 3)
    assert store.values[LEDGER_KEY]["fingerprint"] == stored


def test_a_changed_suppression_list_on_a_list_not_queued_whole_names_itself():
    """Parts left to send (answer() leaves them to plan()): a changed suppression list is still told
    apart from another change, so that the refusal names the cancel operator, not allow_resend."""
    from airflow_provider_fuse.guard import SuppressionListChanged

    store = MemoryStore()
    ledger = BulkQueueLedger(store)
    ledger.plan(LIST.with_suppression_list(SUPPRESSION), 2)
    ledger.sending(0, 3)
    ledger.queued(0, 3)
    assert BulkQueueLedger(store).answer(PARAMETERS, suppression_list="d" * 64) is None
    # The plan's content covers the suppression list, so it differs too.
    changed = Fingerprint.of("f" * 64, **PARAMETERS).with_suppression_list("d" * 64)
    with pytest.raises(SuppressionListChanged, match="suppression list changed since 3 calls were queued"):
        BulkQueueLedger(store).plan(changed, 2)
    with pytest.raises(SuppressionListChanged):  # none given now
        BulkQueueLedger(store).plan(Fingerprint.of("f" * 64, **PARAMETERS), 2)
    other = Fingerprint.of("f" * 64, **{**PARAMETERS, "chunk_size": 99}).with_suppression_list("d" * 64)
    with pytest.raises(ListChanged) as caught:
        BulkQueueLedger(store).plan(other, 2)
    assert not isinstance(caught.value, SuppressionListChanged)
    assert BulkQueueLedger(store).plan(changed, 2, resend=True).start == 0
