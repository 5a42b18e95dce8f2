"""A call's ``call_details`` in Fuse's words: the one list of its numbers."""

from __future__ import annotations

import dataclasses

import pytest

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
