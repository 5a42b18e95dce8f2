""":func:`redact`'s one rule: however a number of 7+ digits is spelled or encoded, its digits do not
come out in order; what is provably not a phone number (a date, a count, an id) comes out as it was."""

from __future__ import annotations

import html
import json
import re
import sys
import unicodedata
import uuid
from datetime import timedelta, timezone
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_fuse.masking import redact

if TYPE_CHECKING:
    from collections.abc import Callable

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
    # Named HTML entities (with and without ";", escaped twice, percent-encoded), letters drawn
    # as a dash (a Japanese IME's "ー", Arabic tatweel, Hangul EU, a modifier macron).
    "&nbsp;",
    "&ndash;",
    "&thinsp;",
    "&period;",
    "&hyphen;",
    "&nbsp",
    "&amp;nbsp;",
    "%26nbsp%3B",
    *"ーｰـㅡˉᐨǀ",
]
# One letter between two digits (a typo, or a letter written for a digit); not a hex letter first,
# so the simplest example is not read as part of a hex id.
_LETTERS = ["n", "O", "l", "x", "Z", "é", "ж", "a", "T"]
# Letters written for 0 and 1 (Latin, Cyrillic, Greek): glued to the digits around them.
_LOOKALIKES = {0: "OoОоΟο", 1: "lIІΙӀ"}
# CJK numerals 0 to 9, and the zeros of digits newer than some interpreters' Unicode data (Kawi,
# Nag Mundari: Unicode 15; Garay, Outlined: Unicode 16).
_CJK = "〇一二三四五六七八九"
_NEWER_ZEROS = [0x11F50, 0x1E4F0, 0x10D40, 0x1CCF0]


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
        f"&#x{ord(ascii_digit):x}",  # no ";"
        f"&#{ord(fullwidth)}",
        f"&amp;#{ord(ascii_digit)};",  # escaped twice
        f"&amp;#x{ord(ascii_digit):x};",
        f"&percnt;{ord(ascii_digit):02X}",
        json.dumps(chr(0x1D7CE + digit))[1:-1],  # a surrogate pair: "\ud835\udfce"
        "".join(f"%u{unit:04X}" for unit in _utf16(chr(0x1D7CE + digit))),
        f"\\x{ord(ascii_digit):02x}",
        repr(fullwidth.encode())[2:-1],  # a Python bytes repr: "\xef\xbc\x96"
        f"\\u{{{ord(fullwidth):x}}}",
        _CJK[digit],
        chr(0xE0030 + digit),  # a tag digit
        *(chr(zero + digit) for zero in _NEWER_ZEROS),
    ]


def _utf16(char: str) -> list[int]:
    data = char.encode("utf-16-be")
    return [int.from_bytes(data[index : index + 2], "big") for index in range(0, len(data), 2)]


@st.composite
def spelled_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """A number of 10 to 15 digits, each digit spelled its own way (any script, circled, encoded),
    with invisible characters after any digit, and between any two digits nothing, 1 to 6
    separators, or one letter: (its ASCII digits, its spelling)."""
    digits = draw(st.text("0123456789", min_size=10, max_size=15))
    # A 0 or 1 may be written as a letter, glued to what is before and after it.
    lookalike = {
        index
        for index in draw(st.sets(st.integers(0, len(digits) - 1), max_size=3))
        if int(digits[index]) in _LOOKALIKES
    }
    glued = {gap for index in lookalike for gap in (index, index + 1)}
    lettered = draw(st.none() | st.integers(1, len(digits) - 1))  # the one gap that is a letter
    spelled = draw(st.sampled_from(["", "+", "tel:+", "(", "+("]))
    for index, digit in enumerate(digits):
        if index and index not in glued:
            if index == lettered:
                spelled += draw(st.sampled_from(_LETTERS))
            else:
                spelled += "".join(draw(st.lists(st.sampled_from(_SEPARATORS), max_size=6)))
        if index in lookalike:
            spelled += draw(st.sampled_from(_LOOKALIKES[int(digit)]))
        else:
            spelled += draw(st.sampled_from(_spellings(int(digit), draw(st.integers(0, len(_ZEROS) - 1)))))
        spelled += "".join(draw(st.lists(st.sampled_from(_INVISIBLE), max_size=2)))
    return digits, spelled


def _from_utf16(match: re.Match[str]) -> str:
    units = [int(unit, 16) for unit in re.findall(r"[uU]([0-9A-Fa-f]{4})", match.group())]
    data = b"".join(unit.to_bytes(2, "big") for unit in units)
    return data.decode("utf-16-be", "surrogatepass").encode("utf-8", "replace").decode("utf-8", "replace")


def _decoded(text: str) -> str:
    """``text`` as a reader decodes it: JSON, JavaScript and Python escapes, percent-encoding and
    HTML, four times over."""
    for _ in range(4):
        text = re.sub(r"\\u\{([0-9A-Fa-f]{1,6})\}", lambda match: chr(int(match.group(1), 16)), text)
        text = re.sub(
            r"(?:\\x[0-9A-Fa-f]{2})+",
            lambda match: bytes.fromhex(match.group().replace("\\x", "")).decode("utf-8", "replace"),
            text,
        )
        text = re.sub(r"(?:\\u[0-9A-Fa-f]{4})+", _from_utf16, text)
        text = re.sub(r"(?:%[uU][0-9A-Fa-f]{4})+", _from_utf16, text)
        text = html.unescape(unquote(text))
    return text


def _digit_read(char: str) -> str:
    """The digit a reader sees in ``char`` (after NFKC), or ``""``."""
    value = unicodedata.numeric(char, None)
    if value is not None and value in range(10):
        return str(int(value))
    code = ord(char)
    if 0xE0030 <= code <= 0xE0039:
        return str(code - 0xE0030)
    for zero in _NEWER_ZEROS:
        if zero <= code <= zero + 9:
            return str(code - zero)
    return next((str(digit) for digit, letters in _LOOKALIKES.items() if char in letters), "")


def _readable_digits(text: str) -> str:
    """The digits a reader recovers from ``text``: escapes decoded, compatibility forms, numerals,
    tag digits, newer scripts' digits and letters written for digits read as digits, every other
    character deleted."""
    return "".join(map(_digit_read, unicodedata.normalize("NFKC", _decoded(text))))


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
        "queued 12,345 of 1,000,000 calls",
        "a limit of 25,000,000 calls",
        "error 42; 503",
        "rows 12, 345 and 1,024 are invalid",
        "on 2026-12-06, 2026-12-07; 1,000,000",
        "call 3f2b8c1e-9d4a-4b7e-a1c5-6e2f0d9b8a7c failed",
        "call 3F2B8C1E-9D4A-4B7E-A1C5-6E2F0D9B8A7C failed",
        "trace 4bf92f3577b34da6a3ce929d0e0e4736",
    ],
)
def test_what_is_provably_not_a_phone_number_is_kept(text):
    assert redact(text) == text


D = "6175551234"


def _each(spell: Callable[[str], str]) -> str:
    return "".join(map(spell, D))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(_each(lambda char: f"&#x{ord(char):x}"), id="7 hex references without ;"),
        pytest.param("617&nbsp;555&ndash;1234", id="8 named entities"),
        pytest.param("617&nbsp555&nbsp1234", id="9 legacy entities without ;"),
        pytest.param("617%26nbsp%3B555%26nbsp%3B1234", id="9 a percent-encoded entity"),
        pytest.param(_each(lambda char: f"&amp;#{ord(char)};"), id="10 escaped twice"),
        pytest.param(_each(lambda char: f"&amp;#x{ord(char):x};"), id="10 hex escaped twice"),
        pytest.param(_each(lambda char: f"&percnt;{ord(char):02X}"), id="11 a named percent sign"),
        pytest.param(json.dumps("𝟔𝟏𝟕𝟓𝟓𝟓𝟏𝟐𝟑𝟒")[1:-1], id="14 JSON surrogate pairs"),
        pytest.param(
            _each(lambda char: "%uD835%uDF" + f"{0xCE + int(char):02X}"), id="14 %u surrogate pairs"
        ),
        pytest.param(_each(lambda char: f"\\x{ord(char):02x}"), id="15 \\x escapes"),
        pytest.param(_each(lambda char: f"\\u{{{ord(char):x}}}"), id="15 \\u{} escapes"),
        pytest.param(repr("٦١٧٥٥٥١٢٣٤".encode()), id="18 a bytes repr of UTF-8 digits"),
        pytest.param("六一七五五五〇一〇〇", id="25 CJK numerals"),
        pytest.param(_each(lambda char: chr(0xE0000 + ord(char))), id="27 tag digits"),
        pytest.param(_each(lambda char: chr(0x11F50 + int(char))), id="28 Kawi digits"),
        pytest.param(_each(lambda char: chr(0x1CCF0 + int(char))), id="28 outlined digits"),
        pytest.param("617-555-О100", id="30 a Cyrillic O"),
        pytest.param("617-555-Ο1ΟΟ", id="30 Greek Os"),
        pytest.param("617-555-І234", id="30 a Cyrillic I"),
        pytest.param("1-8OO-555-1234", id="two letters O for two zeros"),
        pytest.param("617 ー 555 ー 1234", id="31 katakana prolonged marks"),
        pytest.param("617ーー555ーー1234", id="31 two katakana prolonged marks"),
        pytest.param("617 ㅡ 555 ㅡ 1234", id="31 Hangul EU"),
        pytest.param("617ـــ555ـــ1234", id="31 tatweel"),
        pytest.param("617 ˉ 555 ˉ 1234", id="31 modifier macron"),
        pytest.param("617 ǀ 555 ǀ 1234", id="31 a click letter"),
        pytest.param("617, 555, 123, 4", id="34 a list"),
        pytest.param("617; 555; 12; 34", id="34 a list with ;"),
        pytest.param("5,551,234", id="35 a count of 7 digits"),
        pytest.param("617,555,123", id="35 a count of 9 digits"),
        pytest.param("617, 5,551,234", id="36 a list of counts"),
        pytest.param("6, 175,551,234", id="36 a small number and a count"),
        pytest.param("2026-01-01T00:00:00.617555123", id="37 a fraction of 9 digits"),
        pytest.param("00000000-0000-0000-0000-006175551234", id="39 in a UUID"),
        pytest.param("61755512-3400-4000-8000-000000000000", id="39 at the start of a UUID"),
        pytest.param("ab6175551234cd0e", id="40 in a hex id"),
        pytest.param("abcd6175551234ef00000000000000ab", id="40 in a long hex id"),
    ],
)
def test_the_spellings_review_r10_found_are_redacted(text):
    scrubbed = redact(f"number: {text} here")

    assert "[redacted]" in scrubbed
    assert not any(D[start : start + 7] in _readable_digits(scrubbed) for start in range(4))


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


@given(
    st.integers(1000, 999_999)
    | st.builds(lambda lead, groups: lead * 1000**groups, st.integers(1, 999), st.integers(2, 4))
)
def test_a_count_of_six_digits_or_a_round_count_grouped_in_thousands_is_kept(count):
    assert redact(f"{count:,} calls") == f"{count:,} calls"


@given(st.integers(1_000_000, 999_999_999).filter(lambda count: count % 1_000_000))
def test_a_count_of_seven_digits_or_more_is_redacted_however_it_is_grouped(count):
    # 5,551,234 is how a spreadsheet shows a local number.
    assert redact(f"{count:,} calls") == "[redacted] calls"


def _digit_count(numbers: list[int]) -> int:
    return sum(len(str(number)) for number in numbers)


@given(
    st.lists(st.integers(0, 999), min_size=1, max_size=6).filter(lambda numbers: _digit_count(numbers) < 7),
    st.sampled_from([", ", "; "]),
)
def test_a_list_of_six_digits_or_fewer_is_kept(numbers, sep):
    text = "errors " + sep.join(map(str, numbers))
    assert redact(text, limit=10_000) == text


@given(
    st.lists(st.integers(0, 999_999), min_size=2, max_size=12).filter(
        lambda numbers: _digit_count(numbers) >= 7
    ),
    st.sampled_from([", ", "; "]),
    st.booleans(),
)
def test_a_list_of_seven_digits_or_more_is_redacted(numbers, sep, grouped):
    # "617, 555, 123, 4" is a number.
    text = "errors " + sep.join(f"{number:,}" if grouped else str(number) for number in numbers)
    assert redact(text, limit=10_000) == "errors [redacted]"


def _seven_in_a_row(text: str) -> bool:
    return re.search(r"[0-9](?:-?[0-9]){6}", text) is not None


@given(st.uuids().filter(lambda value: not _seven_in_a_row(str(value))), st.booleans())
def test_a_uuid_without_seven_digits_in_a_row_is_kept(value: uuid.UUID, upper: bool):
    text = f"call {str(value).upper() if upper else value} failed"
    assert redact(text) == text


@given(
    st.uuids(),
    st.text("0123456789", min_size=10, max_size=10),
    st.integers(0, 22),
    st.sampled_from([str, str.upper]),
)
def test_no_seven_digits_of_a_number_in_a_uuid_or_a_hex_id_are_readable(value, digits, at, case):
    hexadecimal = value.hex
    as_id = case(hexadecimal[:at] + digits + hexadecimal[at + 10 :])
    as_uuid = "-".join([as_id[:8], as_id[8:12], as_id[12:16], as_id[16:20], as_id[20:]])

    for text in (as_id, as_uuid):
        left = _readable_digits(redact(f"call {text} failed"))
        assert not any(digits[start : start + 7] in left for start in range(4))


@given(
    pad=st.integers(0, 40),
    kept=st.sampled_from(["2026-12-06T14:00:00Z", "123e4567-e89b-12d3-a456-426614174000", "1,000,000"]),
    cut=st.integers(1, 40),
)
def test_what_a_cut_leaves_of_a_date_or_an_id_is_scrubbed_as_it_reads(pad, kept, cut):
    scrubbed = redact("x" * pad + " " + kept + " calls", limit=pad + cut)

    assert redact(scrubbed, limit=10_000) == scrubbed
    assert redact(scrubbed, limit=pad + cut) == scrubbed
