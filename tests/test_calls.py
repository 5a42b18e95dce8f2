"""A call's ``call_details`` in Fuse's words: the one list of its numbers."""

from __future__ import annotations

import dataclasses

from airflow_provider_fuse.calls import NUMBER_FIELDS, CallDetails


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
