"""The request fields of Fuse's queueing endpoints: validated and turned into form values.

This is the one place where the rules Fuse documents for ``bulk_queue`` (and ``queue``) live. The hook
applies them before every request and the operator before it reads the CSV, so bad input fails
early, names the parameter, and nothing is sent. :data:`QUEUE_FIELD_NAMES` is the one list of the
queueing fields' names. Nothing here knows HTTP or Airflow.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_fuse.destinations import ACCEPTED_FORMS, DESTINATION_FORMAT
from airflow_provider_fuse.exceptions import FuseValidationError
from airflow_provider_fuse.masking import redact

__all__ = [
    "QUEUE_FIELD_NAMES",
    "CallParameterValue",
    "QueueFields",
    "TimestampLike",
    "to_call_parameters",
    "to_phone_number",
    "to_positive_id",
    "to_unix_timestamp",
]

#: What a timestamp argument may be: unix seconds, a numeric string, an aware datetime, or an
#: ISO-8601 string with an offset (``T`` or a space between date and time).
TimestampLike = int | float | str | datetime

MAX_ATTEMPTS_RANGE = (1, 10)
REATTEMPT_WAIT_RANGE = (60, 86400)

#: Timestamps lie in [1970-01-01T00:00:01Z, 2100-01-01T00:00:00Z): a bound on the value, not on "now",
#: so that every accepted timestamp is a real date (and a milliseconds value is caught).
TIMESTAMP_RANGE = (1, 4_102_444_800)
_LATEST = "2100-01-01T00:00:00Z"

# ASCII digits, spelled [0-9]: in a str pattern \d is any Unicode digit, which int() and float() accept.
_INTEGER = re.compile(r"\s*\+?[0-9]+\s*")
#: The most digits of a number an error shows; a longer one is described by its size: it may be a
#: phone number given in the wrong field, or rendered there by a template.
_SHOWN_DIGITS = 6
_NUMBER = re.compile(r"\s*\+?[0-9]+(?:\.[0-9]*)?\s*")


def to_positive_id(parameter: str, value: object) -> int:
    """Return ``value`` as a positive integer id (an int or a string of digits).

    :raises FuseValidationError: naming ``parameter`` otherwise.
    """
    number = _to_int(parameter, value)
    if number < 1:
        raise FuseValidationError(parameter, f"must be a positive integer, got {_shown(number)}")
    return number


def to_unix_timestamp(parameter: str, value: TimestampLike) -> int:
    """Return ``value`` as whole unix seconds, within :data:`TIMESTAMP_RANGE`.

    Accepts int/float unix seconds, numeric strings, timezone-aware datetimes and ISO-8601 strings
    with an offset, such as ``2026-11-26 00:00:00+00:00`` (what ``{{ data_interval_end }}`` renders).

    :raises FuseValidationError: for a naive datetime, an empty or ``None`` rendering, a time not
        after 1970 or not before 2100 (a value whose thousandth part is in range is named as looking
        like milliseconds), or anything else.
    """
    if isinstance(value, bool):
        raise FuseValidationError(parameter, "must be unix seconds or a datetime, not a bool")
    if isinstance(value, datetime):
        return _bounded(parameter, _aware_seconds(parameter, value), numeric=False)
    if isinstance(value, int):
        seconds: float = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise FuseValidationError(parameter, f"must be a finite number of unix seconds, got {value}")
        seconds = value
    elif isinstance(value, str):
        stripped = value.strip()
        if _NUMBER.fullmatch(stripped):
            seconds = float(stripped)
        else:
            return _bounded(parameter, _parse_timestamp_text(parameter, stripped), numeric=False)
    else:
        raise FuseValidationError(
            parameter, f"must be unix seconds, an ISO-8601 string or a datetime, not {type(value).__name__}"
        )
    return _bounded(parameter, seconds, numeric=True)


def _bounded(parameter: str, seconds: float, *, numeric: bool) -> int:
    """``seconds`` as an int when in :data:`TIMESTAMP_RANGE`; ``numeric``: it was given as a number."""
    # Only comparisons until the value is known to be in range: an int may be too large for a float
    # (or for str()), and a long enough numeric string gives float("inf").
    low, high = TIMESTAMP_RANGE
    if seconds >= high:
        hint = ""
        if numeric and seconds < high * 1000:
            hint = " — it looks like milliseconds: give unix seconds (divide by 1000)"
        raise FuseValidationError(
            parameter, f"must be before {_LATEST} ({high}), got {_shown(seconds)}{hint}"
        )
    if seconds < low:
        raise FuseValidationError(parameter, f"must be after 1970-01-01T00:00:00Z, got {_shown(seconds)}")
    return int(seconds)


def _shown(number: float) -> str:
    """``number`` for an error: itself when no run of its digits is longer than :data:`_SHOWN_DIGITS`,
    else its size only (never its digits)."""
    if not -(10**20) < number < 10**20:  # str() of a huge int may be refused, and no date is that far
        return "a number of more than 20 digits"
    text = str(number)
    if "e" in text or re.search(rf"[0-9]{{{_SHOWN_DIGITS + 1},}}", text):
        return f"a number of {len(str(int(abs(number))))} digits"
    return text


def _parse_timestamp_text(parameter: str, stripped: str) -> float:
    """The unix seconds of an ISO-8601 time with an offset (``stripped`` of surrounding space)."""
    if not stripped or stripped == "None":
        raise FuseValidationError(
            parameter, f"rendered {stripped or 'nothing'!r}; give unix seconds or an ISO-8601 time"
        )
    iso = stripped[:-1] + "+00:00" if stripped.endswith(("Z", "z")) else stripped
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        raise FuseValidationError(
            parameter, "is neither unix seconds nor an ISO-8601 time such as 2026-11-26T09:00:00+00:00"
        ) from None
    return _aware_seconds(parameter, parsed)


def _aware_seconds(parameter: str, value: datetime) -> float:
    if value.tzinfo is None or value.utcoffset() is None:
        raise FuseValidationError(
            parameter, "is a naive datetime; give a timezone (for example +00:00) so the time is exact"
        )
    return value.timestamp()


def _to_int(parameter: str, value: object) -> int:
    if isinstance(value, bool):
        raise FuseValidationError(parameter, "must be an integer, not a bool")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        try:
            return int(value)
        except ValueError:  # more digits than Python converts (4,300 by default)
            raise FuseValidationError(
                parameter, "must be an integer, got a number of thousands of digits"
            ) from None
    raise FuseValidationError(parameter, f"must be an integer, got {_describe(value)}")


def _describe(value: object) -> str:
    """What ``value`` is, for an error: never a string's text (it may be a phone number, or anything
    a template rendered), only its size; ``'None'`` is named (a template that rendered nothing)."""
    if isinstance(value, str):
        if not value.strip():
            return "an empty string"
        if value.strip() == "None":
            return "'None'"
        return f"a string of {len(value)} character{'' if len(value) == 1 else 's'}"
    return type(value).__name__


def _in_range(parameter: str, value: object, bounds: tuple[int, int]) -> int:
    number = _to_int(parameter, value)
    low, high = bounds
    if not low <= number <= high:
        raise FuseValidationError(parameter, f"must be between {low} and {high}, got {_shown(number)}")
    return number


@dataclass(frozen=True)
class QueueFields:
    """The optional fields of a queueing request, validated.

    Build it with :meth:`validate`; :meth:`form_fields` gives the multipart values exactly as Fuse
    documents them: only the fields that were given, integers as decimal strings, is_pci as 0/1.
    """

    start_timestamp: int | None = None
    end_timestamp: int | None = None
    max_attempts: int | None = None
    reattempt_wait: int | None = None
    result_url: str | None = None
    is_pci: bool | None = None

    @classmethod
    def validate(
        cls,
        *,
        start_timestamp: TimestampLike | None = None,
        end_timestamp: TimestampLike | None = None,
        max_attempts: int | str | None = None,
        reattempt_wait: int | str | None = None,
        result_url: str | None = None,
        is_pci: bool | int | None = None,
        now: float | None = None,
        check_open: bool = True,
    ) -> QueueFields:
        """Check every rule Fuse documents and return the normalised fields.

        Rules: max_attempts 1–10; reattempt_wait 60–86400 and required when max_attempts > 1; end
        after start and — with ``check_open`` — not already past (:meth:`check_open`); result_url
        an absolute http(s) URL; is_pci a bool or 0/1.

        :raises FuseValidationError: naming the first parameter that breaks a rule.
        """
        start = None if start_timestamp is None else to_unix_timestamp("start_timestamp", start_timestamp)
        end = None if end_timestamp is None else to_unix_timestamp("end_timestamp", end_timestamp)
        if start is not None and end is not None and end <= start:
            same = (
                " (they are the same time: on Airflow 3 a scheduled run's data interval may have no "
                "length, data_interval_start equal to data_interval_end; give an end later than the start)"
                if end == start
                else ""
            )
            raise FuseValidationError(
                "end_timestamp",
                f"must be after start_timestamp ({_iso(end)} is not after {_iso(start)}){same}",
            )

        attempts = (
            None if max_attempts is None else _in_range("max_attempts", max_attempts, MAX_ATTEMPTS_RANGE)
        )
        wait = (
            None
            if reattempt_wait is None
            else _in_range("reattempt_wait", reattempt_wait, REATTEMPT_WAIT_RANGE)
        )
        if attempts is not None and attempts > 1 and wait is None:
            raise FuseValidationError(
                "reattempt_wait", "must be supplied when max_attempts is greater than 1 (60 to 86400 seconds)"
            )

        if result_url is not None:
            _check_result_url(result_url)

        pci = None if is_pci is None else _to_pci(is_pci)
        fields = cls(start, end, attempts, wait, result_url, pci)
        if check_open:
            fields.check_open(now)
        return fields

    def check_open(self, now: float | None = None) -> None:
        """Check that the dialing window has not already closed at ``now`` (default: the current time).

        :raises FuseValidationError: when ``end_timestamp`` is past: no call could be made.
        """
        current = time.time() if now is None else now
        if self.end_timestamp is not None and self.end_timestamp <= current:
            raise FuseValidationError(
                "end_timestamp",
                f"is already past ({_iso(self.end_timestamp)}, now {_iso(int(current))}): no call could be "
                "made",
            )

    def form_fields(self) -> dict[str, str]:
        """The given fields as multipart form values, in the order Fuse documents them."""
        values: dict[str, str] = {}
        for name, value in self.arguments().items():
            if isinstance(value, bool):
                values[name] = "1" if value else "0"
            elif value is not None:
                values[name] = str(value)
        return values

    def arguments(self) -> dict[str, Any]:
        """Every field by name, ``None`` for one not given: ``validate(**fields.arguments())`` gives
        the same fields back."""
        return {name: getattr(self, name) for name in QUEUE_FIELD_NAMES}

    def describe_window(self) -> str:
        """A short human description of the dialing window, for log lines."""
        start = "now" if self.start_timestamp is None else _iso(self.start_timestamp)
        end = "open" if self.end_timestamp is None else _iso(self.end_timestamp)
        return f"{start} → {end}"


#: The optional fields of a queueing request, in the order Fuse documents them: the one list of their
#: names (the fields of :class:`QueueFields`), which the operators' templated fields derive from.
QUEUE_FIELD_NAMES: tuple[str, ...] = tuple(field.name for field in dataclasses.fields(QueueFields))


def _iso(seconds: int) -> str:
    # Total, for a log line: validate() keeps timestamps in TIMESTAMP_RANGE, but the class can be
    # built directly.
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat()
    except (OverflowError, OSError, ValueError):
        return f"{_shown(seconds)} (unix seconds)"


def _check_result_url(url: object) -> None:
    """An absolute http(s) URL with a host, a port (if any) from 1 to 65535, no surrounding space
    and no control character (a CR/LF would split the header or the line it is written into)."""
    if not isinstance(url, str):
        raise FuseValidationError("result_url", f"must be a URL string, got {_describe(url)}")
    try:
        parts = urlsplit(url)
        valid = (
            parts.scheme in ("http", "https")
            and bool(parts.hostname)
            and parts.port != 0  # urlsplit refuses a port past 65535, or not a number, itself
            and url == url.strip()
            and not any(unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in url)
        )
    except ValueError:  # an unclosed or invalid IPv6 bracket, an invalid port
        valid = False
    if not valid:
        raise FuseValidationError(
            "result_url",
            "must be an absolute http(s) URL such as https://example.com/fuse-results (a port from 1 "
            "to 65535, no control character)",
        )


def _to_pci(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise FuseValidationError("is_pci", f"must be a bool or 0/1, got {_describe(value)}")


# --- queue: one call ---------------------------------------------------------------------------------

#: What a value of ``call_parameters`` may be: a JSON scalar.
CallParameterValue = str | int | float | bool | None

# The most digits of an int JSON writes (Python's default int/str conversion limit).
_MAX_INT_DIGITS = 4300
_INT_BOUND = 10**_MAX_INT_DIGITS


def to_phone_number(value: object) -> str:
    """Return ``value`` as a destination in one of Fuse's formats (surrounding whitespace removed).

    The formats are the CSV's, one grammar (:data:`~airflow_provider_fuse.destinations.DESTINATION_FORMAT`,
    docs/destinations.md): ``6175551234``, ``16175551234``, ``tel:+16175551234``, optionally with
    ``;ani=`` and ``;postd=``; ASCII digits only. An int is read as its decimal digits (so 10 digits,
    or 11 starting with 1). The number itself never appears in the error.

    :raises FuseValidationError: naming ``phone_number``.
    """
    not_a_format = FuseValidationError("phone_number", f"is not in one of Fuse's formats: {ACCEPTED_FORMS}")
    if isinstance(value, int) and not isinstance(value, bool):
        # Bounded before it is printed: str() refuses an int of thousands of digits, and no
        # destination has more than 11.
        if not 0 <= value < 10**12:
            raise not_a_format
        value = str(value)
    if not isinstance(value, str) or not value.strip() or value.strip() == "None":
        shown = "nothing" if isinstance(value, str) else type(value).__name__
        raise FuseValidationError("phone_number", f"must be a phone number string, got {shown}")
    number = value.strip()
    if DESTINATION_FORMAT.fullmatch(number) is None:
        raise not_a_format
    return number


def to_call_parameters(value: object) -> dict[str, CallParameterValue]:
    """Return ``value`` as Fuse's ``call_parameters``: names to JSON scalars.

    Accepts a mapping of non-empty string names to str, int (of at most 4300 digits: JSON must be
    able to write it), float (finite), bool or None, or a string holding such a JSON object (what a
    non-native template renders). Values are never repeated in an error: they are personal data; a
    name is shown redacted, a character that cannot be written as UTF-8 (a lone surrogate) escaped.

    :raises FuseValidationError: naming ``call_parameters`` (and the offending name).
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            raise FuseValidationError("call_parameters", "is a string that is not a JSON object") from None
    if not isinstance(value, dict):
        raise FuseValidationError(
            "call_parameters", f"must be a dict of names to values, got {type(value).__name__}"
        )
    checked: dict[str, CallParameterValue] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not name.strip():
            got = "an empty string" if isinstance(name, str) else type(name).__name__
            raise FuseValidationError("call_parameters", f"names must be non-empty strings, got {got}")
        # The name as shown: a phone number used as a name is masked like any other, and a lone
        # surrogate is escaped (a UTF-8 log line could not hold it).
        label = f"call_parameters.{redact(name.encode('utf-8', 'backslashreplace').decode(), 80)}"
        if isinstance(item, float) and not math.isfinite(item):
            raise FuseValidationError(label, "must be a finite number")
        if item is not None and not isinstance(item, (str, int, float, bool)):
            raise FuseValidationError(
                label,
                f"must be a string, number, bool or None, not {type(item).__name__}",
            )
        if isinstance(item, int) and not -_INT_BOUND < item < _INT_BOUND:
            raise FuseValidationError(label, f"must be a number of at most {_MAX_INT_DIGITS} digits")
        checked[name] = item
    return checked
