"""One destination grammar (docs/destinations.md), and every reader of it gives the same verdict.

The readers: :data:`DESTINATION_FORMAT` and its keyed twin; the preflight on a one-row CSV, with
the row as it is and quoted; :func:`to_phone_number`; and the sandbox's independent
:func:`parse_destination`. The preflight's reading of "the same number" is checked against
:func:`destination_number` too.
Destinations are generated from the grammar's table, and near-misses from those: Unicode digits, a
digit too many or too few, 11 digits not starting with 1, stray separators, bad options.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_fuse.destinations import (
    DESTINATION_FORMAT,
    KEYED_DESTINATION_FORMAT,
    destination_number,
)
from airflow_provider_fuse.exceptions import FuseCsvError, FuseValidationError
from airflow_provider_fuse.fields import to_phone_number
from airflow_provider_fuse.preflight import preflight_csv
from airflow_provider_fuse.sandbox.validation import parse_destination

ASCII_DIGITS = "0123456789"
#: The zero of scripts whose digits ``\d`` (and int()) accept: Arabic-Indic, Extended Arabic-Indic,
#: Devanagari, Bengali, NKo, fullwidth, mathematical bold.
UNICODE_ZEROS = [0x0660, 0x06F0, 0x0966, 0x09E6, 0x07C0, 0xFF10, 0x1D7CE]


def digits(least: int, most: int | None = None) -> st.SearchStrategy[str]:
    return st.text(ASCII_DIGITS, min_size=least, max_size=least if most is None else most)


# --- The grammar's table, row by row ---------------------------------------------------------------

NANP_NUMBERS = st.one_of(
    digits(10),  # 6175551234
    digits(10).map("1".__add__),  # 16175551234
    digits(10).map("tel:+1".__add__),  # tel:+16175551234
)
NUMBERS = st.one_of(
    NANP_NUMBERS,
    st.builds("tel:+{}{}".format, st.sampled_from("123456789"), digits(7, 14)),  # tel:+442071838750
)
ANI = st.builds(";ani={}{}".format, st.sampled_from(["", "+"]), digits(10, 15))
POSTD = st.text(ASCII_DIGITS + "*#", min_size=1, max_size=8).map(";postd=".__add__)
OPTIONS = st.one_of(
    st.just(""),
    ANI,
    POSTD,
    st.tuples(ANI, POSTD).map("".join),
    st.tuples(POSTD, ANI).map("".join),
)
VALID = st.builds(str.__add__, NUMBERS, OPTIONS)


@st.composite
def with_a_unicode_digit(draw: st.DrawFn) -> str:
    value = draw(VALID)
    positions = [index for index, char in enumerate(value) if char in ASCII_DIGITS]
    index = draw(st.sampled_from(positions))
    digit = chr(draw(st.sampled_from(UNICODE_ZEROS)) + int(value[index]))
    return value[:index] + digit + value[index + 1 :]


@st.composite
def edited(draw: st.DrawFn) -> str:
    """A valid destination with one character dropped or one inserted (a digit or a separator)."""
    value = draw(VALID)
    index = draw(st.integers(0, len(value)))
    if draw(st.booleans()) and index < len(value):
        return value[:index] + value[index + 1 :]
    extra = draw(
        st.sampled_from([*ASCII_DIGITS, " ", "-", ".", "(", ")", "/", "+", ";", "=", ",", ":", "\t"])
    )
    return value[:index] + extra + value[index:]


ELEVEN_NOT_STARTING_WITH_1 = st.builds(str.__add__, st.sampled_from("023456789"), digits(10))
BAD_NUMBERS = st.one_of(
    ELEVEN_NOT_STARTING_WITH_1,
    digits(0, 9),
    digits(12, 16),
    digits(10).map("tel:1".__add__),
    digits(10).map("+1".__add__),
    digits(10).map("TEL:+1".__add__),
    digits(7, 14).map("tel:+0".__add__),  # E.164 never starts with 0
    digits(15).map("tel:+1".__add__),  # 16 digits
    digits(6).map("tel:+1".__add__),  # 7 digits
)
BAD_OPTIONS = st.builds(
    str.__add__,
    NUMBERS,
    st.one_of(
        st.sampled_from([";", ";ani=", ";ani", ";postd=", ";postd=a", ";foo=1", ";ani=++18009957586"]),
        digits(0, 9).map(";ani=".__add__),
        digits(16, 20).map(";ani=".__add__),
        digits(10).map(";ANI=".__add__),
        digits(10).map(";ani:".__add__),
        st.tuples(ANI, ANI).map("".join),
        st.tuples(POSTD, POSTD).map("".join),
        st.tuples(ANI, POSTD, ANI).map("".join),
    ),
)
NEAR_MISSES = st.one_of(
    with_a_unicode_digit(),
    edited(),
    BAD_NUMBERS,
    BAD_OPTIONS,
    st.builds(str.__add__, BAD_NUMBERS, OPTIONS),
    st.text(max_size=30),
)


# --- Every reader's verdict ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("destinations")


def preflight_accepts(directory: Path, row: str) -> bool:
    path = directory / "contacts.csv"
    path.write_bytes(("destination\n" + row + "\n").encode("utf-8", "surrogatepass"))
    try:
        return preflight_csv(path).rows == 1
    except FuseCsvError:
        return False


def quoted(value: str) -> str:
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="").writerow([value])
    return out.getvalue()


def verdicts(directory: Path, value: str) -> dict[str, bool]:
    """Every reader's answer to "is ``value`` a destination?" (to_phone_number's after its strip)."""
    found = {
        "DESTINATION_FORMAT": DESTINATION_FORMAT.fullmatch(value) is not None,
        "KEYED_DESTINATION_FORMAT": KEYED_DESTINATION_FORMAT.fullmatch(value) is not None,
        "sandbox parse_destination": parse_destination(value) is not None,
        "preflight, the row quoted": preflight_accepts(directory, quoted(value)),
    }
    if not any(char in value for char in ',"\r\n'):  # else unquoted it would not be one field
        found["preflight, the row as it is"] = preflight_accepts(directory, value)
    if value == value.strip():
        try:
            found["to_phone_number"] = to_phone_number(value) == value
        except FuseValidationError:
            found["to_phone_number"] = False
    return found


def assert_one_verdict(directory: Path, value: str) -> bool:
    found = verdicts(directory, value)
    assert len(set(found.values())) == 1, (value, found)
    verdict = found["DESTINATION_FORMAT"]
    if verdict:
        assert sandbox_number(value) == destination_number(value)
    return verdict


def sandbox_number(value: str) -> int:
    """The E.164 number of the sandbox's reading of a destination."""
    number = parse_destination(value)
    assert number is not None
    e164 = number.removeprefix("tel:+")
    return int("1" + e164 if len(number) == 10 else e164)


# --- The properties --------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(value=VALID)
def test_every_destination_of_the_table_is_accepted_by_every_reader(csv_dir, value):
    assert assert_one_verdict(csv_dir, value)


@settings(max_examples=400, deadline=None)
@given(value=NEAR_MISSES)
def test_every_reader_gives_the_same_verdict_on_near_misses(csv_dir, value):
    assert_one_verdict(csv_dir, value)


@settings(max_examples=150, deadline=None)
@given(value=with_a_unicode_digit())
def test_a_unicode_digit_is_refused_by_every_reader(csv_dir, value):
    assert not assert_one_verdict(csv_dir, value)


@settings(max_examples=100, deadline=None)
@given(value=st.builds(str.__add__, ELEVEN_NOT_STARTING_WITH_1, OPTIONS))
def test_eleven_digits_not_starting_with_1_are_refused_by_every_reader(csv_dir, value):
    assert not assert_one_verdict(csv_dir, value)


def duplicate_rows(directory: Path, *destinations: str) -> int:
    path = directory / "contacts.csv"
    path.write_text("destination\n" + "\n".join(destinations) + "\n", encoding="utf-8")
    return preflight_csv(path).duplicate_rows


@settings(max_examples=200, deadline=None)
@given(first=VALID, second=VALID)
def test_the_preflight_counts_a_repeat_exactly_when_both_dial_the_same_number(csv_dir, first, second):
    same = destination_number(first) == destination_number(second)
    assert duplicate_rows(csv_dir, first, second) == int(same)


@settings(max_examples=150, deadline=None)
@given(
    number=digits(10),
    first_options=OPTIONS,
    second_options=OPTIONS,
    forms=st.tuples(*[st.integers(0, 2)] * 2),
)
def test_every_form_of_one_north_american_number_is_a_repeat(
    csv_dir, number, first_options, second_options, forms
):
    spelled = [number, "1" + number, "tel:+1" + number]
    first, second = (spelled[form] for form in forms)
    assert duplicate_rows(csv_dir, first + first_options, second + second_options) == 1


@given(value=st.one_of(VALID, NEAR_MISSES), padding=st.sampled_from([" ", "\t", "\n", " \r\n"]))
def test_to_phone_number_strips_surrounding_whitespace_and_nothing_else(value, padding):
    try:
        accepted = to_phone_number(padding + value + padding)
    except FuseValidationError:
        accepted = None
    stripped = value.strip()
    assert accepted == (stripped if parse_destination(stripped) is not None else None)


@pytest.mark.parametrize(
    ("destination", "number"),
    [
        ("6175551234", 16175551234),
        ("16175551234;ani=8009957586", 16175551234),
        ("tel:+16175551234;postd=2", 16175551234),
        ("tel:+442071838750", 442071838750),
    ],
)
def test_repeats_are_the_same_e164_number(destination, number):
    assert destination_number(destination) == number


@pytest.mark.parametrize("destination", ["26175551234", "\u0666175551234", "6175551234 ", "617555123"])
def test_destination_number_refuses_what_is_not_a_destination(destination):
    with pytest.raises(ValueError, match="not a destination") as caught:
        destination_number(destination)
    assert destination not in str(caught.value)


def keyed_reading(destination: str) -> int | None:
    """What the keyed grammar alone reads from ``destination`` (``None``: not a destination)."""
    match = KEYED_DESTINATION_FORMAT.fullmatch(destination)
    if match is None:
        return None
    nanp, other = match.groups()
    return int("1" + nanp) if nanp is not None else int(other)


@given(value=st.one_of(VALID, NEAR_MISSES, digits(8, 13), with_a_unicode_digit(), st.text(max_size=14)))
def test_destination_number_is_the_keyed_grammar_s_reading(value):
    # destination_number reads the plain North American forms without the regex: the same answer.
    try:
        number: int | None = destination_number(value)
    except ValueError:
        number = None
    assert number == keyed_reading(value)


# --- The page that documents the grammar ---------------------------------------------------------

DOC = Path(__file__).resolve().parents[1] / "docs" / "destinations.md"


def doc_section(heading: str) -> str:
    return DOC.read_text(encoding="utf-8").split(heading, 1)[1].split("\n## ", 1)[0]


def test_the_documented_forms_are_accepted_by_every_reader(csv_dir):
    examples = [
        example
        for line in doc_section("## The number").splitlines()
        if line.startswith("| ") and not line.startswith("| form")
        for example in re.findall(r"`([^`]+)`", line.split("|")[2])
    ]
    assert len(examples) == 4
    for example in examples:
        assert assert_one_verdict(csv_dir, example), example


def test_the_documented_refusals_are_refused_by_every_reader(csv_dir):
    listed = doc_section("## Everywhere").split("Refused, for example:", 1)[1]
    examples = re.findall(r"`([^`]+)`", listed)
    assert len(examples) == 9
    for example in examples:
        assert not assert_one_verdict(csv_dir, example), example
