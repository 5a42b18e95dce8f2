"""Answers are Fuse's or they are unknown outcomes (:mod:`airflow_provider_fuse.hooks.classify`): a
``calls_queued`` that is not a count, a call id that cannot be Fuse's, an empty answer, each read
end to end through the hook with its real status code."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_fuse.exceptions import (
    FuseInvalidResponseError,
    nothing_queued,
)
from tests.helpers import DEVELOPER_KEY
from tests.hooks.helpers import BULK_URL, QUEUE_URL, STATUS_URL, TOKEN, make_hook

VALID_COUNTS = st.integers(min_value=0, max_value=2**31 - 1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(count=VALID_COUNTS, as_text=st.booleans())
def test_a_count_from_0_to_2_31_is_taken_as_an_int_or_ascii_digits(
    fuse_connection, requests_mock, contacts_csv, count, as_text
):
    requests_mock.post(BULK_URL, json={"calls_queued": str(count) if as_text else count})
    assert make_hook().bulk_queue(12, 34, contacts_csv) == count


NOT_COUNTS = st.one_of(
    st.integers(max_value=-1),
    st.integers(min_value=2**31),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text().filter(lambda text: not (text.strip(" \t\r\n").isascii() and text.strip(" \t\r\n").isdigit())),
    st.lists(st.integers(), max_size=2),
    st.none(),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=NOT_COUNTS)
def test_anything_else_as_calls_queued_is_an_unknown_outcome(
    fuse_connection, requests_mock, contacts_csv, value
):
    requests_mock.post(BULK_URL, status_code=201, json={"calls_queued": value})
    with pytest.raises(FuseInvalidResponseError) as caught:
        make_hook().bulk_queue(12, 34, contacts_csv)
    assert caught.value.status_code == 201
    assert not nothing_queued(caught.value)


@pytest.mark.parametrize("text", ["-5", "1_000", "١٢", "10" * 15, "4294967296", "+3", "3.0"])
def test_the_counts_int_would_take_are_refused(fuse_connection, requests_mock, contacts_csv, text):
    requests_mock.post(BULK_URL, json={"calls_queued": text})
    with pytest.raises(FuseInvalidResponseError):
        make_hook().bulk_queue(12, 34, contacts_csv)


def test_an_empty_202_reports_its_real_status(fuse_connection, requests_mock, contacts_csv):
    requests_mock.post(BULK_URL, status_code=202, text="")
    with pytest.raises(FuseInvalidResponseError, match="answered 202") as caught:
        make_hook().bulk_queue(12, 34, contacts_csv)
    assert caught.value.status_code == 202


def test_a_queue_answer_without_a_call_id_reports_its_real_status(fuse_connection, requests_mock):
    requests_mock.post(QUEUE_URL, status_code=201, json={})
    with pytest.raises(FuseInvalidResponseError, match="answered 201"):
        make_hook().queue_call(12, 34, "6175551234")


@pytest.mark.parametrize("call_id", ["x" * 300, "a b", "id\n2", DEVELOPER_KEY, f"c-{TOKEN}"])
def test_a_call_id_that_cannot_be_fuses_is_an_unknown_outcome(fuse_connection, requests_mock, call_id):
    requests_mock.post(QUEUE_URL, json={"call_id": call_id})
    with pytest.raises(FuseInvalidResponseError) as caught:
        make_hook().queue_call(12, 34, "6175551234")
    assert DEVELOPER_KEY not in str(caught.value)
    assert not nothing_queued(caught.value)


def test_an_infinite_number_in_call_details_is_an_invalid_answer(fuse_connection, requests_mock):
    requests_mock.get(STATUS_URL, text='{"call_details": {"status": "queued", "attempts": 1e999}}')
    with pytest.raises(FuseInvalidResponseError):
        make_hook(connect_retries=0).get_call_status(77)
