"""A call's ``call_details`` in Fuse's words: the one list of its numbers."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_fuse.calls import NUMBER_FIELDS, CallDetails
from airflow_provider_fuse.exceptions import FuseInvalidResponseError


def test_the_number_fields_are_the_int_fields_of_call_details_in_order():
    ints = [field.name for field in dataclasses.fields(CallDetails) if field.type == "int | None"]
    assert tuple(ints) == NUMBER_FIELDS


def test_every_number_field_is_read_from_text_and_given_back_by_name():
    answer = {
        "call_details": {"status": "completed", **{name: f"'{n}'" for n, name in enumerate(NUMBER_FIELDS)}}
    }
    call = CallDetails.from_answer(answer)
    shown = call.as_dict()
    assert [shown[name] for name in NUMBER_FIELDS] == list(range(len(NUMBER_FIELDS)))


@pytest.mark.parametrize(
    "number",
    [
        "\u0666\u0661\u0667\u0665\u0665\u0665\u0661\u0662\u0663\u0664",
        "\uff16\uff11\uff17\uff15\uff15\uff15\uff11\uff12\uff13\uff14",
    ],
)
def test_an_answer_without_call_details_shows_no_number_in_any_script(number):
    # JSON's \\uXXXX escapes once hid other scripts' digits from the scrubbing: the error showed them.
    with pytest.raises(FuseInvalidResponseError) as caught:
        CallDetails.from_answer({"caller": number, "note": "café"}, 200, secrets=["kéy-sécret"])
    message = str(caught.value)
    assert number not in message
    assert "\\u" not in message
    assert message.endswith("a success answer without call_details: an object with keys caller, note")


def test_an_answer_without_call_details_is_described_not_quoted():
    # An answer that is not a call's quotes nothing of itself: it may name people (review r5 #30).
    with pytest.raises(FuseInvalidResponseError) as caught:
        CallDetails.from_answer({"error": "bad for John Smith john@x.com"}, "c")
    assert str(caught.value) == (
        "Fuse API answered 200: a success answer without call_details: an object with keys error"
    )


@pytest.mark.parametrize("value", ["John Smith", "john@x.com", {"name": "John Smith"}, ["John"]])
def test_a_number_field_that_is_not_a_number_is_described_not_quoted(value):
    with pytest.raises(FuseInvalidResponseError) as caught:
        CallDetails.from_answer({"call_details": {"status": "queued", "attempts": value}}, "c")
    assert "John" not in str(caught.value)
    assert "john@" not in str(caught.value)
    assert caught.value.field == "call_details.attempts"


def test_an_answer_without_call_details_hides_a_non_ascii_key():
    with pytest.raises(FuseInvalidResponseError) as caught:
        CallDetails.from_answer({"echo": "kéy-sécret-ключ"}, 200, secrets=["kéy-sécret-ключ"])
    assert "ключ" not in str(caught.value)
    assert "\\u" not in str(caught.value)


# --- What reaches XCom and the messages (review r5 #32-#34) -----------------------------------------


def test_a_bad_event_timestamp_is_named_by_its_path_in_the_message_too():
    answer = {"call_details": {"status": "queued", "events": [{"event": "queued", "timestamp": "x"}]}}
    with pytest.raises(FuseInvalidResponseError) as caught:
        CallDetails.from_answer(answer, "c")
    assert caught.value.field == "call_details.events[].timestamp"
    assert "call_details.events[].timestamp is not a number" in str(caught.value)


@given(
    number=st.from_regex(r"\+?1?[ (.-]?[0-9]{3}[) .-]?[0-9]{3}[ .-]?[0-9]{4}", fullmatch=True),
    before=st.sampled_from(["", "called ", "no answer from "]),
)
def test_a_number_in_a_status_or_an_event_never_reaches_xcom(number, before):
    answer = {
        "call_details": {
            "status": before + number,
            "events": [before + number, {"event": before + number, "timestamp": 1_764_000_000}],
        }
    }
    shown = json.dumps(CallDetails.from_answer(answer, "c").to_xcom(), ensure_ascii=False)
    assert not re.search(r"[0-9]{4}", shown.replace("1764000000", ""))


def test_ordinary_statuses_and_events_are_kept_in_fuses_words():
    answer = {
        "call_details": {"status": "no_answer", "events": ["queued", {"event": "dialing", "timestamp": 5}]}
    }
    call = CallDetails.from_answer(answer, "c")
    assert call.status.value == "no_answer"
    assert [event.event for event in call.events] == ["queued", "dialing"]


@pytest.mark.parametrize("text", ["\u0663", "\uff13", "1_000", "\u0663\u0665", "3e2"])
def test_a_number_in_other_than_ascii_digits_is_refused(text):
    with pytest.raises(FuseInvalidResponseError, match="call_details.attempts is not a number"):
        CallDetails.from_answer({"call_details": {"status": "queued", "attempts": text}}, "c")


@pytest.mark.parametrize("name", ["attempts", "max_attempts", "reattempt_wait", "duration"])
@pytest.mark.parametrize("value", [-5, "-5", "'-1'", -0.5])
def test_a_negative_count_is_refused(name, value):
    with pytest.raises(FuseInvalidResponseError, match=f"call_details.{name} is a negative count") as caught:
        CallDetails.from_answer({"call_details": {"status": "queued", name: value}}, "c")
    assert caught.value.field == f"call_details.{name}"


@pytest.mark.parametrize(
    ("value", "expected"), [("3", 3), ("'35'", 35), (" 2 ", 2), ("1.0", 1), (0, 0), ("+4", 4)]
)
def test_counts_as_fuse_writes_them_are_read(value, expected):
    call = CallDetails.from_answer({"call_details": {"status": "queued", "attempts": value}}, "c")
    assert call.attempts == expected
