"""The sandbox's own reading of Fuse's input rules: form fields, destinations and the CSV.

Deliberately independent of the provider's preflight: the sandbox is the referee the provider is
tested against, so it must not share its code. Every failure is a :class:`SandboxError` carrying the
status and the Fuse-style message to answer.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_fuse.sandbox.assumptions import SandboxAssumptions

__all__ = [
    "REATTEMPT_WAIT_REQUIRED",
    "CsvContacts",
    "QueueParams",
    "SandboxError",
    "bad_rows_message",
    "count_rows",
    "parse_call_parameters",
    "parse_destination",
    "parse_id",
    "read_contacts",
    "validate_params",
]

#: The one error message Fuse documents, word for word.
REATTEMPT_WAIT_REQUIRED = "The reattempt_wait parameter must be supplied when max_attempts is greater than 1."

_ASCII_DIGITS = frozenset("0123456789")
_INTEGER = re.compile(r"[0-9]{1,12}")
_MAX_ROWS_NAMED = 10


class SandboxError(Exception):
    """A request Fuse would refuse: answer ``status_code`` with ``{"error": message}``."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


@dataclass(frozen=True)
class QueueParams:
    """The validated scheduling fields shared by ``bulk_queue`` and ``queue``.

    ``start_timestamp``/``end_timestamp`` are as sent (``None`` when absent); ``max_attempts``
    defaults to 1.
    """

    start_timestamp: int | None
    end_timestamp: int | None
    max_attempts: int
    reattempt_wait: int | None
    result_url: str | None
    is_pci: bool


@dataclass(frozen=True)
class CsvContacts:
    """A decoded contacts CSV: the header, the good rows and the numbers of the bad ones.

    Row numbers count records the way a spreadsheet shows them: the header is row 1.
    ``contacts`` holds ``(row number, destination, variables)``; ``rows`` counts non-blank data rows.
    """

    header: list[str]
    rows: int
    contacts: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)
    bad_rows: list[int] = field(default_factory=list)


def parse_id(raw: str) -> int:
    """An application/deployment id from the path.

    :raises SandboxError: 400 when it is not a plain decimal number.
    """
    if not _INTEGER.fullmatch(raw):
        raise SandboxError(400, "The application_id and deployment_id must be numeric.")
    return int(raw)


def _digits(text: str) -> bool:
    # Not str.isdigit(): that is true of Arabic-Indic, fullwidth and other Unicode digits too.
    return bool(text) and set(text) <= _ASCII_DIGITS


def _is_number(number: str) -> bool:
    """10 digits, 11 digits starting with 1, or ``tel:+`` and an E.164 number (8-15 digits, not 0...)."""
    if number.startswith("tel:+"):
        e164 = number[len("tel:+") :]
        return _digits(e164) and 8 <= len(e164) <= 15 and e164[0] != "0"
    return _digits(number) and (len(number) == 10 or (len(number) == 11 and number[0] == "1"))


def _is_option(key: str, value: str) -> bool:
    if key == "ani":  # a caller id: 10 to 15 digits, optionally after a +
        digits = value.removeprefix("+")
        return _digits(digits) and 10 <= len(digits) <= 15
    if key == "postd":  # DTMF tones sent after connect: digits, * and #
        return bool(value) and set(value) <= _ASCII_DIGITS | {"*", "#"}
    return False


def parse_destination(value: str) -> str | None:
    """The phone number part of a Fuse destination, or ``None`` if the value is not one.

    Accepted (the table of docs/destinations.md): ``6175551234`` (10 digits), ``16175551234``
    (11 digits starting with 1), ``tel:+16175551234`` (an E.164 number of 8 to 15 digits, not starting
    with 0), each optionally followed by ``;ani=`` and 10 to 15 digits (a ``+`` allowed first) and/or
    ``;postd=`` and digits, ``*`` or ``#`` — each at most once, in either order. ASCII digits only;
    nothing else, not even surrounding spaces.
    """
    number, *options = value.split(";")
    if not _is_number(number):
        return None
    seen: set[str] = set()
    for option in options:
        key, sep, rest = option.partition("=")
        if key in seen or not sep or not _is_option(key, rest):
            return None
        seen.add(key)
    return number


def _integer(fields: Mapping[str, str], name: str, message: str) -> int | None:
    raw = fields.get(name, "")
    if raw == "":
        return None
    if not _INTEGER.fullmatch(raw):
        raise SandboxError(400, message)
    return int(raw)


def validate_params(fields: Mapping[str, str], now: float, assumptions: SandboxAssumptions) -> QueueParams:
    """Check the scheduling fields; an empty string counts as absent.

    :param fields: the form fields as received.
    :param now: the sandbox time, for the ``past_end`` switch.
    :raises SandboxError: 400 naming the first bad field; 403 for ``is_pci=1`` under ``is_pci="forbid"``.
    """
    start = _integer(fields, "start_timestamp", "The start_timestamp parameter must be a unix timestamp.")
    end = _integer(fields, "end_timestamp", "The end_timestamp parameter must be a unix timestamp.")
    if start is not None and end is not None and end <= start:
        raise SandboxError(400, "The end_timestamp parameter must be later than the start_timestamp.")
    if end is not None and assumptions.past_end == "reject" and end <= now:
        raise SandboxError(400, "The end_timestamp parameter must be in the future.")
    attempts_message = "The max_attempts parameter must be an integer between 1 and 10."
    max_attempts = _integer(fields, "max_attempts", attempts_message)
    if max_attempts is not None and not 1 <= max_attempts <= 10:
        raise SandboxError(400, attempts_message)
    wait_message = "The reattempt_wait parameter must be an integer between 60 and 86400."
    reattempt_wait = _integer(fields, "reattempt_wait", wait_message)
    if reattempt_wait is not None and not 60 <= reattempt_wait <= 86400:
        raise SandboxError(400, wait_message)
    if (max_attempts or 1) > 1 and reattempt_wait is None:
        raise SandboxError(400, REATTEMPT_WAIT_REQUIRED)
    result_url = fields.get("result_url") or None
    if result_url is not None:
        parts = urlsplit(result_url)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or any(c.isspace() for c in result_url)
        ):
            raise SandboxError(400, "The result_url parameter must be an absolute http or https URL.")
    is_pci = fields.get("is_pci", "")
    if is_pci not in ("", "0", "1"):
        raise SandboxError(400, "The is_pci parameter must be 0 or 1.")
    if is_pci == "1" and assumptions.is_pci == "forbid":
        raise SandboxError(403, "This account does not have access to the secure environment (is_pci).")
    return QueueParams(
        start_timestamp=start,
        end_timestamp=end,
        max_attempts=max_attempts or 1,
        reattempt_wait=reattempt_wait,
        result_url=result_url,
        is_pci=is_pci == "1",
    )


def parse_call_parameters(raw: str) -> dict[str, Any]:
    """The ``call_parameters`` field of ``queue``: a JSON object (empty string: no parameters).

    :raises SandboxError: 400 when it is not a JSON object.
    """
    if raw == "":
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise SandboxError(400, "The call_parameters parameter must be a JSON object.")
    return value


def _decode(data: bytes, assumptions: SandboxAssumptions) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        if assumptions.bom == "reject":
            raise SandboxError(400, "The csv file must not start with a byte order mark.")
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SandboxError(400, "The csv file must be UTF-8 encoded.") from None


def count_rows(data: bytes) -> int:
    """Best-effort count of non-blank data rows, for the upload record (0 when unreadable)."""
    try:
        text = data.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
        records = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    except (UnicodeDecodeError, csv.Error):
        return 0
    return max(len(records) - 1, 0)


def read_contacts(data: bytes, assumptions: SandboxAssumptions) -> CsvContacts:
    """Decode and check a contacts CSV.

    File-level problems raise; row-level problems (wrong cell count, bad destination) are listed in
    :attr:`CsvContacts.bad_rows` for the caller's ``bad_rows`` policy. Blank lines are ignored.

    :raises SandboxError: 400 for encoding, BOM, parse, header, empty and size problems.
    """
    text = _decode(data, assumptions)
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        raise SandboxError(400, "The csv file could not be parsed.") from None
    numbered = [(number, record) for number, record in enumerate(records, start=1) if record]
    if not numbered:
        raise SandboxError(400, "The csv file is empty.")
    _, header = numbered[0]
    names = [h.strip().lower() for h in header] if assumptions.header_case == "insensitive" else list(header)
    if "destination" not in names:
        raise SandboxError(400, "The csv file must have a destination column in its header row.")
    column = names.index("destination")
    if column != 0 and assumptions.destination_position == "first":
        raise SandboxError(400, "The destination column must be the first column of the csv file.")
    data_rows = numbered[1:]
    if not data_rows and assumptions.empty_csv == "reject":
        raise SandboxError(400, "The csv file contains no rows.")
    if assumptions.max_rows is not None and len(data_rows) > assumptions.max_rows:
        raise SandboxError(400, f"The csv file has more than {assumptions.max_rows} rows.")
    result = CsvContacts(header=list(header), rows=len(data_rows))
    for number, record in data_rows:
        if len(record) != len(header) or parse_destination(record[column]) is None:
            result.bad_rows.append(number)
            continue
        variables = {
            name: value for i, (name, value) in enumerate(zip(header, record, strict=True)) if i != column
        }
        result.contacts.append((number, record[column], variables))
    return result


def bad_rows_message(bad_rows: list[int]) -> str:
    """The 400 message naming the first bad row numbers (never their contents)."""
    shown = ", ".join(str(n) for n in bad_rows[:_MAX_ROWS_NAMED])
    more = f" and {len(bad_rows) - _MAX_ROWS_NAMED} more" if len(bad_rows) > _MAX_ROWS_NAMED else ""
    noun = "row" if len(bad_rows) == 1 else "rows"
    return (
        f"The csv file has {len(bad_rows)} invalid {noun} (bad destination or cell count):"
        f" {noun} {shown}{more}."
    )
