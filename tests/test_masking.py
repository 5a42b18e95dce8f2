"""What :func:`redact` takes out of a text, however the number in it is spelled, and what it leaves."""

from __future__ import annotations

import itertools
import time
import unicodedata
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_fuse.masking import redact, shown_keys
from airflow_provider_fuse.redaction import _covered_by

# Ten digits of a script, 0 to 9: ASCII, Arabic-Indic, Devanagari, fullwidth, mathematical bold,
# superscript, subscript.
_SCRIPTS = [
    "0123456789",
    "".join(chr(0x660 + digit) for digit in range(10)),
    "".join(chr(0x966 + digit) for digit in range(10)),
    "".join(chr(0xFF10 + digit) for digit in range(10)),
    "".join(chr(0x1D7CE + digit) for digit in range(10)),
    "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079",
    "".join(chr(0x2080 + digit) for digit in range(10)),
]
# What people, forms and systems put between a number's digits.
_SEPARATORS = [
    *" -./_(),;:*|~+'\\",
    "\t",
    "\n",
    "\u00a0",  # no-break space
    "\u2009",  # thin space
    "\u00ad",  # soft hyphen
    "\u2010",
    "\u2013",
    "\u2014",
    "\u2212",
    "\u00b7",
    "\u200b",  # zero-width space
    "\u200c",
    "\u200d",
    "\u2060",  # word joiner
    "\ufeff",  # byte order mark
    "\u200e",  # left-to-right mark
    "\uff0c",  # fullwidth comma
    "\uff0d",
    "\uff1a",
    "%20",
    "%2D",
    "%2C",
    "%2B",
    "%C2%A0",
    "%E2%80%8B",
]


@st.composite
def spelled_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """A 10-digit number, 11 with its leading 1, or an E.164 one, split into groups anywhere, any run
    of separators between groups: (its ASCII digits, its spelling)."""
    kind = draw(st.sampled_from(["10", "11", "E.164"]))
    if kind == "10":
        digits = draw(st.text("0123456789", min_size=10, max_size=10))
    elif kind == "11":
        digits = "1" + draw(st.text("0123456789", min_size=10, max_size=10))
    else:
        digits = draw(st.sampled_from("123456789")) + draw(st.text("0123456789", min_size=7, max_size=14))
    script = draw(st.sampled_from(_SCRIPTS))
    spelled = [script[int(digit)] for digit in digits]
    cuts = sorted(draw(st.sets(st.integers(1, len(digits) - 1), max_size=len(digits) - 1)))
    bounds = zip([0, *cuts], [*cuts, len(digits)], strict=True)
    groups = ["".join(spelled[start:end]) for start, end in bounds]
    number = groups[0]
    for group in groups[1:]:
        number += "".join(draw(st.lists(st.sampled_from(_SEPARATORS), min_size=1, max_size=6))) + group
    prefix = draw(st.sampled_from(["", "+", "tel:+", "(", "+("])) if kind == "E.164" else ""
    return digits, prefix + number


def _digits_left(text: str) -> str:
    """Every digit of ``text``, of any script, as ASCII, in order."""
    return "".join(str(unicodedata.digit(char)) for char in text if unicodedata.digit(char, None) is not None)


@given(before=st.text(max_size=30), number=spelled_numbers(), after=st.text(max_size=30))
def test_no_seven_digits_of_a_number_survive_whatever_separates_them(before, number, after):
    digits, spelled = number

    left = _digits_left(redact(before + spelled + after, limit=10_000))

    runs = {digits[start : start + 7] for start in range(len(digits) - 6)}
    assert not any(run in left for run in runs)


# Text around a number that joins nothing to it: no digit or numeral (一), no separator (a letter
# drawn as a dash: ー), nothing that begins an escape ("%36", "&#54;", "\x36": the number's first
# digits would be read as the escape's).
_AROUND = st.text(
    st.characters(categories=("L", "Zs", "Po"), exclude_characters="".join(_SEPARATORS) + "%&\\·、。").filter(
        lambda char: unicodedata.numeric(char, None) is None and unicodedata.category(char) != "Lm"
    ),
    max_size=30,
)


@given(before=_AROUND, number=spelled_numbers(), after=_AROUND)
def test_a_number_is_masked_whole_and_the_text_around_it_kept(before, number, after):
    _, spelled = number

    scrubbed = redact(before + spelled + after, limit=10_000)

    kept = "tel:" if spelled.startswith("tel:") else ""
    assert scrubbed == " ".join((before + kept + "[redacted]" + after).split())


def _may_be_a_digit(char: str) -> bool:
    """A digit, a numeral of value 0 to 9 (一), a tag digit, or a character this interpreter's
    Unicode data does not know (a digit of a newer script may be one; noncharacters never are)."""
    value = unicodedata.numeric(char, None)
    code = ord(char)
    return (
        (value is not None and value in range(10))
        or 0xE0030 <= code <= 0xE0039
        or (unicodedata.category(char) == "Cn" and not (0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE))
    )


def _counted_digits(text: str) -> int:
    """Digits as redact reads them: a circled 21 is two."""
    return sum(map(_may_be_a_digit, unicodedata.normalize("NFKC", text)))


@given(st.text(max_size=80).filter(lambda text: _counted_digits(text) <= 6))
def test_a_text_of_six_digits_or_fewer_is_left_as_it_is(text):
    assert redact(text, limit=10_000) == " ".join(text.split())


@pytest.mark.parametrize(
    "text",
    [
        "617,555,1234",
        "617;555;1234",
        "617:555:1234",
        "617*555*1234",
        "617|555|1234",
        "617~555~1234",
        "617+555+1234",
        "617'555'1234",
        "617 , 555 , 1234",
        "617%20555%201234",
        "617%C2%A0555%C2%A01234",
        "6\u200b1\u200b7\u200b5\u200b5\u200b5\u200b1\u200b2\u200b3\u200b4",
        "617\u2060555\ufeff1234",
        "617-----555-----1234",
        "617 - - - 555 - - - 1234",
        "\u00b9\u2076\u00b9\u2077\u2075\u2075\u2075\u00b9\u00b2\u00b3\u2074",  # superscript digits
    ],
)
def test_the_spellings_review_found_are_redacted(text):
    assert redact(f"no such number {text} here") == "no such number [redacted] here"


@pytest.mark.parametrize(
    "text",
    [
        "at 12:30:45",
        "rows 1, 2, 3 and 4 are invalid",
        "HTTP 404; 3 of 1000 rows",
        "2 + 2 = 4",
        "50% of 100 rows",
        "100%20 is not a number",
        "queued 12*34 calls",
    ],
)
def test_ordinary_text_with_few_digits_is_kept(text):
    assert redact(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "1" + "%20" * 20_000 + "x",
        "1" + "-" * 60_000 + "x",
        "1%20" * 15_000 + "x",
        "+(" * 30_000,
        "1 " * 30_000,
    ],
)
def test_redact_takes_linear_time(text):
    started = time.monotonic()
    redact(text)
    # A quadratic scan of these takes tens of seconds.
    assert time.monotonic() - started < 2


class _CountedSearches(str):
    searches = 0

    def find(self, *args: Any) -> int:
        type(self).searches += 1
        return super().find(*args)


def test_a_long_secret_that_repeats_is_not_searched_for_once_per_overlapping_occurrence():
    text = _CountedSearches("a" * 100_000)

    covered = list(_covered_by(text, "a" * 50_000))

    # Once per occurrence, 50,001 searches of 50,000 characters each took seconds.
    assert _CountedSearches.searches < 10
    assert covered == [(0, 100_000)]
    assert redact(text, secrets=["a" * 50_000]) == "***"


@given(
    text=st.text("ab", max_size=40),
    secrets=st.lists(st.text("ab", min_size=1, max_size=8), min_size=1, max_size=3),
)
def test_every_character_an_occurrence_of_a_secret_covers_is_masked(text, secrets):
    covered = [False] * len(text)
    for secret in secrets:
        for start in range(len(text)):
            if text.startswith(secret, start):
                covered[start : start + len(secret)] = [True] * len(secret)
    expected = "".join(
        "***" if hidden else "".join(char for char, _ in group)
        for hidden, group in itertools.groupby(zip(text, covered, strict=True), key=lambda pair: pair[1])
    )

    assert redact(text, limit=10_000, secrets=secrets) == expected


def test_a_key_that_spells_a_secret_in_other_capitals_is_not_named():
    assert shown_keys({"DK_4F1C9E2A": 1}, secrets=["dk_4f1c9e2a"]) == "of 1 key"
    assert (
        shown_keys({"dk_4f1c9e2a": 1, "error": 2}, secrets=["DK_4F1C9E2A"])
        == "with keys error and 1 other key"
    )


def test_an_h11_error_quoting_a_header_line_of_utf_8_digits_is_redacted():
    h11 = pytest.importorskip("h11")
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "fuse")]))
    client.receive_data(b"HTTP/1.1 400 Bad\r\nX: y\r\n\x01" + "٦١٧٥٥٥١٢٣٤".encode() + b"\r\n\r\n")
    with pytest.raises(h11.RemoteProtocolError) as raised:
        client.next_event()

    scrubbed = redact(str(raised.value), 500)

    assert "[redacted]" in scrubbed
    assert "d9\\xa6" not in scrubbed


@pytest.mark.parametrize("number", ["٦١٧٥٥٥١٢٣٤", "６１７５５５１２３４", "𝟔𝟏𝟕𝟓𝟓𝟓𝟏𝟐𝟑𝟒", "617\xa0555\xa01234"])
def test_bytes_the_http_clients_log_are_read_as_utf_8_before_they_are_redacted(number):
    from airflow_provider_fuse.hooks.client_logs import _log_safe

    assert _log_safe(f"header {number}".encode()) == "header [redacted]"


def test_a_byte_that_is_not_utf_8_is_logged_as_an_escape():
    from airflow_provider_fuse.hooks.client_logs import _log_safe

    assert _log_safe(b"bad \xff byte") == "bad \\xff byte"


@pytest.mark.parametrize(
    "echo",
    [
        "DK_4F1C9E2A/B+Z=",
        "Dk_4f1C9e2a/b+Z=",
        "dk_4f1c9e2a\\/B+z=",
        "dk_4f1c9e2a%2FB%2Bz%3D",
        "dk_4f1c9e2a%2fB%2bz%3d",
        "dk_4f1c9e2a&#x2F;B&#x2B;z&#x3D;",
        "dk_4f1c9e2a&sol;B&plus;z&equals;",
        "\\u0064k_4f1c9e2a\\u002FB\\u002Bz\\u003D",
        "dk_4f1c\u200b9e2a/B+z=",
    ],
)
def test_the_developer_key_echoed_in_other_capitals_or_encoded_is_masked(echo):
    assert redact(f"echo {echo} done", secrets=["dk_4f1c9e2a/B+z="]) == "echo *** done"


def test_a_secret_is_masked_where_it_was_written_and_the_text_around_it_kept():
    assert redact("a%2Fdk_4F1C%39e2a%2F!", secrets=["dk_4f1c9e2a"]) == "a%2F***%2F!"
