"""Answers are Fuse's or they are unknown outcomes (:mod:`airflow_provider_fuse.hooks.classify`): a
``calls_queued`` that is not a count, a call id that cannot be Fuse's, an empty answer, each read
end to end through the hook with its real status code."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_fuse.exceptions import (
    FuseError,
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


# --- No error quotes a body: Fuse's own error text is shown, anything else described ----------------

#: Personal data an answer may carry; none of it may reach an error.
PERSONAL = ["Zyxwv Qrstuv", "qq.person@zz.example", "221B Baker Street"]
_VALUES = st.one_of(st.sampled_from(PERSONAL), st.text(max_size=20).map(lambda text: text + PERSONAL[0]))
_OBJECTS = st.dictionaries(
    st.sampled_from(["note", "caller", "detail", "data", "status_text"]), _VALUES, min_size=1, max_size=4
)


def _json(value: object) -> bytes:
    import json

    return json.dumps(value, ensure_ascii=False).encode()


def _shows_no_personal_data(error: BaseException) -> None:
    message = str(error)
    assert not any(part in message for text in PERSONAL for part in text.split())


def _raised(call, *args, **kwargs) -> BaseException:
    with pytest.raises(FuseInvalidResponseError) as caught:
        call(*args, **kwargs)
    return caught.value


@given(
    body=st.one_of(
        _OBJECTS.map(lambda value: b"<html><body>" + _json(value) + b"</body></html>"),
        _VALUES.map(lambda text: text.encode("utf-8", errors="surrogatepass")),
        _OBJECTS.map(lambda value: b"[" + _json(value) + b"]"),
    ),
    status=st.sampled_from([200, 201, 202]),
)
def test_a_success_body_that_is_not_fuses_is_described_not_quoted(body, status):
    from airflow_provider_fuse.hooks.classify import classify_answer

    error = _raised(classify_answer, status, body)
    _shows_no_personal_data(error)
    assert f"{len(body)} bytes" in str(error)


@given(body=_OBJECTS.map(_json), status=st.sampled_from([400, 404, 409, 500, 503]))
def test_a_failure_answer_without_fuses_error_text_is_described_not_quoted(body, status):
    from airflow_provider_fuse.hooks.classify import classify_answer

    with pytest.raises(FuseError) as caught:
        classify_answer(status, body)
    _shows_no_personal_data(caught.value)
    assert "no Fuse error text in a JSON object with keys" in str(caught.value)


@pytest.mark.parametrize("name", ["error", "message"])
def test_fuses_own_error_text_is_shown_redacted(name):
    from airflow_provider_fuse.hooks.classify import classify_answer

    with pytest.raises(FuseError) as caught:
        classify_answer(400, _json({name: "Invalid destination 617-555-1234 for app 12."}))
    assert str(caught.value) == "Fuse API answered 400: Invalid destination [redacted] for app 12."


@given(answer=_OBJECTS)
def test_a_count_or_call_id_answer_that_is_not_fuses_is_described_not_quoted(answer):
    from airflow_provider_fuse.hooks.classify import calls_queued, queued_call_id

    _shows_no_personal_data(_raised(calls_queued, answer, 200, ()))
    _shows_no_personal_data(_raised(calls_queued, {"calls_queued": answer}, 200, ()))
    _shows_no_personal_data(_raised(calls_queued, {"calls_queued": PERSONAL[1]}, 200, ()))
    _shows_no_personal_data(_raised(queued_call_id, answer, {}, 200, ()))


def test_the_description_names_plain_keys_and_the_size_only():
    from airflow_provider_fuse.hooks.classify import classify_answer

    body = _json({"error": {"who": PERSONAL[0]}, "message": [PERSONAL[1]], "a key": 1, "dk_4f1c9e": 2})
    with pytest.raises(FuseError) as caught:
        classify_answer(500, body)
    assert str(caught.value) == (
        "Fuse API answered 500: no Fuse error text in a JSON object with keys error, message, "
        f"dk_4f1c9e and 1 other key ({len(body)} bytes)"
    )
    with pytest.raises(FuseError) as caught:
        classify_answer(500, body, secrets=["dk_4f1c9e"])
    assert "dk_4f1c9e" not in str(caught.value)
