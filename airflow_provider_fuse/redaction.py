"""What of a text from outside may be shown: :func:`redact` takes out credentials and phone numbers.

Text the provider did not write (an answer of Fuse, a database's or an HTTP library's error) passes
through :func:`redact` before it reaches a log line, an exception or XCom.
"""

from __future__ import annotations

import html
import re
import unicodedata
from html.entities import html5
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

__all__ = ["HIDDEN", "redact"]

#: What stands in for a hidden value or a credential.
HIDDEN = "***"

# Phone numbers in text we did not write. The text is read twice, as written and with its escapes
# decoded, each as a "class string": one character stands for each character of the reading.
#
# A character stands for: a digit ("0"-"9", whatever its script or compatibility form: circled,
# superscript, fullwidth, a CJK numeral, a tag digit), two digits ("\x01": a circled 21), a
# character this interpreter's Unicode data does not know ("\x05": it may be a digit of a newer
# script, so it counts as one and no exemption applies), a letter (itself when ASCII, "O" or "l"
# for a letter drawn like them, "x" for another single letter, "\x03" for several), nothing
# (``_SILENT``: combining marks, format and control characters, the Hangul fillers), or else a
# separator (itself when its compatibility form is one ASCII character, "\x04" when not; letters
# drawn as a dash or a bar are separators).
_SILENT = "\x00"
_TWO_DIGITS = "\x01"
_WORD = "\x03"
_OTHER_SEPARATOR = "\x04"
_UNKNOWN = "\x05"
# Default-ignorable letters: Hangul fillers draw nothing, like format characters.
_FILLERS = frozenset("\u115f\u1160\u3164\uffa0")
# Letters of other scripts drawn as a Latin O or as an I or l (written for 0 and 1).
_LOOKALIKES = {**dict.fromkeys("ОоΟοՕօᴏⲞⲟ", "O"), **dict.fromkeys("ІΙӀӏ", "l")}
# Letters drawn as a dash or a bar (after NFKC): Hangul EU (ㅡ), a Canadian syllabics stroke, a
# click letter. Modifier letters (ー, ـ, ˉ) are separators too, by their category.
_DASH_LETTERS = frozenset("\u1173\u1428\u01c0")
_TAG_DIGITS = range(0xE0030, 0xE003A)


def _digit_of(char: str) -> int | None:
    """The digit ``char`` writes: a decimal digit, or a numeral of value 0 to 9 (一, 〇, 〡)."""
    digit = unicodedata.digit(char, None)
    if digit is not None:
        return digit
    value = unicodedata.numeric(char, None)
    return int(value) if value is not None and value in range(10) else None


def _stands_for(char: str) -> str:
    """The class-string character that stands for ``char``."""
    code = ord(char)
    if code in _TAG_DIGITS:
        return str(code - _TAG_DIGITS.start)
    category = unicodedata.category(char)
    if category == "Cn" and not (0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE):
        return _UNKNOWN  # unassigned here, perhaps a digit in a newer Unicode (noncharacters never are)
    if char in _FILLERS or category[0] in "MC":
        return _SILENT
    kept = [
        part
        for part in unicodedata.normalize("NFKC", char)
        if part not in _FILLERS and unicodedata.category(part)[0] not in "MC"
    ]
    digits = [digit for digit in map(_digit_of, kept) if digit is not None]
    if digits:
        return str(digits[0]) if len(digits) == 1 else _TWO_DIGITS
    if not kept:
        return _SILENT
    if len(kept) == 1:
        part = kept[0]
        if part.isascii():
            return part
        if part in _LOOKALIKES:
            return _LOOKALIKES[part]
        if part in _DASH_LETTERS or unicodedata.category(part) == "Lm":
            return _OTHER_SEPARATOR
    if any(part.isalnum() for part in kept):
        return "x" if len(kept) == 1 else _WORD
    return _OTHER_SEPARATOR


class _StandsFor(dict[int, str]):
    """``str.translate`` table of :func:`_stands_for`, filled as characters are met (bounded)."""

    def __missing__(self, code: int) -> str:
        value = _stands_for(chr(code))
        if len(self) < 65_536:
            self[code] = value
        return value


_CLASSES = _StandsFor()

# An escape a URL, a form, HTML, JSON, JavaScript or Python writes for a character: "%36" (also
# "%2536", encoded again), "%u0036", "&#54;" and "&#x36" (";" optional), "&nbsp;" (and the legacy
# names without ";"), "\u0036", "\u{36}", "\U00000036", "\x36", "\/", "\\", "\"". Consecutive
# "%XX" and "\xHH" bytes are UTF-8; "\uD835\uDFD4" and "%uD835%uDFD4" are one character (UTF-16);
# so are two surrogates written as they are.
_ESCAPE = re.compile(
    r"%(?:25)*(?P<byte>[0-9A-Fa-f]{2})|\\x(?P<xbyte>[0-9A-Fa-f]{2})"
    r"|%[uU](?P<high>[dD][89abAB][0-9A-Fa-f]{2})%[uU](?P<low>[dD][c-fC-F][0-9A-Fa-f]{2})"
    r"|\\u(?P<jhigh>[dD][89abAB][0-9A-Fa-f]{2})\\u(?P<jlow>[dD][c-fC-F][0-9A-Fa-f]{2})"
    r"|%[uU](?P<unit>[0-9A-Fa-f]{4})|\\u(?P<junit>[0-9A-Fa-f]{4})"
    r"|\\u\{(?P<code>[0-9A-Fa-f]{1,8})\}|\\U(?P<long>[0-9A-Fa-f]{8})"
    r"|\\(?P<char>[\\/\"])"
    r"|&#(?P<decimal>[0-9]+);?|&#[xX](?P<hex>[0-9A-Fa-f]+);?"
    r"|&(?P<name>[A-Za-z][A-Za-z0-9]{0,31})(?P<semicolon>;?)"
    r"|(?P<pair>[\ud800-\udbff][\udc00-\udfff])"
)
_MAY_BE_ESCAPED = re.compile(r"[%&\\\ud800-\udbff]")
# Decoded again while that changes the text ("&amp;#54;", "%26nbsp%3B", "\\u0036"); each round
# shortens it.
_DECODING_ROUNDS = 8
_LEGACY_NAME_CHARS = max(len(name) for name in html5 if not name.endswith(";"))


def _decoded(text: str) -> tuple[str, Sequence[int], Sequence[int]] | None:
    """``text`` with its escapes decoded until that changes nothing (at most
    :data:`_DECODING_ROUNDS` times), and for each of its characters the start and the end in
    ``text`` of what wrote it; ``None`` when ``text`` has nothing that could be an escape."""
    if not _MAY_BE_ESCAPED.search(text):
        return None
    starts: Sequence[int] = range(len(text))
    ends: Sequence[int] = range(1, len(text) + 1)
    for _ in range(_DECODING_ROUNDS):
        decoded = _decode_once(text, starts, ends)
        if decoded is None:
            break
        text, starts, ends = decoded
    return text, starts, ends


def _decode_once(
    text: str, starts: Sequence[int], ends: Sequence[int]
) -> tuple[str, list[int], list[int]] | None:
    """One round of :func:`_decoded`; ``None`` when ``text`` holds no escape."""
    pieces: list[str] = []
    new_starts: list[int] = []
    new_ends: list[int] = []
    pending: list[tuple[int, int, int]] = []  # bytes: start, end, value
    position = 0
    changed = False

    def emit(chars: str, first: int, last: int) -> None:
        pieces.append(chars)
        new_starts.extend([starts[first]] * len(chars))
        new_ends.extend([ends[last - 1]] * len(chars))

    def flush() -> None:
        index = 0
        while index < len(pending):
            first = pending[index][2]
            size = 1 if first < 0x80 else 2 if 0xC2 <= first < 0xE0 else 3 if 0xE0 <= first < 0xF0 else 4
            chunk = pending[index : index + size]
            try:
                char = bytes(value for _, _, value in chunk).decode() if len(chunk) == size else ""
            except UnicodeDecodeError:
                char = ""
            if len(char) != 1:
                chunk, char = chunk[:1], "\ufffd"
            emit(char, chunk[0][0], chunk[-1][1])
            index += len(chunk)
        pending.clear()

    for match in _ESCAPE.finditer(text):
        start, end = match.span()
        if pending and pending[-1][1] != start:
            flush()
        if position < start:
            pieces.append(text[position:start])
            new_starts.extend(starts[position:start])
            new_ends.extend(ends[position:start])
        position = end
        kind = match.lastgroup
        if kind == "byte" or kind == "xbyte":
            pending.append((start, end, int(match[kind], 16)))
            changed = True
            continue
        if pending:
            flush()
        if kind == "semicolon":
            value, consumed = _entity(match["name"], bool(match["semicolon"]))
            if value is None:
                position = start  # not an entity: copied as it is
                continue
            emit(value, start, start + consumed)
            position = start + consumed
        else:
            emit(_character(kind, match), start, end)
        changed = True
    if pending:
        flush()
    if not changed:
        return None
    pieces.append(text[position:])
    new_starts.extend(starts[position:])
    new_ends.extend(ends[position:])
    return "".join(pieces), new_starts, new_ends


def _character(kind: str | None, match: re.Match[str]) -> str:
    """What a matched escape other than a byte or a named entity writes (``""``: nothing)."""
    if kind == "low" or kind == "jlow":
        high, low = (match["high"], match["low"]) if kind == "low" else (match["jhigh"], match["jlow"])
        return chr(0x10000 + ((int(high, 16) - 0xD800) << 10) + int(low, 16) - 0xDC00)
    if kind == "pair":
        return match["pair"].encode("utf-16", "surrogatepass").decode("utf-16")
    if kind == "char":
        return match["char"]
    if kind == "decimal" or kind == "hex":
        digits = match[kind].lstrip("0") or "0"
        code = int(digits, 10 if kind == "decimal" else 16) if len(digits) <= 8 else 0x110000
        if 0x20 <= code < 0x7F or 0xA0 <= code < 0xD800:
            return chr(code)
        # HTML's own reading: windows-1252 for 128-159, U+FFFD or nothing for what is no character.
        return html.unescape(f"&#{min(code, 0x110000)};")
    code = int(match[kind or ""], 16)  # unit, junit, code, long
    return chr(code) if code <= 0x10FFFF else "\ufffd"


def _entity(name: str, semicolon: bool) -> tuple[str | None, int]:
    """What ``&name`` writes and how many characters of ``&name;`` it takes, as HTML reads it:
    the whole when ``name;`` is an entity, else the longest legacy name it starts with."""
    if semicolon and f"{name};" in html5:
        return html5[f"{name};"], len(name) + 2
    for size in range(min(len(name), _LEGACY_NAME_CHARS), 1, -1):
        if name[:size] in html5:
            return html5[name[:size]], size + 1
    return None, 0


# A hex id (a request or trace id, a hash: 16 or more hex digits of one case, letters in three
# places or more and two together in one, unlike a number with typos or a letter after each digit)
# or a UUID: never a phone number, and its digits are joined by single letters, so it stands apart
# before numbers are looked for; unless it holds 7 digits in a row (across a UUID's dashes).
_ID = re.compile(
    r"(?<![0-9A-Za-z\x01\x03\x05])"
    r"(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-f]{16,}|[0-9A-F]{16,})"
    r"(?![0-9A-Za-z\x01\x03\x05])"
)
_SEVEN_IN_A_ROW = re.compile(r"[0-9](?:-?[0-9]){6}")
_LETTER_RUN = re.compile(r"[A-Za-z]+")
# A candidate number: an optional "+" and opening bracket, then digits joined by any run of
# separators, by one letter between two digits ("617555a1234": a typo), or by letters written
# for digits (O, o, I, l) that touch one of them ("617-555-l234", "1-8OO-555-1234"). Silent
# characters anywhere.
# No possessive quantifier (Python 3.10 has none), and none needed: every run is followed by what it
# cannot hold (a digit, a letter), and nothing follows the last repetition, so a failed attempt gives
# back one run at a time and the search stays linear in the text.
_CANDIDATE = re.compile(
    r"(?:[0-9\x01\x05]|\+\x00*(?:\(\x00*)?[0-9\x01\x05]|\(\x00*[0-9\x01\x05])"
    r"(?:(?:[^0-9A-Za-z\x01\x03\x05]*"
    r"|\x00*[A-Za-z]\x00*"
    r"|[^0-9A-Za-z\x01\x03\x05]*(?:[OoIl]\x00*)+"
    r"|\x00*(?:[OoIl]\x00*)+[^0-9A-Za-z\x01\x03\x05]*"
    r")[0-9\x01\x05])*"
)
_DROP_SILENT = str.maketrans("", "", _SILENT)
_DROP_DIGITS = str.maketrans("", "", "0123456789" + _TWO_DIGITS + _UNKNOWN)
# What a candidate of 7 digits or more may be and still not be a phone number, as written without
# silent characters: a whole ISO 8601 date or date and time (a fraction of at most 6 digits), a
# round count grouped in thousands (1,000,000), or a list of those separated by ", " or "; ". None
# holds 7 free digits: a count such as 5,551,234 and a list such as "617, 555, 123, 4" may be a
# phone number, and are redacted.
_ISO_8601 = (
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:[.,][0-9]{1,6})?)?"
    r"(?:[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)?)?"
)
_ROUND_COUNT = r"[1-9][0-9]{0,2}(?:,000)+"
_NOT_A_NUMBER = re.compile(rf"{_ISO_8601}|{_ROUND_COUNT}")
_LIST_SEPARATOR = re.compile(r"[,;] ")
# Seven digits make a number personal (a local number without its area code); fewer stay readable,
# so status codes, row numbers, counts and times ("row 12", "400", "3 of 1000 rows", "12:30:45")
# survive.
_PHONE_DIGITS = 7
_PHONE_MASK = "[redacted]"
_EXCERPT_CHARS = 200


def redact(text: str, limit: int = _EXCERPT_CHARS, *, secrets: Iterable[str] = ()) -> str:
    """Return ``text`` scrubbed of ``secrets`` and phone numbers, cut to ``limit`` characters.

    Used on anything taken from an answer of Fuse before it reaches a log line or an exception: a
    server (or a stand-in) that echoes the request would otherwise put the developer key into a
    traceback. The provider scrubs the text itself rather than trusting Airflow's masker alone.

    The text is read as written and with its escapes decoded, again and again while that changes
    it (``%36``, ``%2536``, ``%EF%BC%96``, ``\\xef\\xbc\\x96``, ``%u0036``, ``&#54;``, ``&#x36``,
    ``&nbsp;``, ``&amp;#54;``, ``\\u0036``, ``\\ud835\\udfd4``, ``\\u{36}``, ``\\/``).

    * Runs of whitespace become one space.
    * Every part of the text covered by a secret in either reading, in any case (overlapping ones
      included), becomes ``***``; invisible characters inside it do not hide it.
    * Every number of 7 or more digits becomes ``[redacted]``, with its ``+`` or opening bracket.
      A digit is any character whose compatibility form is a decimal digit (other scripts',
      fullwidth, superscript, circled) or a numeral of value 0 to 9 (一, 〇), a tag digit, and any
      character this interpreter's Unicode data does not know (a digit of a newer script may be
      one). Combining marks and invisible characters count for nothing; digits are joined by any
      run of other characters that are not letters or digits (letters drawn as a dash, ``ー``,
      ``ـ``, ``ㅡ``, are such characters), by one letter between two digits (``617555a1234``), or
      by letters written for digits that touch one (``617-555-l234``, ``1-8OO-555-1234``, also a
      Cyrillic or Greek ``О``).
      Left readable: text with fewer digits (status codes, row numbers, counts, times), a whole
      ISO 8601 date or timestamp (a fraction of up to 6 digits), a round count grouped in thousands
      (``1,000,000``), a list of those separated by ``, `` or ``; ``, a UUID and a hex id of 16 or
      more digits (one case, letters in three places or more, two together in one) that hold no 7
      decimal digits in a row. Any other count or list of 7 digits or more is redacted.
    * Then, and only then, a result longer than ``limit`` is cut and ends with ``…`` (scrubbed
      again: a cut date is no longer a date).

    ``redact(redact(t)) == redact(t)``. A secret that is itself part of a mask's text (``*``,
    ``redacted``, in any case) cannot be told from the mask.

    :param text: the text to scrub.
    :param limit: the most characters kept (not counting the ``…``).
    :param secrets: every form of every credential to remove (the developer key, the Authorization
        header value, its base64 token); empty ones are ignored. Whitespace in a secret matches any
        whitespace in the text.
    """
    text = " ".join(text.split())
    decoded = _decoded(text)
    masked = _mask_secrets(text, {" ".join(secret.split()) for secret in secrets} - {""}, decoded)
    if masked != text:
        text, decoded = masked, _decoded(masked)
    text = _mask_phone_numbers(text, decoded)
    # Scrub before cutting: a cut through a number or a secret would leave its first part readable.
    if len(text) > limit:
        text = _mask_phone_numbers(text[:limit], _decoded(text[:limit]))[:limit] + "…"
    return text


def _mask_phone_numbers(text: str, decoded: tuple[str, Sequence[int], Sequence[int]] | None) -> str:
    """``text`` with every span that is (or overlaps) a phone number in either reading (as written,
    ``decoded``: :func:`_decoded` of ``text``) masked."""
    readings: list[tuple[str, Sequence[int] | None, Sequence[int] | None]] = [
        (text.translate(_CLASSES), None, None)
    ]
    if decoded is not None:
        readings.append((decoded[0].translate(_CLASSES), decoded[1], decoded[2]))
    spans: list[tuple[int, int, bool]] = []
    for reading, starts, ends in readings:
        found = _candidates(reading, keep_all=len(readings) > 1)
        if any(phone for _, _, phone in found):
            # Only then is it worth looking for ids, which may hold what looked like a number.
            apart = _ID.sub(_stand_apart, reading)
            if apart != reading:
                found = _candidates(apart, keep_all=len(readings) > 1)
        if starts is not None and ends is not None:
            found = [(starts[start], ends[end - 1], phone) for start, end, phone in found]
        spans += found
    if len(readings) > 1:
        spans.sort()
    pieces = []
    position = 0
    for start, end in _masked(spans):
        pieces += [text[position:start], _PHONE_MASK]
        position = end
    if not pieces:
        return text
    return "".join([*pieces, text[position:]])


def _candidates(reading: str, *, keep_all: bool) -> list[tuple[int, int, bool]]:
    """The candidates of a class string: (start, end, whether a phone number); only the phone
    numbers unless ``keep_all``."""
    found = []
    for match in _CANDIDATE.finditer(reading):
        start, end = match.span()
        phone = end - start > _PHONE_DIGITS // 2 and _is_phone_number(match.group())
        if phone or keep_all:
            found.append((start, end, phone))
    return found


def _masked(spans: list[tuple[int, int, bool]]) -> Iterator[tuple[int, int]]:
    """The stretches to mask: overlapping candidates of the two readings merge, and a merged
    stretch is masked whole if any of its candidates is a phone number (a part left readable
    would be read again as a number of its own)."""
    start, end, phone = -1, -1, False
    for span_start, span_end, span_phone in spans:
        if span_start < end or (phone and span_phone and span_start == end):
            end = max(end, span_end)
            phone = phone or span_phone
            continue
        if phone:
            yield start, end
        start, end, phone = span_start, span_end, span_phone
    if phone:
        yield start, end


def _is_phone_number(candidate: str) -> bool:
    digits = len(candidate) - len(candidate.translate(_DROP_DIGITS)) + candidate.count(_TWO_DIGITS)
    if digits < _PHONE_DIGITS:
        return False
    written = candidate.translate(_DROP_SILENT)
    if "," not in written and written[4:5] != "-":
        return True  # no exemption can apply: each needs one of these
    return not all(_NOT_A_NUMBER.fullmatch(item) for item in _LIST_SEPARATOR.split(written))


def _stand_apart(match: re.Match[str]) -> str:
    token = match.group()
    if _SEVEN_IN_A_ROW.search(token):
        return token  # it may hold a number: read as any other text
    if "-" not in token:
        letters = _LETTER_RUN.findall(token)
        if len(letters) < 3 or max(map(len, letters)) < 2:
            return token
    return _WORD * len(token)


def _mask_secrets(
    text: str, secrets: set[str], decoded: tuple[str, Sequence[int], Sequence[int]] | None
) -> str:
    """Replace every stretch of ``text`` that any occurrence of any secret covers by one ``***``:
    in the text as written and as ``decoded`` (:func:`_decoded` of ``text``), in any case,
    invisible characters (:data:`_SILENT`) left out of both.

    Marking characters rather than replacing secret after secret: once ``abcd`` is replaced,
    ``cdef`` in ``abcdef`` can no longer be found and ``ef`` would stay readable.
    """
    if not secrets:
        return text
    folded = {
        _folded(_visible(secret, range(len(secret)), range(1, len(secret) + 1))[0]) for secret in secrets
    }
    readings: list[tuple[str, Sequence[int], Sequence[int]]] = [
        (text, range(len(text)), range(1, len(text) + 1))
    ]
    if decoded is not None:
        readings.append(decoded)
    covered = bytearray(len(text))
    for reading in readings:
        visible, starts, ends = _visible(*reading)
        visible = _folded(visible)
        for secret in folded - {""}:
            for start, end in _covered_by(visible, secret):
                first, last = starts[start], ends[end - 1]
                covered[first:last] = b"\x01" * (last - first)
    pieces = []
    position = 0
    while position < len(text):
        masked = covered[position]
        end = covered.find(0 if masked else 1, position)
        end = len(text) if end < 0 else end
        pieces.append(HIDDEN if masked else text[position:end])
        position = end
    return "".join(pieces)


_VISIBLE_RUN = re.compile(r"[^\x00]+")


def _visible(
    text: str, starts: Sequence[int], ends: Sequence[int]
) -> tuple[str, Sequence[int], Sequence[int]]:
    """``text`` without its silent characters, and the ``starts``/``ends`` of those it keeps."""
    classes = text.translate(_CLASSES)
    if _SILENT not in classes:
        return text, starts, ends
    pieces: list[str] = []
    kept_starts: list[int] = []
    kept_ends: list[int] = []
    for run in _VISIBLE_RUN.finditer(classes):
        pieces.append(text[run.start() : run.end()])
        kept_starts.extend(starts[run.start() : run.end()])
        kept_ends.extend(ends[run.start() : run.end()])
    return "".join(pieces), kept_starts, kept_ends


def _folded(text: str) -> str:
    """``text`` in lower case, one character for each of its own."""
    lowered = text.lower()
    if len(lowered) == len(text):  # no character lowered to several
        return lowered
    return "".join(low if len(low := char.lower()) == 1 else char for char in text)


def _covered_by(text: str, secret: str) -> Iterator[tuple[int, int]]:
    """The stretches of ``text`` that occurrences of ``secret`` cover, overlapping ones merged, in
    time linear in ``len(text)``: two overlapping occurrences ``d`` apart make a run of period
    ``d``, measured at once instead of searched for occurrence after occurrence."""
    size = len(secret)
    start = text.find(secret)
    while start >= 0:
        following = text.find(secret, start + 1, start + 2 * size)
        if following < 0:
            yield start, start + size
            start = text.find(secret, start + size)
            continue
        period = following - start
        # Every occurrence ``period`` apart while the text repeats with that period.
        last = start + (_periodic_until(text, following + size, period) - size - start) // period * period
        yield start, last + size
        start = text.find(secret, last + 1)


def _periodic_until(text: str, position: int, period: int) -> int:
    """The first index from ``position`` on where ``text`` stops repeating with ``period``
    (``text[i] != text[i - period]``), or ``len(text)``; compared a doubling chunk at a time."""
    chunk = period
    while position < len(text):
        size = min(chunk, len(text) - position)
        if text[position : position + size] == text[position - period : position - period + size]:
            position += size
            chunk *= 2
            continue
        same, differs = 0, size  # the first difference is within this chunk
        while differs - same > 1:
            middle = (same + differs) // 2
            if text[position : position + middle] == text[position - period : position - period + middle]:
                same = middle
            else:
                differs = middle
        return position + same
    return len(text)
