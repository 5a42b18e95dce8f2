"""What a Fuse error means to Airflow wherever it is raised, and what :func:`redact` lets through."""

from __future__ import annotations

import inspect
import json
import os
import pickle
import re
import subprocess
import sys
import textwrap

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from airflow_provider_fuse import exceptions
from airflow_provider_fuse.exceptions import (
    REJECTION_BY_STATUS,
    FuseApiError,
    FuseCsvError,
    FuseError,
    FuseNotSentError,
    FuseOtherRejectionError,
    FuseRedirectError,
    FuseRejectedError,
    FuseRequestError,
    FuseServerError,
    FuseUnknownOutcomeError,
    FuseValidationError,
    nothing_queued,
    redact,
    rejection_class,
)

try:  # Airflow >= 3.2: the classes the Task SDK's task runner catches
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
except ImportError:  # Airflow 3.1
    from airflow.exceptions import AirflowException, AirflowFailException  # type: ignore[no-redef]

# --- each error's Airflow meaning -------------------------------------------------------------------

#: Every error class the module exports, and whether raising it in a task skips the task's retries.
FAILS_WITHOUT_RETRIES: dict[type[FuseError], bool] = {
    exceptions.FuseError: False,
    exceptions.FuseValidationError: True,
    exceptions.FuseCsvError: True,
    exceptions.FuseApiError: False,
    exceptions.FuseNotSentError: False,
    exceptions.FuseRequestError: True,
    exceptions.FuseRejectedError: False,
    exceptions.FuseBadRequestError: True,
    exceptions.FuseAuthenticationError: True,
    exceptions.FusePermissionError: True,
    exceptions.FuseNotFoundError: True,
    exceptions.FuseMethodNotAllowedError: True,
    exceptions.FuseDeletedError: True,
    exceptions.FuseOtherRejectionError: True,
    exceptions.FuseTooManyRequestsError: False,
    exceptions.FuseUnknownOutcomeError: True,
    exceptions.FuseServerError: True,
    exceptions.FuseInvalidResponseError: True,
    exceptions.FuseConnectionLostError: True,
    exceptions.FuseRedirectError: True,
}


def _exported_error_classes() -> set[type[BaseException]]:
    exported = (getattr(exceptions, name) for name in exceptions.__all__)
    return {obj for obj in exported if inspect.isclass(obj) and issubclass(obj, BaseException)}


def _example(cls: type[FuseError]) -> FuseError:
    """An instance of ``cls`` built the way the provider builds one."""
    if issubclass(cls, FuseCsvError):
        return cls("3 invalid rows", bad_rows=3, row_numbers=(2, 5, 9))
    if issubclass(cls, FuseValidationError):
        return cls("max_attempts", "must be between 1 and 10")
    if issubclass(cls, FuseApiError):
        return cls("The reattempt_wait parameter must be supplied.", 400)
    return cls("something failed")


def test_every_exported_error_has_a_stated_airflow_meaning():
    assert _exported_error_classes() == set(FAILS_WITHOUT_RETRIES)


@pytest.mark.parametrize("cls", FAILS_WITHOUT_RETRIES, ids=lambda cls: cls.__name__)
def test_every_error_is_an_airflow_exception(cls):
    assert isinstance(_example(cls), AirflowException)


@pytest.mark.parametrize(
    ("cls", "fails"), FAILS_WITHOUT_RETRIES.items(), ids=[cls.__name__ for cls in FAILS_WITHOUT_RETRIES]
)
def test_an_error_skips_the_tasks_retries_exactly_where_intended(cls, fails):
    assert isinstance(_example(cls), AirflowFailException) is fails


def test_except_fuse_rejected_error_still_catches_a_429():
    with pytest.raises(FuseRejectedError):
        raise rejection_class(429)("slow down", 429)


def test_invalid_input_is_still_a_value_error():
    assert isinstance(_example(FuseCsvError), ValueError)


@pytest.mark.parametrize("status_code", sorted(REJECTION_BY_STATUS))
def test_rejection_class_of_a_documented_status_is_its_own(status_code):
    assert rejection_class(status_code) is REJECTION_BY_STATUS[status_code]


@given(st.integers(400, 499).filter(lambda code: code not in REJECTION_BY_STATUS))
def test_rejection_class_of_an_undocumented_4xx_fails_the_task(status_code):
    assert rejection_class(status_code) is FuseOtherRejectionError


@given(st.integers(400, 499))
def test_every_rejection_but_429_skips_the_tasks_retries(status_code):
    error = rejection_class(status_code)("no", status_code)
    assert isinstance(error, FuseRejectedError)
    assert nothing_queued(error)
    assert isinstance(error, AirflowFailException) is (status_code != 429)


@given(st.integers(100, 599).filter(lambda code: not 400 <= code <= 499))
def test_rejection_class_refuses_a_status_that_is_not_4xx(status_code):
    with pytest.raises(ValueError, match=r"status_code"):
        rejection_class(status_code)


def test_a_request_that_could_not_be_made_queued_nothing_and_is_not_retried():
    error = FuseRequestError("invalid port in the connection's host")
    assert isinstance(error, FuseNotSentError)
    assert nothing_queued(error)
    assert error.retryable is False


def test_a_not_sent_error_is_retryable():
    assert FuseNotSentError("connection refused").retryable is True


def test_a_redirect_is_an_unknown_outcome():
    error = FuseRedirectError("303 See Other", 303)
    assert isinstance(error, FuseUnknownOutcomeError)
    assert not nothing_queued(error)


@pytest.mark.parametrize("cls", FAILS_WITHOUT_RETRIES, ids=lambda cls: cls.__name__)
def test_an_error_survives_pickle_with_its_attributes(cls):
    error = _example(cls)
    error.add_note("part 2 of 3")

    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is cls
    assert str(copy) == str(error)
    assert copy.args == error.args
    assert vars(copy) == vars(error)


@pytest.mark.parametrize("cls", FAILS_WITHOUT_RETRIES, ids=lambda cls: cls.__name__)
def test_an_error_survives_airflows_own_serialization_with_its_attributes(cls):
    # What Airflow does to an AirflowException stored in a deferred task's next_kwargs or an event.
    from airflow.serialization.serialized_objects import BaseSerialization

    error = _example(cls)

    copy = BaseSerialization.deserialize(BaseSerialization.serialize(error))

    assert type(copy) is cls
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_a_pickled_csv_error_keeps_its_row_numbers():
    copy = pickle.loads(pickle.dumps(FuseCsvError("bad rows", bad_rows=2, row_numbers=(4, 7))))
    assert (copy.parameter, copy.bad_rows, copy.row_numbers) == ("csv", 2, (4, 7))


def test_a_pickled_api_error_keeps_fuses_status_and_text():
    copy = pickle.loads(pickle.dumps(FuseServerError("database error", 500)))
    assert (copy.status_code, copy.error) == (500, "database error")


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ({"status": "completed", "attempts": "x1"}, "call_details.attempts"),
        (
            {"status": "completed", "events": [{"event": "queued", "timestamp": "x1"}]},
            "call_details.events[].timestamp",
        ),
    ],
)
def test_a_value_that_is_not_a_number_is_named_by_the_errors_field_through_pickle_and_serialize(
    details, field
):
    from airflow_provider_fuse.calls import CallDetails
    from airflow_provider_fuse.exceptions import FuseInvalidResponseError

    with pytest.raises(FuseInvalidResponseError) as caught:
        CallDetails.from_answer({"call_details": details})
    error = caught.value
    _, args, kwargs = error.serialize()
    for copy in (error, pickle.loads(pickle.dumps(error)), FuseInvalidResponseError(*args, **kwargs)):
        assert copy.field == field


# --- a real @task, run by Airflow ----------------------------------------------------------------------

#: How many tries a ``@task`` with ``retries=1`` gets when it raises each error.
TRIES_WITH_ONE_RETRY = {
    "FuseServerError": 1,
    "FuseConnectionLostError": 1,
    "FuseBadRequestError": 1,
    "FuseValidationError": 1,
    "FuseRequestError": 1,
    "FuseNotSentError": 2,
    "FuseTooManyRequestsError": 2,
}

_DAG_FILE = """
from __future__ import annotations

import json
import os
from datetime import timedelta

from airflow.sdk import dag, task

from airflow_provider_fuse import exceptions

NAMES = json.loads(os.environ["FUSE_TEST_ERRORS"])


def _raiser(name):
    @dag(dag_id=f"raises_{name}", schedule=None)
    def raises():
        @task(retries=1, retry_delay=timedelta(seconds=0))
        def hook_call():
            with open(os.environ["FUSE_TEST_TRIES"], "a") as tries:
                tries.write(name + "\\n")
            cls = getattr(exceptions, name)
            if issubclass(cls, exceptions.FuseValidationError):
                raise cls("max_attempts", "must be between 1 and 10")
            raise cls("Fuse said no", 503)

        hook_call()

    return raises()


DAGS = {name: _raiser(name) for name in NAMES}

if __name__ == "__main__":
    from airflow.utils.db import initdb

    initdb()
    for run_dag in DAGS.values():
        run_dag.test()
"""


@pytest.fixture(scope="module")
def tries_by_error(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """Run one DAG per error through ``dag.test()`` (SQLite, in a subprocess of its own)."""
    home = tmp_path_factory.mktemp("airflow-home")
    dags = home / "dags"
    dags.mkdir()
    (dags / "raises.py").write_text(textwrap.dedent(_DAG_FILE))
    tries = home / "tries"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_HOME"))
    }
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="True",
        FUSE_TEST_ERRORS=json.dumps(sorted(TRIES_WITH_ONE_RETRY)),
        FUSE_TEST_TRIES=str(tries),
    )
    result = subprocess.run(
        [sys.executable, str(dags / "raises.py")], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    names = tries.read_text().split()
    return {name: names.count(name) for name in TRIES_WITH_ONE_RETRY}


@pytest.mark.parametrize(("name", "expected"), TRIES_WITH_ONE_RETRY.items())
def test_a_task_that_raises_the_error_gets_the_tries_its_meaning_allows(tries_by_error, name, expected):
    assert tries_by_error[name] == expected


# --- redact: credentials ---------------------------------------------------------------------------

KEY = "dk-4f1c9e2a7b3d5e6f"
TOKEN = "b3BzQGV4YW1wbGUuY29tOmRrLTRmMWM5ZTJhN2IzZDVlNmY="


def test_every_given_secret_is_replaced():
    text = f'{{"echo": {{"key": "{KEY}", "authorization": "Basic {TOKEN}"}}}}'
    assert (
        redact(text, secrets=[KEY, f"Basic {TOKEN}", TOKEN])
        == '{"echo": {"key": "***", "authorization": "***"}}'
    )


def test_overlapping_secrets_leave_no_part_readable():
    assert redact("<abcdef>", secrets=["abcd", "cdef"]) == "<***>"


def test_a_secret_cut_by_the_limit_is_scrubbed_before_the_cut():
    assert redact("x" * 10 + KEY, limit=14, secrets=[KEY]) == "x" * 10 + "***"


def test_a_secret_broken_across_lines_is_still_found():
    assert redact(f"Authorization: Basic\n  {TOKEN}", secrets=[f"Basic {TOKEN}"]) == "Authorization: ***"


def test_empty_secrets_change_nothing():
    assert redact("nothing to hide", secrets=["", "  "]) == "nothing to hide"


# Characters of real credentials (a developer key, base64, "Basic <token>"), but none of the masks.
_SECRET_CHARS = st.characters(
    codec="ascii", categories=("L", "Nd", "P", "S", "Zs"), exclude_characters="*[]…"
)
_SECRETS = st.lists(st.text(_SECRET_CHARS, min_size=1, max_size=24).filter(str.strip), min_size=1, max_size=4)


def _pieces_outside_the_masks(scrubbed: str) -> list[str]:
    return re.split(r"\*\*\*|\[redacted\]", scrubbed)


@given(
    secrets=_SECRETS,
    around=st.lists(st.text(max_size=30), min_size=1, max_size=5),
    limit=st.integers(0, 300),
)
def test_redact_never_lets_a_given_secret_through(secrets, around, limit):
    # A secret that is part of "redacted" can't be told from the mask's own letters.
    assume(not any(" ".join(secret.split()) in "redacted" for secret in secrets))
    text = "".join(piece + secret for piece, secret in zip(around, secrets * len(around), strict=False))

    scrubbed = redact(text, limit, secrets=secrets)

    for secret in secrets:
        normalized = " ".join(secret.split())
        assert not any(normalized in piece for piece in _pieces_outside_the_masks(scrubbed))


def test_a_long_text_is_cut_to_the_limit_with_an_ellipsis():
    assert redact("abcdefghij", limit=4) == "abcd…"


# --- redact: phone numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "617 555 0169",
        "617-555-0169",
        "617‐555‐0169",  # U+2010 hyphen
        "617–555–0169",  # U+2013 en dash
        "617—555—0169",  # U+2014 em dash
        "617−555−0169",  # U+2212 minus sign
        "617.555.0169",
        "617/555/1234",
        "617_555_0169",
        "(617) 555-0169",
        "+1 617 555 0169",
        "+1 (617) 555-0169",
        "1-617-555-0169",
        "tel:+16175550169",
        "tel:+16175551234;ani=8009957586",
        "６１７５５５０１６９",  # fullwidth digits
        "٦١٧٥٥٥٠١٦٩",  # Arabic-Indic digits
        "617 - 555 - 0169",
        "617\u00a0555\u00a00169",  # no-break spaces
        "callee6175550169failed",
    ],
)
def test_a_phone_number_in_a_common_spelling_is_redacted(number):
    assert not re.search(r"\d", redact(f"destination {number} is invalid"))


@pytest.mark.parametrize(
    "text", ["row 12", "Fuse answered 400", "3 of 1000 rows are invalid", "max_attempts must be 1-10"]
)
def test_status_codes_counts_and_row_numbers_stay_readable(text):
    assert redact(text) == text


_ZEROS = [chr(zero) for zero in (0x30, 0x660, 0x6F0, 0x966, 0x9E6, 0xE50, 0xFF10)]
_SEPARATORS = [
    " ",
    ".",
    "-",
    "\u2010",
    "\u2011",
    "\u2012",
    "\u2013",
    "\u2014",
    "\u2015",
    "\u2212",
    "/",
    "_",
    "",
]
# Text around a number: no digit of any kind, and nothing that may belong to a number's spelling
# (nor begin an escape, "%36" or "&#54;", whose digits would be the number's).
_AROUND = st.text(
    st.characters(categories=("L", "Zs", "Po"), exclude_characters="".join(_SEPARATORS) + "+()%&"),
    max_size=40,
)


@st.composite
def phone_numbers(draw: st.DrawFn) -> str:
    """A 10-digit North American number, or 11 with its leading 1, spelled the way people write it."""
    digits = [draw(st.integers(0, 9)) for _ in range(10)]
    spelled = [chr(ord(draw(st.sampled_from(_ZEROS))) + digit) for digit in digits]
    area, exchange, line = "".join(spelled[:3]), "".join(spelled[3:6]), "".join(spelled[6:])
    groups = [f"({area})" if draw(st.booleans()) else area, exchange, line]
    if draw(st.booleans()):
        line_split = draw(st.integers(1, 3))  # "555 01 69" as well as "555 0169"
        groups[2:] = [line[:line_split], line[line_split:]]
    number = "".join(group + draw(st.sampled_from(_SEPARATORS)) for group in groups[:-1]) + groups[-1]
    prefix = draw(st.sampled_from(["", "1", "+1", "tel:+1", "tel:1"]))
    if prefix:
        number = prefix + draw(st.sampled_from(_SEPARATORS)) + number
    return number


@given(before=_AROUND, number=phone_numbers(), after=_AROUND)
def test_any_spelling_of_a_phone_number_is_redacted_and_the_text_around_it_survives(before, number, after):
    scrubbed = redact(before + number + after, limit=10_000)

    assert not re.search(r"\d", scrubbed)
    kept = "tel:" if number.startswith("tel:") else ""
    assert scrubbed == " ".join((before + kept + "[redacted]" + after).split())


@given(data=st.data(), secrets=_SECRETS, limit=st.integers(0, 300))
def test_redact_is_idempotent(data, secrets, limit):
    assume(not any(" ".join(secret.split()).lower() in "redacted" for secret in secrets))
    pieces = st.one_of(st.text(max_size=30), phone_numbers(), st.sampled_from(secrets))
    text = "".join(data.draw(st.lists(pieces, max_size=8)))

    once = redact(text, limit, secrets=secrets)

    assert redact(once, limit, secrets=secrets) == once


# --- Messages said once, ending once, with the next steps --------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(
            "FuseServerError('A database error occurred.', 500)", id="Fuse's text ends with a full stop"
        ),
        pytest.param(
            "FuseConnectionLostError('the request failed after it was sent (reset); "
            "Fuse may have queued some or all calls')",
            id="the hook's text says Fuse may have queued",
        ),
        pytest.param("FuseInvalidResponseError('not an answer of Fuse: <html>', 200)", id="not Fuse's"),
    ],
)
@pytest.mark.parametrize("kind", ["bulk", "call", "cancel"])
def test_an_unknown_outcome_fails_saying_each_thing_once_with_the_next_steps(error, kind):
    from airflow_provider_fuse import exceptions
    from airflow_provider_fuse.operators.task_failures import NEXT_STEPS, bulk_queue_failure, task_failure

    failure = eval(error, vars(exceptions))  # the parameters above
    if kind == "bulk":
        outcome = bulk_queue_failure(failure, "application 1, deployment 2", on_unknown_outcome="fail")
    else:
        outcome = task_failure(failure, unknown_outcome="Fuse may have queued the call. Check it in Fuse.")
    message = str(outcome)
    assert ".." not in message
    assert message.lower().count("may have queued") == 1
    assert message.endswith(NEXT_STEPS)
    assert "docs/safety.md" in message
    sentences = [part.strip() for part in message.replace(";", ".").split(". ") if part.strip()]
    assert len(sentences) == len(set(sentences)), message


def test_end_sentence_adds_one_full_stop_only_where_none_is():
    from airflow_provider_fuse.exceptions import end_sentence

    assert end_sentence("occurred.") == "occurred."
    assert end_sentence("occurred") == "occurred."
    assert end_sentence("really?") == "really?"
    assert end_sentence("cut…") == "cut…"


def test_a_401_says_which_fields_to_check_once_whatever_fuse_wrote():
    from airflow_provider_fuse.exceptions import FuseAuthenticationError

    for text in ("Authentication failed.", "Authentication failed", "inactive account!"):
        message = str(FuseAuthenticationError(text, 401).naming("fuse_default"))
        assert ".." not in message
        assert "!." not in message
        assert "'fuse_default'" in message
        assert message.count("Developer key") == 1
        assert "Account email" in message
