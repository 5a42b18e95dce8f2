"""FuseHook's sync and async paths read the same answers (issue 18, items 16 and 17).

The peer is a raw socket server on loopback that answers every request with the bytes a test gives
it: no HTTP library serves a head with 150 fields, a 70 KB header line, or a ``103`` before the
``200``. Each case goes through the hook's real clients (requests/urllib3/http.client for the sync
path, httpx/h11 for the async one) and asserts the same result on both.

The rule (``airflow_provider_fuse.hooks.fuse``): interim 1xx answers before the final one are
skipped; a final answer whose head has more than ``MAX_ANSWER_HEADERS`` fields or
``MAX_ANSWER_HEAD_BYTES`` of them is an unknown outcome (``FuseInvalidResponseError``, no status),
never sent again.
"""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_fuse.exceptions import (
    FuseConnectionLostError,
    FuseError,
    FuseInvalidResponseError,
    nothing_queued,
)
from airflow_provider_fuse.hooks.fuse import (
    MAX_ANSWER_HEAD_BYTES,
    MAX_ANSWER_HEADERS,
    MAX_INTERIM_HEAD_BYTES,
    FuseHook,
)
from tests.test_safe_xml import laughs

DETAILS = json.dumps({"call_details": {"status": "completed", "attempts": "1"}}).encode()
QUEUED = b'{"calls_queued": 3}'


def answer(
    body: bytes = DETAILS,
    *,
    fields: list[tuple[str, str]] = (),  # type: ignore[assignment]
    status: bytes = b"200 OK",
    interim: bytes = b"",
    content_type: str = "application/json",
) -> bytes:
    """An HTTP/1.1 answer: ``interim`` answers, then the status line, the three fields every answer
    here has (Content-Type, Content-Length, Connection), ``fields``, and ``body``."""
    lines = [
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in fields),
    ]
    return (
        interim
        + b"HTTP/1.1 "
        + status
        + b"\r\n"
        + "".join(f"{line}\r\n" for line in lines).encode()
        + b"\r\n"
        + body
    )


def padding(count: int, value_length: int = 1) -> list[tuple[str, str]]:
    return [(f"X-Pad-{index}", "v" * value_length) for index in range(count)]


def head_bytes(fields: list[tuple[str, str]], body: bytes = DETAILS, reason: str = "OK") -> int:
    """The head's size as the rule counts it: the reason, and ``name: value`` CRLF per field."""
    every = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("Connection", "close"),
    ]
    return len(reason) + sum(len(name) + len(value) + 4 for name, value in [*every, *fields])


def make_hook(**kwargs: object) -> FuseHook:
    kwargs.setdefault("connect_retries", 0)
    return FuseHook(retry_backoff=0.0, **kwargs)  # type: ignore[arg-type]


def read_sync() -> object:
    """What the sync path makes of the peer's answer to a status read: the status, or the error."""
    try:
        return make_hook().get_call_status(77).status
    except FuseError as error:
        return error


def read_async() -> object:
    try:
        return asyncio.run(make_hook().aget_call_status(77)).status
    except FuseError as error:
        return error


def same(sync: object, asynchronous: object) -> object:
    """Assert the two paths' results are the same: the status read, or an error of the same class
    and status, with the same message but where that names the client's own exception types."""
    if isinstance(sync, FuseError) or isinstance(asynchronous, FuseError):
        assert type(sync) is type(asynchronous), (sync, asynchronous)
        assert getattr(sync, "status_code", None) == getattr(asynchronous, "status_code", None)
        if not isinstance(sync, FuseConnectionLostError):
            assert str(sync) == str(asynchronous)
    else:
        assert sync == asynchronous
    return sync


# --- Item 17: interim answers are skipped by both paths ------------------------------------------------

EARLY_HINTS = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
INTERIMS = {
    "103 Early Hints": EARLY_HINTS,
    "100 Continue": b"HTTP/1.1 100 Continue\r\n\r\n",
    "102, 103, 103": b"HTTP/1.1 102 Processing\r\n\r\n" + EARLY_HINTS + EARLY_HINTS,
    "a 103 with 150 fields": (
        b"HTTP/1.1 103 Early Hints\r\n" + b"".join(b"Link: </%d.css>\r\n" % n for n in range(150)) + b"\r\n"
    ),
    "103 then 100": EARLY_HINTS + b"HTTP/1.1 100 Continue\r\n\r\n",
}


@pytest.mark.parametrize("interim", INTERIMS.values(), ids=INTERIMS.keys())
def test_interim_answers_before_the_final_one_are_skipped_by_both_paths(peer, interim):
    peer.answer = answer(interim=interim)
    assert same(read_sync(), read_async()) == "completed"


def test_a_flood_of_interim_answers_is_skipped_by_both_paths_within_the_deadline(peer):
    # 20,000 interim answers (1.2 MB) before the 200: neither path keeps them, both read the 200.
    peer.answer = answer(interim=b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" * 20_000)
    started = time.monotonic()
    assert same(read_sync(), read_async()) == "completed"
    assert time.monotonic() - started < 30


def test_a_post_answered_103_then_200_is_read_not_an_unknown_outcome(peer, contacts_csv):
    peer.answer = answer(QUEUED, interim=EARLY_HINTS)
    assert make_hook().bulk_queue(12, 34, contacts_csv) == 3
    assert len(peer.request_lines) == 1


def test_a_post_answered_103_then_200_with_a_call_id_is_read(peer):
    peer.answer = answer(b'{"call_id": "c-1"}', interim=EARLY_HINTS)
    assert make_hook().queue_call(12, 34, "6175550100") == "c-1"


def test_an_interim_answer_and_then_nothing_is_a_lost_connection_on_both_paths(peer, contacts_csv):
    peer.answer = EARLY_HINTS
    error = same(read_sync(), read_async())
    assert isinstance(error, FuseConnectionLostError)
    with pytest.raises(FuseConnectionLostError) as caught:
        make_hook(connect_retries=2).bulk_queue(12, 34, contacts_csv)
    assert not nothing_queued(caught.value)
    assert len(peer.request_lines) == 3  # two reads, one POST: never sent again


def test_a_101_never_asked_for_is_a_broken_answer_on_both_paths(peer, contacts_csv):
    peer.answer = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    error = same(read_sync(), read_async())
    assert isinstance(error, FuseConnectionLostError)
    with pytest.raises(FuseConnectionLostError):
        make_hook(connect_retries=2).bulk_queue(12, 34, contacts_csv)
    assert len(peer.request_lines) == 3


def test_an_interim_head_beyond_what_both_clients_skip_is_refused_by_both(peer):
    # h11 checks its bound only while a head is incomplete, after each read of up to 64 KiB: a head
    # of 100 to ~164 KiB may pass it. Three times the bound cannot.
    big = (
        b"HTTP/1.1 103 Early Hints\r\n"
        + b"".join(b"Link: </%05d.css>\r\n" % n for n in range(16000))
        + b"\r\n"
    )
    assert len(big) > 3 * MAX_INTERIM_HEAD_BYTES
    peer.answer = answer(interim=big)
    error = same(read_sync(), read_async())
    assert isinstance(error, FuseInvalidResponseError)


# --- Item 17: a head beyond the bounds is refused by both paths, the same way ---------------------------

REFUSED_HEADS = {
    # What the sync client refused itself (http.client: 100 lines, 64 KiB each) while httpx read it:
    "one field too many": padding(MAX_ANSWER_HEADERS - 3 + 1),
    "150 fields": padding(150),
    "a 70 KB field": [("X-Long", "a" * 70_000)],
    # What both clients read, beyond the rule's byte bound:
    "80 KB in 40 fields": padding(40, 2_000),
    # What httpx's h11 refused itself (a head over 100 KiB), in lines http.client takes:
    "120 KB in 60 fields": padding(60, 2_000),
}


@pytest.mark.parametrize("fields", REFUSED_HEADS.values(), ids=REFUSED_HEADS.keys())
def test_a_head_beyond_the_bounds_is_the_same_unknown_outcome_on_both_paths(peer, fields, contacts_csv):
    peer.answer = answer(fields=fields)
    error = same(read_sync(), read_async())
    assert isinstance(error, FuseInvalidResponseError)
    assert error.status_code is None
    assert not nothing_queued(error)
    peer.answer = answer(QUEUED, fields=fields)
    with pytest.raises(FuseInvalidResponseError) as caught:
        make_hook(connect_retries=2).bulk_queue(12, 34, contacts_csv)
    assert str(caught.value) == str(error)
    assert len(peer.request_lines) == 3  # one POST: an unknown outcome is never sent again


def test_a_70_kb_reason_phrase_is_refused_by_both_paths(peer):
    peer.answer = answer(status=b"200 " + b"O" * 70_000)
    assert isinstance(same(read_sync(), read_async()), FuseInvalidResponseError)


def test_a_4xx_beyond_the_bounds_is_not_taken_for_a_rejection(peer, contacts_csv):
    # The sync client refuses the head before it says the status: nothing proves nothing was queued.
    peer.answer = answer(b'{"error": "bad"}', status=b"400 Bad Request", fields=padding(150))
    error = same(read_sync(), read_async())
    assert isinstance(error, FuseInvalidResponseError)
    assert not nothing_queued(error)


def test_heads_at_the_bounds_are_read_by_both_paths(peer):
    fields = padding(MAX_ANSWER_HEADERS - 3)
    peer.answer = answer(fields=fields)
    assert same(read_sync(), read_async()) == "completed"
    # A head of exactly MAX_ANSWER_HEAD_BYTES, in fields of a realistic size.
    fields = padding(20, 3_000)
    fields.append(("X-Last", "v" * (MAX_ANSWER_HEAD_BYTES - head_bytes(fields) - len("X-Last") - 4)))
    assert head_bytes(fields) == MAX_ANSWER_HEAD_BYTES
    peer.answer = answer(fields=fields)
    assert same(read_sync(), read_async()) == "completed"
    fields[-1] = ("X-Last", fields[-1][1] + "v")
    peer.answer = answer(fields=fields)
    assert isinstance(same(read_sync(), read_async()), FuseInvalidResponseError)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    count=st.integers(0, 130),
    length=st.sampled_from([1, 100, 900, 1_700, 3_000, 70_000]),
    interims=st.lists(st.sampled_from([b"100 Continue", b"102 Processing", b"103 Early Hints"]), max_size=3),
)
def test_both_paths_read_every_head_the_same_way(peer, count, length, interims):
    fields = padding(count, length)
    peer.answer = answer(
        fields=fields, interim=b"".join(b"HTTP/1.1 " + line + b"\r\n\r\n" for line in interims)
    )
    result = same(read_sync(), read_async())
    within = count + 3 <= MAX_ANSWER_HEADERS and head_bytes(fields) <= MAX_ANSWER_HEAD_BYTES
    assert result == "completed" if within else isinstance(result, FuseInvalidResponseError)


# --- Item 16: an XML answer with entities is refused on both paths, never expanded -------------------------


def test_an_entity_that_would_make_a_valid_status_is_refused_by_both_paths(peer):
    xml = (
        b'<?xml version="1.0"?><!DOCTYPE result [<!ENTITY s "completed">]>'
        b"<result><call_details><status>&s;</status></call_details></result>"
    )
    peer.answer = answer(xml, content_type="application/xml")
    error = same(read_sync(), read_async())
    assert isinstance(error, FuseInvalidResponseError)
    assert error.status_code == 200


def test_an_entity_that_would_make_a_valid_count_is_an_unknown_outcome_sent_once(peer, contacts_csv):
    xml = (
        b'<?xml version="1.0"?><!DOCTYPE result [<!ENTITY n "3">]>'
        b"<result><calls_queued>&n;</calls_queued></result>"
    )
    peer.answer = answer(xml, content_type="application/xml")
    with pytest.raises(FuseInvalidResponseError) as caught:
        make_hook(connect_retries=2).bulk_queue(12, 34, contacts_csv)
    assert not nothing_queued(caught.value)
    assert len(peer.request_lines) == 1


@pytest.mark.parametrize("path", ["sync", "async"])
def test_billion_laughs_is_refused_by_both_paths_without_being_expanded(peer, path):
    # Expanded (as before the fix), the 460-byte answer's status is 6 MB of text: ~20 MB traced.
    # Refused, the whole request allocates well under the bound: what is asserted is the refusal
    # and an order of magnitude, not a time.
    peer.answer = answer(laughs(6), content_type="application/xml")
    read = read_sync if path == "sync" else read_async
    read()  # warm: imports, the connection's first read, the CA bundle
    tracemalloc.start()
    try:
        error = read()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(error, FuseInvalidResponseError)
    assert error.status_code == 200
    assert "not Fuse's" in str(error)
    assert peak < 4_000_000, f"peak {peak} bytes"
