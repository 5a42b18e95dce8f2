""":func:`redact`'s one rule: however a number of 7+ digits is spelled or encoded, its digits do not
come out in order; what is provably not a phone number (a date, a count, an id) comes out as it was."""

from __future__ import annotations

import html
import re
import sys
import unicodedata
import uuid
from datetime import timedelta, timezone
from urllib.parse import quote, unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_fuse.masking import redact

# The zero of every script's decimal digits (ASCII, Arabic-Indic, Devanagari, Thai, fullwidth, ...).
_ZEROS = [
    code
    for code in range(sys.maxunicode + 1)
    if unicodedata.category(chr(code)) == "Nd" and unicodedata.decimal(chr(code)) == 0
]
_CIRCLED = "⓪①②③④⑤⑥⑦⑧⑨"
_SUPERSCRIPT = "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"
# Characters that draw nothing: combining marks, format characters, variation selectors, tags,
# Hangul fillers.
_INVISIBLE = [
    "\u0301",
    "\u034f",
    "\u180b",
    "\U000e0020",
    "\u115f",
    "\u3164",
    "\u200b",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\u00ad",
    "\ufe0f",
    "\u202e",
]
# What may stand between digits: every ASCII punctuation mark, spaces, Unicode dots, dashes and
# slashes, fullwidth punctuation, and any of them percent-encoded.
_SEPARATORS = [
    *"!\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~ ",
    "%",
    "\t",
    "\u00a0",
    "\u2009",
    "\u3000",
    *"・･․‧˗⸺﹒⁄∕‐–—−·、。",
    *"，－．／：；＿（）",
    "%20",
    "%2D",
    "%2C",
    "%2B",
    "%C2%A0",
    "%E3%83%BB",
    "%2520",
]
# One letter between two digits (a typo, or a letter written for a digit); not a hex letter first,
# so the simplest example is not read as part of a hex id.
_LETTERS = ["n", "O", "l", "x", "Z", "é", "ж", "a", "T"]


def _spellings(digit: int, script: int) -> list[str]:
    ascii_digit = str(digit)
    fullwidth = chr(0xFF10 + digit)
    return [
        ascii_digit,
        chr(_ZEROS[script] + digit),
        _CIRCLED[digit],
        _SUPERSCRIPT[digit],
        fullwidth,
        chr(0x1D7CE + digit),  # mathematical bold
        f"%{ord(ascii_digit):02X}",
        f"%{ord(ascii_digit):02x}",
        f"%25{ord(ascii_digit):02X}",  # encoded twice
        quote(fullwidth),  # UTF-8, percent-encoded
        f"%u{ord(fullwidth):04X}",
        f"&#{ord(ascii_digit)};",
        f"&#x{ord(fullwidth):x};",
        f"\\u{ord(fullwidth):04x}",
    ]


@st.composite
def spelled_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """A number of 10 to 15 digits, each digit spelled its own way (any script, circled, encoded),
    with invisible characters after any digit, and between any two digits nothing, 1 to 6
    separators, or one letter: (its ASCII digits, its spelling)."""
    digits = draw(st.text("0123456789", min_size=10, max_size=15))
    lettered = draw(st.none() | st.integers(1, len(digits) - 1))  # the one gap that is a letter
    spelled = draw(st.sampled_from(["", "+", "tel:+", "(", "+("]))
    for index, digit in enumerate(digits):
        if index:
            if index == lettered:
                spelled += draw(st.sampled_from(_LETTERS))
            else:
                spelled += "".join(draw(st.lists(st.sampled_from(_SEPARATORS), max_size=6)))
        spelled += draw(st.sampled_from(_spellings(int(digit), draw(st.integers(0, len(_ZEROS) - 1)))))
        spelled += "".join(draw(st.lists(st.sampled_from(_INVISIBLE), max_size=2)))
    return digits, spelled


def _readable_digits(text: str) -> str:
    """The digits a reader recovers from ``text``: escapes decoded, compatibility forms read as
    digits, every other character deleted."""
    text = re.sub(r"\\u([0-9A-Fa-f]{4})", lambda match: chr(int(match.group(1), 16)), text)
    text = re.sub(r"%[uU]([0-9A-Fa-f]{4})", lambda match: chr(int(match.group(1), 16)), text)
    for _ in range(3):
        text = html.unescape(unquote(text))
    return "".join(
        str(unicodedata.digit(char))
        for char in unicodedata.normalize("NFKC", text)
        if unicodedata.digit(char, None) is not None
    )


@given(before=st.text(max_size=30), number=spelled_numbers(), after=st.text(max_size=30))
def test_no_seven_digits_of_a_number_are_readable_however_it_is_spelled(before, number, after):
    digits, spelled = number

    scrubbed = redact(before + spelled + after, limit=10_000)

    for left in (_readable_digits(scrubbed), "".join(char for char in scrubbed if char.isdigit())):
        assert not any(digits[start : start + 7] in left for start in range(len(digits) - 6))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("%36%31%37%35%35%35%31%32%33%34", id="percent-encoded digits"),
        pytest.param("%2536%2531%2537%2535%2535%2535%2531%2532%2533%2534", id="encoded twice"),
        pytest.param("&#54;&#49;&#55;&#53;&#53;&#53;&#49;&#50;&#51;&#52;", id="HTML references"),
        pytest.param("617%555%1234", id="a percent sign that is no escape"),
        *(pytest.param(f"617{sep}555{sep}1234", id=f"joined by {sep}") for sep in '=#&<>[]{}"`!^'),
        *(pytest.param(f"617{sep}555{sep}1234", id=f"joined by U+{ord(sep):04X}") for sep in "・･․‧˗⸺﹒⁄∕"),
        *(
            pytest.param(sep.join("6175551234"), id=f"U+{ord(sep):04X} after every digit")
            for sep in "\u0301\u034f\u180b\U000e0020\u115f\u3164"
        ),
        pytest.param("617555a1234", id="a letter between digits"),
        pytest.param("617-555-l234", id="a letter for a digit, glued to the next"),
        pytest.param("61O-555-1234", id="a letter for a digit, glued to the one before"),
        pytest.param("⑥①⑦⑤⑤⑤①②③④", id="circled digits"),
        pytest.param("㉑㉒㉓㉔", id="circled numbers of two digits"),
        pytest.param("٦١٧٥٥٥١٢٣٤", id="Arabic-Indic digits"),
        pytest.param("6,175,551,234", id="grouped in thousands, 10 digits"),
        pytest.param("617, 555, 1234", id="a list with an item of 4 digits"),
        pytest.param("2026-13-06", id="a date with no month 13"),
        pytest.param("6a1b7c5d5e5f1a2b3c4", id="a letter after each digit, all hex"),
    ],
)
def test_the_spellings_review_r8_found_are_redacted(text):
    assert redact(f"number n{text} here") == "number n[redacted] here"


@pytest.mark.parametrize(
    "text",
    [
        "at 2026-12-06T14:00:00Z the window closed",
        "at 2026-12-06T14:00:00.123456+01:00",
        "on 2026-12-06 14:00 or 2026-12-07",
        "queued 1,000,000 of 12,345,678 calls",
        "error 42; 503; 404",
        "rows 12, 345, 678 and 1,024 are invalid",
        "call 123e4567-e89b-12d3-a456-426614174000 failed",
        "call 123E4567-E89B-12D3-A456-426614174000 failed",
        "trace 4bf92f3577b34da6a3ce929d0e0e4736",
    ],
)
def test_what_is_provably_not_a_phone_number_is_kept(text):
    assert redact(text) == text


def test_a_phone_number_after_a_timestamp_is_redacted_and_the_timestamp_kept():
    assert redact("2026-12-06T14:00:00Z 6175551234") == "2026-12-06T14:00:00Z [redacted]"


@given(
    st.datetimes(
        timezones=st.none()
        | st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda minutes: timezone(timedelta(minutes=minutes)))
    ),
    st.sampled_from(["T", " "]),
)
def test_an_iso_8601_timestamp_is_kept(moment, sep):
    text = f"scheduled at {moment.isoformat(sep)} by Fuse"
    assert redact(text, limit=10_000) == text


@given(st.integers(1000, 999_999_999))
def test_a_count_grouped_in_thousands_is_kept(count):
    assert redact(f"{count:,} calls") == f"{count:,} calls"


@given(st.lists(st.integers(0, 999), min_size=1, max_size=12), st.sampled_from([", ", "; "]))
def test_a_list_of_small_numbers_is_kept(numbers, sep):
    text = "errors " + sep.join(map(str, numbers))
    assert redact(text, limit=10_000) == text


@given(st.uuids(), st.booleans())
def test_a_uuid_is_kept(value: uuid.UUID, upper: bool):
    text = f"call {str(value).upper() if upper else value} failed"
    assert redact(text) == text


@given(
    pad=st.integers(0, 40),
    kept=st.sampled_from(["2026-12-06T14:00:00Z", "123e4567-e89b-12d3-a456-426614174000", "1,000,000"]),
    cut=st.integers(1, 40),
)
def test_what_a_cut_leaves_of_a_date_or_an_id_is_scrubbed_as_it_reads(pad, kept, cut):
    scrubbed = redact("x" * pad + " " + kept + " calls", limit=pad + cut)

    assert redact(scrubbed, limit=10_000) == scrubbed
    assert redact(scrubbed, limit=pad + cut) == scrubbed
