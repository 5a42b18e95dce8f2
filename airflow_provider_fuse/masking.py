"""What of a call is personal or secret, and how it is kept out of logs and Airflow's rendered view.

A phone number, a call's parameter values and the credentials a ``result_url`` may carry (userinfo,
a token in its query) are registered with Airflow's secret masker, which redacts log lines. The
masker alone is not enough for the rendered-template view: it skips values shorter than 5
characters, and an override of ``render_template_fields`` is not on the path mapped tasks render
through. So these template fields are :class:`Sealed`: once Airflow writes a rendered value back,
the operator attribute shows a redacted view of it and the value itself is held apart for ``execute``.

Text that comes from outside (an answer of Fuse, a database's error) is scrubbed by :func:`redact`
before it reaches a log line or an exception: credentials and phone numbers, whatever their spelling.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

__all__ = [
    "Sealed",
    "mask_personal_data",
    "mask_url",
    "redact",
    "redact_value",
    "shape",
    "shown_call_parameters",
    "shown_keys",
    "shown_suppression_list",
    "shown_url",
]

#: What stands in for a hidden value or a credential.
HIDDEN = "***"

# Phone numbers in text we did not write. The text is read twice, as written and with its escapes
# decoded, each a "class string" as long as the text: one character stands for each character of
# the text, so a match in either reading is a span of the text itself.
#
# A character stands for: a digit ("0"-"9", whatever its script or compatibility form: circled,
# superscript, fullwidth), two digits ("\x01": a circled 21, a parenthesized 10), a letter (itself
# when ASCII, "x" for another single letter, "\x03" for several), nothing (``_SILENT``: combining
# marks, format and control characters, the Hangul fillers; ``_ESCAPED``: the rest of an escape
# whose decoded character stands at its first place), or else a separator (itself when its
# compatibility form is one ASCII character, "\x04" when not).
_SILENT = "\x00"
_ESCAPED = "\x02"
_TWO_DIGITS = "\x01"
_WORD = "\x03"
_OTHER_SEPARATOR = "\x04"
# Default-ignorable letters: Hangul fillers draw nothing, like format characters.
_FILLERS = frozenset("\u115f\u1160\u3164\uffa0")


def _stands_for(char: str) -> str:
    """The class-string character that stands for ``char``."""
    if char in _FILLERS or unicodedata.category(char)[0] in "MC":
        return _SILENT
    kept = [
        part
        for part in unicodedata.normalize("NFKC", char)
        if part not in _FILLERS and unicodedata.category(part)[0] not in "MC"
    ]
    digits = [digit for digit in (unicodedata.digit(part, None) for part in kept) if digit is not None]
    if digits:
        return str(digits[0]) if len(digits) == 1 else _TWO_DIGITS
    if not kept:
        return _SILENT
    if len(kept) == 1 and kept[0].isascii():
        return kept[0]
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
# An escape a URL, a form, HTML or JSON writes for a character: "%36" (also double-encoded
# "%2536"), "%u0036", "&#54;", "&#x36;", "\u0036". Consecutive %XX bytes are UTF-8.
_ESCAPE = re.compile(
    r"%(?:25)*([0-9A-Fa-f]{2})|%[uU]([0-9A-Fa-f]{4})|&#(?:([0-9]{1,7})|[xX]([0-9A-Fa-f]{1,6}));"
    r"|\\u([0-9A-Fa-f]{4})"
)
# A hex id (a request or trace id, a hash: 16 or more hex digits of one case, letters in three
# places or more and two together in one, unlike a number with typos or a letter after each digit)
# or a UUID: never a phone number, and its digits are joined by single letters, so it stands apart
# before numbers are looked for.
_ID = re.compile(
    r"(?<![0-9A-Za-z\x01\x03])"
    r"(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-f]{16,}+|[0-9A-F]{16,}+)"
    r"(?![0-9A-Za-z\x01\x03])"
)
_LETTER_RUN = re.compile(r"[A-Za-z]+")
# A candidate number: an optional "+" and opening bracket, then digits joined by any run of
# separators, by one letter between two digits ("617555a1234": a typo), or by a letter written
# for a digit (O, o, I, l) that touches one of them ("617-555-l234"). Silent characters anywhere.
# Possessive runs: linear.
_CANDIDATE = re.compile(
    r"(?:[0-9\x01]|\+[\x00\x02]*+(?:\([\x00\x02]*+)?[0-9\x01]|\([\x00\x02]*+[0-9\x01])"
    r"(?:(?:[^0-9A-Za-z\x01\x03]*+"
    r"|[\x00\x02]*+[A-Za-z][\x00\x02]*+"
    r"|[^0-9A-Za-z\x01\x03]*+[OoIl][\x00\x02]*+"
    r"|[\x00\x02]*+[OoIl][^0-9A-Za-z\x01\x03]*+"
    r")[0-9\x01])*\x02*+"
)
_DROP_SILENT = str.maketrans("", "", _SILENT + _ESCAPED)
_DROP_DIGITS = str.maketrans("", "", "0123456789" + _TWO_DIGITS)
# What a candidate may be and still not be a phone number, as written without silent characters:
# a whole ISO 8601 date or date and time; a count grouped in thousands by commas, at most 9 digits
# (a spreadsheet shows a phone number of 10 digits as 6,175,551,234); a list of such items or of
# numbers of at most 3 digits ("error 42; 503; 404"), separated by a comma or semicolon and a space.
_ISO_8601 = (
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:[.,][0-9]{1,9})?)?"
    r"(?:[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)?)?"
)
_THOUSANDS = r"[1-9][0-9]{0,2}(?:,[0-9]{3}){1,2}"
_NOT_A_NUMBER = re.compile(rf"(?:{_ISO_8601}|{_THOUSANDS})")
_LIST_ITEM = re.compile(rf"(?:{_ISO_8601}|{_THOUSANDS}|[0-9]{{1,3}})")
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

    * Runs of whitespace become one space.
    * Every part of the text covered by a secret (overlapping ones included) becomes ``***``.
    * Every number of 7 or more digits becomes ``[redacted]``, with its ``+`` or opening bracket.
      The text is read as written and with its escapes decoded (``%36``, ``%2536``, ``%EF%BC%96``,
      ``%u0036``, ``&#54;``, ``\\u0036``); a digit is any character whose compatibility form is a
      decimal digit (other scripts', fullwidth, superscript, circled); combining marks and
      invisible characters count for nothing; digits are joined by any run of other characters
      that are not letters or digits, by one letter between two digits (``617555a1234``), or by
      a letter written for a digit that touches one (``617-555-l234``).
      Left readable: text with fewer digits (status codes, row numbers, counts, times), a whole
      ISO 8601 date or timestamp, a count grouped in thousands by commas of up to 9 digits
      (``1,000,000``), a list of those or of numbers of up to 3 digits separated by ``, `` or
      ``; `` (``42; 503; 404``), a UUID, and a hex id of 16 or more digits (one case, letters in
      three places or more, two together in one).
    * Then, and only then, a result longer than ``limit`` is cut and ends with ``…`` (scrubbed
      again: a cut date is no longer a date).

    ``redact(redact(t)) == redact(t)``. A secret that is itself part of a mask's text (``*``,
    ``redacted``) cannot be told from the mask.

    :param text: the text to scrub.
    :param limit: the most characters kept (not counting the ``…``).
    :param secrets: every form of every credential to remove (the developer key, the Authorization
        header value, its base64 token); empty ones are ignored. Whitespace in a secret matches any
        whitespace in the text.
    """
    text = " ".join(text.split())
    text = _mask_secrets(text, {" ".join(secret.split()) for secret in secrets} - {""})
    text = _mask_phone_numbers(text)
    # Scrub before cutting: a cut through a number or a secret would leave its first part readable.
    if len(text) > limit:
        text = _mask_phone_numbers(text[:limit])[:limit] + "…"
    return text


def _mask_phone_numbers(text: str) -> str:
    """``text`` with every span that is (or overlaps) a phone number in either reading masked."""
    as_written = text.translate(_CLASSES)
    decoded = _decode_escapes(text, as_written)
    readings = [as_written] if decoded == as_written else [as_written, decoded]
    spans: list[tuple[int, int, bool]] = []
    for reading in readings:
        found = _candidates(reading, keep_all=len(readings) > 1)
        if any(phone for _, _, phone in found):
            # Only then is it worth looking for ids, which may hold what looked like a number.
            apart = _ID.sub(_stand_apart, reading)
            if apart != reading:
                found = _candidates(apart, keep_all=len(readings) > 1)
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
    if "," not in written and ";" not in written and written[4:5] != "-":
        return True  # no exemption can apply: each needs one of these
    if _NOT_A_NUMBER.fullmatch(written):
        return False
    items = _LIST_SEPARATOR.split(written)
    return len(items) == 1 or not all(_LIST_ITEM.fullmatch(item) for item in items)


def _stand_apart(match: re.Match[str]) -> str:
    token = match.group()
    if "-" not in token:
        letters = _LETTER_RUN.findall(token)
        if len(letters) < 3 or max(map(len, letters)) < 2:
            return token
    return _WORD * len(token)


def _decode_escapes(text: str, as_written: str) -> str:
    """The class string of ``text`` with each escape read as the character it writes: that
    character's class at the escape's first place, ``_ESCAPED`` at the rest. Consecutive
    percent-encoded bytes are read as UTF-8; a byte that is not part of a character stands for
    a separator."""
    if "%" not in text and "&#" not in text and "\\u" not in text:
        return as_written
    pieces = []
    position = 0
    pending: list[tuple[int, int, int]] = []  # percent-encoded bytes: start, end, value

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
            span = chunk[-1][1] - chunk[0][0]
            pieces.append(_CLASSES[ord(char)] + _ESCAPED * (span - 1))
            index += len(chunk)
        pending.clear()

    for match in _ESCAPE.finditer(text):
        start, end = match.span()
        if pending and pending[-1][1] != start:
            flush()
        pieces.append(as_written[position:start])
        position = end
        byte, unit, decimal, hexadecimal, json_unit = match.groups()
        if byte is not None:
            pending.append((start, end, int(byte, 16)))
            continue
        flush()
        code = int(decimal) if decimal is not None else int(unit or hexadecimal or json_unit, 16)
        char = chr(code) if code <= 0x10FFFF else "\ufffd"
        pieces.append(_CLASSES[ord(char)] + _ESCAPED * (end - start - 1))
    flush()
    pieces.append(as_written[position:])
    return "".join(pieces)


def redact_value(value: Any, limit: int = _EXCERPT_CHARS, *, secrets: Iterable[str] = ()) -> str:
    """:func:`redact` of ``value`` as JSON text, its characters as they are: JSON's ``\\uXXXX``
    escapes would hide other scripts' digits and a key's non-ASCII characters from the scrubbing."""
    return redact(json.dumps(value, default=str, ensure_ascii=False), limit, secrets=secrets)


# A name an error may show: a short plain identifier ("error", "call_details").
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
_SHOWN_NAMES = 8


def shape(value: Any, *, secrets: Iterable[str] = ()) -> str:
    """What ``value`` is, for an error that must not quote it: its kind and size, never its text.

    An object (a dict) is described by :func:`shown_keys` (``an object with keys error, message``);
    a list and a string by their length; a whole number by itself when it has 6 digits or fewer.

    :param secrets: every form of the connection's credential: a key that holds one is not named.
    """
    if isinstance(value, dict):
        return f"an object {shown_keys(value, secrets=secrets)}" if value else "an empty object"
    if isinstance(value, list):
        return f"a list of {_counted(len(value), 'item')}"
    if isinstance(value, str):
        return f"a string of {_counted(len(value), 'character')}" if value else "an empty string"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        # Compared before it is printed: str() of a huge int may be refused.
        return str(value) if -(10**6) < value < 10**6 else "a number of more than 6 digits"
    if isinstance(value, float):
        return "a number"
    return type(value).__name__


def shown_keys(mapping: dict[Any, Any], *, secrets: Iterable[str] = ()) -> str:
    """The keys of a non-empty ``mapping`` as an error may show them: ``with keys error, message``
    (the first 8, then how many more), naming only short plain identifiers with fewer than 7 digits
    and no part of a secret, in any case; ``of 3 keys`` when none is one of those."""
    # Compared without case: a key that spells a secret in other capitals still spells it.
    hidden = [secret.casefold() for secret in secrets if secret]
    names = [
        key
        for key in mapping
        if isinstance(key, str)
        and _PLAIN_NAME.fullmatch(key)
        and redact(key) == key
        and not any(secret in key.casefold() or key.casefold() in secret for secret in hidden)
    ]
    if not names:
        return f"of {_counted(len(mapping), 'key')}"
    others = len(mapping) - min(len(names), _SHOWN_NAMES)
    more = f" and {_counted(others, 'other key')}" if others else ""
    return f"with keys {', '.join(names[:_SHOWN_NAMES])}{more}"


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _mask_secrets(text: str, secrets: set[str]) -> str:
    """Replace every stretch of ``text`` that any occurrence of any secret covers by one ``***``.

    Marking characters rather than replacing secret after secret: once ``abcd`` is replaced,
    ``cdef`` in ``abcdef`` can no longer be found and ``ef`` would stay readable.
    """
    if not secrets:
        return text
    covered = bytearray(len(text))
    for secret in secrets:
        for start, end in _covered_by(text, secret):
            covered[start:end] = b"\x01" * (end - start)
    pieces = []
    position = 0
    while position < len(text):
        masked = covered[position]
        end = covered.find(0 if masked else 1, position)
        end = len(text) if end < 0 else end
        pieces.append(HIDDEN if masked else text[position:end])
        position = end
    return "".join(pieces)


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


def _mask(secret: str) -> None:
    from airflow.sdk.log import mask_secret

    if secret:
        mask_secret(secret)


def mask_personal_data(phone_number: object, call_parameters: object) -> None:
    """Register a call's phone number (as given, and its bare digits) and parameter values as secrets."""
    if isinstance(phone_number, (str, int)) and not isinstance(phone_number, bool):
        text = str(phone_number).strip()
        number = text.split(";", 1)[0].removeprefix("tel:").removeprefix("+")
        for secret in {text, number, number[-10:]}:
            _mask(secret)
    if isinstance(call_parameters, dict):
        for value in call_parameters.values():
            if isinstance(value, str):
                _mask(value)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                _mask(str(value))
    elif isinstance(call_parameters, str):
        _mask(call_parameters)


def shown_url(url: object) -> object:
    """``url`` as it may be shown: userinfo and every query value replaced by ``***``, no fragment.

    Anything that is not a string comes back as it is; a string that is not a URL is hidden whole.
    """
    if not isinstance(url, str):
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return HIDDEN
    netloc = f"{HIDDEN}@{host}{port}" if "@" in parts.netloc else parts.netloc
    if all("=" in item for item in parts.query.split("&") if item):
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = urlencode([(name, HIDDEN) for name, _ in pairs], safe="*")
    else:  # a bare token (``?s3cr3t``) is no name: the whole query is hidden
        query = HIDDEN
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def mask_url(url: object) -> None:
    """Register the credentials a URL may carry (userinfo, query values) with the secret masker."""
    if not isinstance(url, str):
        return
    try:
        parts = urlsplit(url)
    except ValueError:
        _mask(url)
        return
    if parts.username:
        _mask(parts.username)
    if parts.password:
        _mask(parts.password)
    for item in parts.query.split("&"):
        name, equals, value = item.partition("=")
        _mask(value if equals else name)


def shown_call_parameters(parameters: object) -> object:
    """Call parameters as they may be shown: each value hidden, the names kept."""
    if isinstance(parameters, dict):
        return {name: HIDDEN for name in parameters}
    return None if parameters is None else HIDDEN


def _shown_phone_number(value: object) -> object:
    return None if value is None else HIDDEN


class Sealed:
    """A template field whose rendered value is never left on the operator's attribute.

    An assignment outside rendering (``__init__``, or a DAG author setting a template or an XComArg
    later) is what was given, and reading the attribute gives it back. An assignment while the task
    is being rendered for execution (see :func:`_rendering`) is Airflow writing a rendered value
    back: the value is registered with the secret masker (``mask``) and held apart — :meth:`value`
    gives it to ``execute`` — while the attribute, which Airflow stores as the rendered field, shows
    ``view(value)``. Rendering the view again (a second render) changes nothing.

    :param check: run on each assignment outside rendering (what is given), to refuse it early.
    """

    def __init__(
        self,
        view: Callable[[Any], Any],
        mask: Callable[[Any], None],
        check: Callable[[Any], None] | None = None,
    ) -> None:
        self.view = view
        self.mask = mask
        self.check = check
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        if obj is None:
            return self
        state = obj.__dict__
        if f"_sealed_{self.name}" in state:
            return state[f"_sealed_{self.name}"][1]
        return state.get(f"_given_{self.name}")

    def __set__(self, obj: object, value: Any) -> None:
        state = obj.__dict__
        if f"_given_{self.name}" not in state or not _rendering(obj):
            # Construction (the first assignment, even of a mapped task's operator, which is built
            # while "from mapped"), or a DAG author's assignment: what is given (a template, an XComArg).
            if self.check is not None:
                self.check(value)
            state[f"_given_{self.name}"] = value
            if value is not None:
                state[f"_ever_given_{self.name}"] = True
            state.pop(f"_sealed_{self.name}", None)
            return
        sealed = state.get(f"_sealed_{self.name}")
        if sealed is not None and value == sealed[1]:
            return
        self.mask(value)
        state[f"_sealed_{self.name}"] = (value, self.view(value))

    def was_given(self, obj: object) -> bool:
        """Whether anything but ``None`` was ever assigned outside rendering (in ``__init__`` or later):
        once given, a value that renders (or is later set to) ``None`` is missing, not absent."""
        return bool(obj.__dict__.get(f"_ever_given_{self.name}"))

    def value(self, obj: object) -> Any:
        """The rendered value (or, before any rendering, what was given)."""
        state = obj.__dict__
        if f"_sealed_{self.name}" in state:
            return state[f"_sealed_{self.name}"][0]
        return state.get(f"_given_{self.name}")


#: Set on an operator by its ``render_template_fields`` while it renders (see :func:`_rendering`).
RENDERING = "_fuse_rendering"


def _rendering(obj: object) -> bool:
    """Whether ``obj`` is being rendered for execution: Airflow renders a copy locked for execution
    (``prepare_for_execution``), a mapped task's unmapped operator, or an operator whose own
    ``render_template_fields`` is running."""
    state = obj.__dict__
    return bool(
        state.get(RENDERING)
        or getattr(obj, "_lock_for_execution", False)
        or getattr(obj, "_BaseOperator__from_mapped", False)
    )


def sealed_phone_number() -> Sealed:
    """A ``phone_number`` template field: shown as ``***`` once rendered."""
    return Sealed(_shown_phone_number, lambda value: mask_personal_data(value, None))


def sealed_call_parameters() -> Sealed:
    """A ``call_parameters`` template field: names shown, every value ``***`` once rendered."""
    return Sealed(shown_call_parameters, lambda value: mask_personal_data(None, value))


def sealed_result_url() -> Sealed:
    """A ``result_url`` template field: userinfo and query values shown as ``***`` once rendered."""
    return Sealed(shown_url, mask_url)


def shown_suppression_list(value: object) -> object:
    """A suppression list as it may be shown: a list of numbers as ``<N numbers>``; a path as itself,
    with any run of seven digits or more hidden (a number given where a path belongs); anything else
    (an ``ObjectStoragePath``, a ``SuppressionQuery``, whose text names its connection, not its SQL)
    as itself."""
    if isinstance(value, str):
        return redact(value, limit=len(value))
    if isinstance(value, (list, tuple, set, frozenset)):
        return f"<{_counted(len(value), 'number')}>"
    return value


def sealed_suppression_list(check: Callable[[Any], None] | None = None) -> Sealed:
    """A ``suppression_list`` template field: shown by :func:`shown_suppression_list` once rendered.
    Its numbers are not registered with the secret masker (a list may hold a million): no log line
    holds them. ``check`` refuses what is given (see :class:`Sealed`)."""
    return Sealed(shown_suppression_list, lambda value: None, check)
