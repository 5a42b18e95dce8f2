"""A suppression list: the numbers never to call, read whole before anything is sent.

A suppression list (a company's own do-not-call list) comes from a CSV file, an object-storage
object, a list of numbers (what an ``XComArg`` renders to) or a SQL query through any ``DbApiHook``
connection. Every number is read into one normal form, :func:`suppression_number`: the E.164 digits
as an integer, as :func:`~airflow_provider_fuse.destinations.destination_number` gives for a
destination, so ``6175551234``, ``16175551234`` and ``tel:+16175551234`` are one person. A
:class:`SuppressionList` holds them sorted in a compact array and answers membership by binary search.

A list that cannot be read whole, or holds one value that is not a number, is refused with a
:class:`~airflow_provider_fuse.exceptions.FuseValidationError` for ``suppression_list`` naming the
row: never skipped, since a skipped entry is a call to someone who asked not to be called. No
message or log line holds a number or any other value of the list. Nothing here knows HTTP; the SQL
and object-storage machinery is imported only when a source of that kind is read.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import hashlib
import io
import logging
import math
import os
import re
import sys
import threading
import time
from array import array
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, TYPE_CHECKING, Any, ClassVar, TypeAlias

from airflow_provider_fuse.destinations import DESTINATION, destination_number
from airflow_provider_fuse.exceptions import FuseCsvError, FuseValidationError
from airflow_provider_fuse.masking import redact, shown_url

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow.sdk import ObjectStoragePath

__all__ = [
    "PARAMETER",
    "SuppressionList",
    "SuppressionQuery",
    "SuppressionSource",
    "read_suppression_list",
    "suppression_number",
]

#: The parameter every error of this module names.
PARAMETER = "suppression_list"

_LOG = logging.getLogger(__name__)

#: Numbers sorted at a time while a list is built (see :func:`_sorted_distinct`): memory stays near
#: 8 bytes a number.
_RUN = 1 << 16
#: Filter slots per number (a power of two at least this many times the count) and the multiplier
#: that spreads numbers over them (Fibonacci hashing: the top bits of the 64-bit product).
_FILTER_SLOTS = 16
_MIX = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1
#: Rows fetched from a SQL cursor at a time.
_FETCH = 10_000
#: How long a :class:`SuppressionQuery` may take, unless it says otherwise.
_QUERY_TIMEOUT = timedelta(minutes=10)
#: Longer than any spelling of a phone number; a longer value is refused before it is parsed.
_MAX_CHARS = 64

# A number written with visual separators: digits, spaces, hyphens, dots and one bracketed group.
_SEPARATED_CHARS = re.compile(r"[0-9 .()\-]+")
_ONE_BRACKETED_GROUP = re.compile(r"[^()]*(?:\([1-9][0-9]*\)[^()]*)?")
_SEPARATOR_RUN = re.compile(r"[ .\-]{2,}|[ .\-]\)|\([ .\-]")
_NOT_A_DIGIT = re.compile(r"[^0-9]")
#: What a string ``suppression_list`` renders to when its template found nothing.
_RENDERED_NOTHING = ("", "None")
#: The most characters of a path or URI an error shows.
_SHOWN_CHARS = 300

#: What :func:`suppression_number` accepts, in words, for an error about a value it refuses.
ACCEPTED_SPELLINGS = (
    "a destination in one of Fuse's formats, + and an E.164 number, or either with single spaces, "
    "hyphens or dots between groups of digits and one bracketed group not starting with 0, each "
    "optionally followed by Fuse's ;ani= and ;postd= options (docs/calling-rules.md)"
)


def suppression_number(text: str) -> int:
    """The one normal form of a number on a suppression list: its E.164 digits as an integer.

    This is what :func:`~airflow_provider_fuse.destinations.destination_number` gives for a
    destination: ``6175551234``, ``16175551234`` and ``tel:+16175551234`` are one person,
    16175551234. Accepted, after surrounding whitespace:

    * every destination in one of Fuse's formats (docs/destinations.md), options included;
    * ``+`` and an E.164 number (``+16175551234``, ``+442071838750``), also as ``tel:+``;
    * any of these with visual separators as CRMs and spreadsheets write them: single spaces,
      hyphens or dots between digit groups and one bracketed group (``(617) 555-1234``,
      ``1-617-555-1234``, ``617.555.1234``, ``+1 (617) 555 1234``, ``+44 20 7183 8750``);
    * each of these followed by Fuse's options, exactly as a destination takes them
      (``+1-617-555-1234;ani=8009957586``, ``(617) 555-1234;postd=2#``).

    Refused, because reading them would give another person's number: a bracketed group starting
    with 0 (the national trunk prefix in ``+44 (0)20 7183 8750``), a bracket straight after ``+``
    (``+(617) 555-1234`` would be +61 7…), a number with a single dot
    (``6175551234.0``, a spreadsheet's decimal), letters (``x123`` extensions), an international
    prefix other than ``+`` (``00``), any digit that is not ASCII, and every other character.

    :raises ValueError: the text is none of these: ``"not a phone number: "`` and the reason (the
        value is not repeated in the message).
    """
    value = text.strip()
    if value[:1] == "+" and len(value) <= 16 and value[1:].isdigit() and value.isascii():
        # + and an E.164 number, as most exports write it: what _separated_number reads, sooner.
        return destination_number("tel:" + value)
    try:
        return destination_number(value)
    except ValueError:
        pass
    return _separated_number(value)


def _separated_number(value: str) -> int:
    """The number of ``value`` written with visual separators (see :func:`suppression_number`); Fuse's
    options after it (``;ani=``, ``;postd=``) are read by the destination grammar, on the number's
    digits."""
    value, semicolon, options = value.partition(";")
    if len(value) > _MAX_CHARS:
        raise _not_a_number(f"it is longer than {_MAX_CHARS} characters")
    international = value.startswith(("+", "tel:+"))
    body = value.removeprefix("tel:").removeprefix("+") if international else value
    if any(character.isalpha() for character in body):
        raise _not_a_number("it holds a letter (an extension, an exponent or a word)")
    if not body or _SEPARATED_CHARS.fullmatch(body) is None:
        raise _not_a_number(
            "it holds a character other than ASCII digits, spaces, hyphens, dots and brackets"
        )
    if international and body.startswith("("):
        raise _not_a_number("a bracket straight after + (a country code is never bracketed)")
    if _ONE_BRACKETED_GROUP.fullmatch(body) is None:
        raise _not_a_number(
            "brackets around something other than one group of digits not starting with 0 "
            "(a bracketed 0 is a trunk prefix)"
        )
    if _SEPARATOR_RUN.search(body) or not body[-1].isdigit() or body[0] in " .-":
        raise _not_a_number("a separator stands between no two groups of digits")
    if body.count(".") == 1:
        raise _not_a_number("a single dot makes it a decimal number (a spreadsheet's number format)")
    digits = _NOT_A_DIGIT.sub("", body)
    try:
        return destination_number(
            f"tel:+{digits}{semicolon}{options}" if international else digits + semicolon + options
        )
    except ValueError:
        raise _not_a_number(f"it is in none of the accepted forms ({ACCEPTED_SPELLINGS})") from None


def _not_a_number(reason: str) -> ValueError:
    return ValueError(f"not a phone number: {reason}")


@dataclass
class SuppressionQuery:
    """A SQL query whose rows are a suppression list, run through an Airflow ``DbApiHook`` connection.

    The first column of each row is a number (text in any spelling :func:`suppression_number`
    accepts, or an integer of its digits); other columns are ignored; a row whose first column is
    ``NULL`` is refused. The result is read with a cursor, a batch of rows at a time (a server-side
    cursor on PostgreSQL). A query that returns no rows is refused unless ``allow_empty``: a
    do-not-call table that lost its rows (truncated, or the wrong database or schema) would otherwise
    suppress nobody.

    Given as an operator's templated ``suppression_list``, ``sql`` and ``conn_id`` are rendered
    with the task (``"SELECT phone FROM {{ params.table }}"``): Airflow renders the attributes an
    object in a template field names in its ``template_fields``, and sets them, so a query is not
    frozen. Two queries are equal when their fields are; being mutable, a query is not hashable. Its
    ``repr`` shows the connection only.

    The read has a deadline, ``timeout``, counted from looking up the connection: the query is not
    started, and no batch is fetched, once it has passed; a query running when it passes is
    interrupted in the driver's own way, again until the read ends (sqlite3's ``interrupt()``,
    psycopg2's and psycopg's ``cancel()``), and the list is refused, so a query that hangs (a lock, a
    runaway recursive query) fails the task before anything is sent instead of holding it. Any other
    driver has its connection closed under it, which may not stop a running statement (a driver that
    waits on the server regardless): bound such a task with its ``execution_timeout`` as well.
    Connecting is not interrupted: it is bounded by the driver's connect timeout, which libpq leaves
    unbounded unless the connection's extra sets ``connect_timeout`` (in seconds) on PostgreSQL.

    :param conn_id: the Airflow connection; its hook must be a ``DbApiHook``. (templated)
    :param sql: the query, a single ``SELECT``. (templated)
    :param allow_empty: an empty result is a valid, empty list (logged with a warning).
    :param timeout: the deadline of the read: a ``timedelta`` or a number of seconds, positive and
        finite; 10 minutes by default.
    :raises ValueError: ``timeout`` is not a positive, finite time.
    """

    template_fields: ClassVar[Sequence[str]] = ("sql", "conn_id")

    conn_id: str
    sql: str
    allow_empty: bool = False
    timeout: timedelta | float = _QUERY_TIMEOUT

    def __post_init__(self) -> None:
        _seconds(self.timeout)

    def __repr__(self) -> str:
        # The SQL may hold literal numbers: only the connection is shown.
        allow_empty = ", allow_empty=True" if self.allow_empty else ""
        timeout = "" if self.timeout == _QUERY_TIMEOUT else f", timeout={self.timeout!r}"
        return f"SuppressionQuery(conn_id={self.conn_id!r}, sql=...{allow_empty}{timeout})"


def _seconds(timeout: object) -> float:
    """``timeout`` (a ``timedelta`` or a number of seconds) in seconds, positive and finite."""
    if isinstance(timeout, timedelta):
        seconds = timeout.total_seconds()
    elif isinstance(timeout, int | float) and not isinstance(timeout, bool):
        seconds = float(timeout)
    else:
        seconds = math.nan
    if not (0 < seconds < math.inf):
        raise ValueError(
            "SuppressionQuery timeout must be a timedelta or a number of seconds, positive and finite; "
            f"got {type(timeout).__name__}"
        )
    return seconds


def _duration(seconds: float) -> str:
    """``seconds`` as a message says it: ``10 minutes``, ``0.3 seconds``."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} minutes"
    return f"{seconds:g} seconds"


#: What :func:`read_suppression_list` reads: a local CSV path, an object-storage path or URI (an
#: ``airflow.sdk.ObjectStoragePath``, as the bulk operator's ``csv_path``), a list of numbers (what an
#: ``XComArg`` resolves to), or a :class:`SuppressionQuery`.
SuppressionSource: TypeAlias = "str | os.PathLike[str] | ObjectStoragePath | Sequence[str] | SuppressionQuery"


class SuppressionList:
    """Numbers never to call, in the normal form of :func:`suppression_number`.

    They are held sorted and distinct in a compact ``array('q')`` (8 bytes a number); ``number in
    suppression_list`` is a binary search. Build one with :func:`read_suppression_list`,
    :meth:`from_numbers` (text) or the constructor (normal-form integers). Its ``repr`` shows the
    count only.

    :param numbers: numbers already in the normal form, in any order, repeats allowed.
    """

    __slots__ = ("_filter", "_numbers", "_sha256", "_shift")

    def __init__(self, numbers: Iterable[int] = ()) -> None:
        collected = array("q")
        collected.extend(numbers)
        self._set(collected)

    @classmethod
    def from_numbers(cls, numbers: Iterable[str], *, source: str) -> SuppressionList:
        """The list of ``numbers``, each read with :func:`suppression_number`.

        An integer item is read as its decimal digits (a JSON list may hold them). Item *n* (from 1)
        is called ``f"{source} {n}"`` in errors, so ``source`` says where the items came from
        (``"suppression_list item"``), and no value is ever quoted.

        :raises FuseValidationError: for ``suppression_list``, naming the first item that is not a
            number (an empty one included).
        """
        collected = array("q")
        for position, value in enumerate(numbers, 1):
            collected.append(_number_of(value, f"{source} {position}"))
        return cls._of(collected)

    @classmethod
    def _of(cls, collected: array[int]) -> SuppressionList:
        suppression_list = cls.__new__(cls)
        suppression_list._set(collected)
        return suppression_list

    def _set(self, collected: array[int]) -> None:
        """Hold ``collected`` (sorted in runs in place) and build the filter of :meth:`__contains__`."""
        self._numbers = _sorted_distinct(collected)
        self._sha256: str | None = None
        # One bit per slot, about 16 slots a number: a number whose slot is clear is not on the list
        # (most looked-up numbers are not), so only about 1 in 16 of those needs the binary search.
        bits = max(3, (len(self._numbers) * _FILTER_SLOTS).bit_length())
        self._shift = 64 - bits
        self._filter = bytearray(1 << (bits - 3))
        for number in self._numbers:
            slot = ((number * _MIX) & _MASK) >> self._shift
            self._filter[slot >> 3] |= 1 << (slot & 7)

    def __contains__(self, number: object) -> bool:
        """Whether ``number`` (an integer in the normal form, as ``destination_number`` gives for a
        CSV row's destination) is on the list.

        :raises TypeError: ``number`` is not an integer (a destination must be normalised first).
        """
        if not isinstance(number, int) or isinstance(number, bool):
            raise TypeError("look up the normal form (destination_number of the destination), an int")
        slot = ((number * _MIX) & _MASK) >> self._shift
        if not self._filter[slot >> 3] >> (slot & 7) & 1:
            return False
        numbers = self._numbers
        index = bisect.bisect_left(numbers, number)
        return index < len(numbers) and numbers[index] == number

    def __len__(self) -> int:
        """How many distinct numbers the list holds."""
        return len(self._numbers)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SuppressionList):
            return NotImplemented
        return self._numbers == other._numbers

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SuppressionList(<{len(self._numbers)} numbers>)"

    @property
    def sha256(self) -> str:
        """The hex SHA-256 of the distinct numbers, ascending, each as 8 bytes little-endian.

        The same for the same set of numbers whatever their order, repeats or spellings, on any
        platform: what a ledger fingerprints (a changed list is a changed send).
        """
        if self._sha256 is None:
            numbers = self._numbers
            if sys.byteorder != "little":
                numbers = array("q", numbers)
                numbers.byteswap()
            self._sha256 = hashlib.sha256(numbers).hexdigest()
        return self._sha256


def read_suppression_list(source: SuppressionSource, *, log: logging.Logger | None = None) -> SuppressionList:
    """Read the whole suppression list ``source`` and log how many numbers it holds (never a value).

    * A CSV (a local path, an ``ObjectStoragePath`` or a URI with ``://``): UTF-8 (a byte-order mark
      is allowed), a header row first. The numbers are its ``destination`` column, as in a contact
      list; a file of one column may name that column anything but a number. Lines with nothing
      but whitespace are skipped and counted; every other row needs a number. A header with no data
      rows is an empty list; a file without even a header is refused (an export that failed).
    * A list (or other sequence) of numbers: see :meth:`SuppressionList.from_numbers`.
    * A :class:`SuppressionQuery`: its rows' first column.

    An empty list is a valid list, with a warning in the log, except from a query (see
    :class:`SuppressionQuery`'s ``allow_empty``).

    :raises FuseValidationError: for ``suppression_list``, naming the row or the problem and never
        quoting a value, when the list cannot be read whole: a missing or unreadable file or object,
        no header or no ``destination`` column, a value that is not a number, a connection whose hook
        is not a ``DbApiHook``, a query that fails; so the task fails before anything is sent.
    """
    log = log or _LOG
    if isinstance(source, SuppressionQuery):
        suppression_list, described = _read_query(source), f"the query on {_connection(source)}"
    elif isinstance(source, str | os.PathLike) or _is_object_storage(source):
        suppression_list, described = _read_csv_source(source, log)
    elif isinstance(source, Iterable) and not isinstance(source, bytes | bytearray | Mapping):
        items = source if isinstance(source, Sequence | Set) else list(source)
        suppression_list = SuppressionList.from_numbers(items, source="item")
        described = f"a list of {len(items)} items"
    else:
        hint = "; put numbers in a list" if isinstance(source, int | float) else ""
        raise FuseValidationError(
            PARAMETER,
            "must be a CSV path, an object storage path, a list of numbers or a SuppressionQuery, "
            f"got {type(source).__name__}{hint}",
        )
    if len(suppression_list):
        log.info("Suppression list: %d distinct numbers, read from %s.", len(suppression_list), described)
    else:
        log.warning("The suppression list read from %s is empty: no row is suppressed.", described)
    return suppression_list


def _number_of(value: object, where: str) -> int:
    """The normal form of one value of the list; ``where`` names it in the error (``"item 3"``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        kind = "None" if value is None else f"a {type(value).__name__}"
        raise FuseValidationError(
            PARAMETER,
            f"{where} is {kind}, neither text nor an integer; correct or remove it (each number is "
            "text, or an integer of its digits)",
        )
    if not value.strip():
        raise FuseValidationError(PARAMETER, f"{where} is empty; correct or remove it")
    try:
        return suppression_number(value)
    except ValueError as error:
        raise FuseValidationError(PARAMETER, f"{where} is {error}; correct or remove it") from None


def _sorted_distinct(numbers: array[int]) -> array[int]:
    """``numbers`` sorted and without repeats, in a new array; ``numbers`` is sorted in runs in place.

    Each run of :data:`_RUN` numbers is sorted as Python ints; then the value range is cut at every
    ``step``-th number of each run, so each piece holds fewer than ``step`` numbers of every run, at
    most about :data:`_RUN` in all, and each piece is sorted and made distinct on its own. At most one
    run or one piece is ever held as Python objects.
    """
    size = len(numbers)
    if size <= _RUN:
        return array("q", sorted(set(numbers)))
    runs = [(start, min(start + _RUN, size)) for start in range(0, size, _RUN)]
    for start, end in runs:
        numbers[start:end] = array("q", sorted(numbers[start:end]))
    step = max(1, _RUN // len(runs))
    cuts = sorted({numbers[index] for start, end in runs for index in range(start + step, end, step)})
    distinct = array("q")
    lower = [start for start, _ in runs]
    for cut in [*cuts, None]:
        piece = array("q")
        for run, (_, end) in enumerate(runs):
            upper = end if cut is None else bisect.bisect_left(numbers, cut, lower[run], end)
            piece.extend(numbers[lower[run] : upper])
            lower[run] = upper
        distinct.extend(sorted(set(piece)))
    return distinct


def _is_object_storage(source: object) -> bool:
    # Checked by name: a DAG with a local path never imports the object-storage stack.
    return any(cls.__name__ == "ObjectStoragePath" for cls in type(source).__mro__)


def _read_csv_source(source: Any, log: logging.Logger) -> tuple[SuppressionList, str]:
    """Read a CSV from a local path, an object-storage URI or an ``ObjectStoragePath``."""
    if (isinstance(source, str) and "://" in source) or _is_object_storage(source):
        from airflow.sdk import ObjectStoragePath

        path = ObjectStoragePath(source.strip()) if isinstance(source, str) else source
        if path.protocol not in ("file", "local"):
            return _read_remote_csv(path, log)
        source = str(path.path)
    name = os.fspath(source)
    if name.strip() in _RENDERED_NOTHING:
        raise FuseValidationError(
            PARAMETER,
            "is an empty string or 'None': a template that rendered nothing (an XCom or a variable "
            "that is not there?); give a CSV path, an object-storage URI, a list of numbers or a "
            "SuppressionQuery",
        )
    shown = _shown_path(name)
    from airflow_provider_fuse.snapshot import open_regular_file

    try:
        fd = open_regular_file(name)
    except FuseCsvError as error:
        if not os.path.lexists(name):
            raise FuseValidationError(
                PARAMETER,
                f"no such file: {shown} where the task runs. A string is read as the path of a CSV "
                "file: give a path on the worker, an object-storage URI, or give the numbers as a "
                "list (a template renders one with render_template_as_native_obj)",
            ) from None
        raise FuseValidationError(
            PARAMETER, f"{redact(error.message, _SHOWN_CHARS)}; give the path of a readable CSV file"
        ) from None
    with open(fd, "rb") as binary:
        return _read_csv(binary, shown, log), shown


def _shown_path(path: str) -> str:
    """``path`` (a local path or a URI) as an error or a log line may show it: no credential of a
    URI, no phone number (a list of numbers given as a string is read as a path)."""
    return redact(str(shown_url(path)) if "://" in path else path, _SHOWN_CHARS)


def _read_remote_csv(path: Any, log: logging.Logger) -> tuple[SuppressionList, str]:
    """Read a CSV object through the path's own ``open("rb")``, streaming; and the path as shown."""
    uri = str(path)
    shown = _shown_path(uri)
    try:
        binary = path.open("rb")
    except FileNotFoundError:
        raise FuseValidationError(
            PARAMETER, f"no such object: {shown}; check the URI and that the object exists"
        ) from None
    except Exception as error:
        detail = redact(str(error), secrets=(uri, str(getattr(path, "path", ""))))
        raise FuseValidationError(
            PARAMETER,
            f"cannot open {shown} ({type(error).__name__}: {detail}); check the URI and its connection",
        ) from None
    try:
        with binary:
            return _read_csv(binary, shown, log), shown
    except FuseValidationError:
        raise
    except Exception as error:
        # A remote stream fails in its library's own types (botocore's read timeouts are not an
        # OSError), and their text may hold the URI's credentials or the data: the type alone.
        raise FuseValidationError(
            PARAMETER,
            f"{shown} could not be read ({type(error).__name__}) before its end; check the object and "
            "its connection (a failure in transit may pass when the object is read again: clear the task)",
        ) from None


def _read_csv(binary: IO[bytes], name: str, log: logging.Logger) -> SuppressionList:
    """The numbers of the CSV ``binary`` (see :func:`read_suppression_list`); ``name`` is its path as
    errors and log lines show it."""
    with io.TextIOWrapper(binary, encoding="utf-8-sig", newline="") as text:
        return _read_rows(csv.reader(text, strict=True), name, log)


def _read_rows(reader: Iterator[list[str]], name: str, log: logging.Logger) -> SuppressionList:
    """The numbers of the CSV rows of ``reader``, the header first; ``name`` is the file's path as
    errors and log lines show it."""
    collected = array("q")
    row_number = blank = 0
    number = suppression_number
    try:
        header = next(reader, None)
        if header is None:
            raise FuseValidationError(
                PARAMETER,
                f"{name} is empty: a suppression list CSV starts with a header row (an export that "
                f"failed?); write a header ({DESTINATION}) and one number a row",
            )
        row_number = 1
        column = _number_column(header, name)
        for row in reader:
            row_number += 1
            try:
                collected.append(number(row[column]))
            except (IndexError, ValueError):
                if not any(cell.strip() for cell in row):
                    blank += 1
                    continue
                if column >= len(row):
                    raise FuseValidationError(
                        PARAMETER,
                        f"row {row_number} of {name} has no {DESTINATION} cell (fewer cells than the "
                        "header); correct or remove it",
                    ) from None
                _number_of(row[column], f"row {row_number} of {name}")  # raises, saying why
                raise
    except csv.Error as error:
        raise FuseValidationError(
            PARAMETER,
            f"row {row_number + 1} of {name} is not CSV ({redact(str(error))}); correct its quoting",
        ) from None
    except UnicodeDecodeError:
        raise FuseValidationError(
            PARAMETER, f"{name} is not UTF-8 text (near row {row_number + 1}); save it as UTF-8"
        ) from None
    except OSError as error:
        raise FuseValidationError(
            PARAMETER,
            f"{name} cannot be read ({type(error).__name__}: {error.strerror or 'I/O error'}); check the "
            "file where the task runs",
        ) from None
    if blank:
        log.info("Suppression list %s: %d blank lines skipped.", name, blank)
    return SuppressionList._of(collected)


def _number_column(header: list[str], name: str) -> int:
    """The index of the number column of ``header``: ``destination``, or the only column."""
    names = [cell.strip() for cell in header]
    if names.count(DESTINATION) > 1:
        raise FuseValidationError(
            PARAMETER, f"{name} has more than one {DESTINATION} column (row 1); keep one"
        )
    if DESTINATION in names:
        return names.index(DESTINATION)
    if len(names) != 1:
        raise FuseValidationError(
            PARAMETER,
            f"{name} has no {DESTINATION} column in the header (row 1); name the number column "
            f"{DESTINATION} (a file of one column may name it anything)",
        )
    if any(character.isdigit() for character in names[0]):
        raise FuseValidationError(
            PARAMETER,
            f"row 1 of {name} holds digits, not a column name: add a header row ({DESTINATION}) above the "
            "numbers",
        )
    return 0


def _read_query(query: SuppressionQuery) -> SuppressionList:
    """The numbers of ``query``'s rows, fetched a batch at a time."""
    from airflow.providers.common.compat.sdk import BaseHook
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    where = _connection(query)
    deadline = _Deadline(_seconds(query.timeout))
    secrets: tuple[str, ...] = ()
    try:
        connection = BaseHook.get_connection(query.conn_id)
        secrets = tuple(secret for secret in (connection.password,) if secret)
        kind = str(connection.conn_type or "").lower()
        hook = connection.get_hook()  # type: ignore[no-untyped-call]
    except Exception as error:
        raise FuseValidationError(
            PARAMETER,
            f"cannot get the hook of {where} ({type(error).__name__}: "
            f"{redact(str(error), secrets=secrets)}); define the connection where the task runs",
        ) from None
    if not isinstance(hook, DbApiHook):
        raise FuseValidationError(
            PARAMETER,
            f"the hook of {where} is {type(hook).__name__}, not a DbApiHook: give a connection to a SQL "
            "database",
        )
    collected = array("q")
    position = 0
    number = suppression_number
    try:
        with _cursor(hook, kind, deadline) as cursor:
            # Checked before each call: an interrupt with no statement running is lost.
            deadline.check(where)
            cursor.execute(query.sql)
            if cursor.description is None:
                raise FuseValidationError(
                    PARAMETER, f"the query on {where} returns no result set (not a SELECT); give one SELECT"
                )
            while not deadline.check(where) and (batch := cursor.fetchmany(_FETCH)):
                for row in batch:
                    position += 1
                    value = row[0] if len(row) else None
                    if type(value) is str:
                        with contextlib.suppress(ValueError):
                            collected.append(number(value))
                            continue
                    if value is None:
                        raise FuseValidationError(
                            PARAMETER,
                            f"query row {position} has no number (NULL); correct it, or leave such rows "
                            "out in the SQL (IS NOT NULL) if NULL means there is none",
                        )
                    collected.append(_number_of(value, f"query row {position}"))
        if not position and not query.allow_empty:
            raise FuseValidationError(
                PARAMETER,
                f"the query on {where} returned no rows, so it would suppress nobody; check the query "
                "and its database, or give SuppressionQuery(..., allow_empty=True) if the list may be "
                "empty",
            )
    except FuseValidationError:
        raise
    except Exception as error:
        if deadline.passed:
            raise deadline.refusal(where) from None
        # Named by its class and code only: drivers quote the SQL in the text (SQLite's 'near ...',
        # Postgres's 'LINE 1: ...'), and the SQL may hold numbers, names or addresses.
        raise FuseValidationError(
            PARAMETER,
            f"the query on {where} failed ({_error_name(error)}); run it in the database to see why "
            "(the driver's message is not shown, as it may quote the SQL), and check the connection",
        ) from None
    if deadline.passed:
        # The rows came in, but after the deadline (an interrupt that came too late): the rule holds.
        raise deadline.refusal(where)
    return SuppressionList._of(collected)


def _error_name(error: Exception) -> str:
    """``error`` as a refusal names it: its class and the code its driver gives (a SQLSTATE on
    PostgreSQL and MySQL, a result code name on SQLite, a MySQL error number), never its text."""
    name = type(error).__name__
    sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate.isalnum():
        return f"{name}, SQLSTATE {sqlstate}"
    result_code = getattr(error, "sqlite_errorname", None)
    if isinstance(result_code, str) and result_code.isidentifier():
        return f"{name}, {result_code}"
    errno = getattr(error, "errno", None)
    if isinstance(errno, int) and not isinstance(errno, bool):
        return f"{name}, error {errno}"
    return name


def _connection(query: SuppressionQuery) -> str:
    """The connection of ``query`` as errors and log lines name it."""
    return f"connection {redact(repr(query.conn_id), _SHOWN_CHARS)}"


@contextlib.contextmanager
def _cursor(hook: Any, kind: str, deadline: _Deadline | None = None) -> Iterator[Any]:
    """A cursor of a new connection of ``hook``, both closed after; server-side on PostgreSQL; the
    connection interrupted when ``deadline`` passes while it is open."""
    connection = hook.get_conn()
    try:
        with deadline.watching(connection) if deadline else contextlib.nullcontext():
            if kind in ("postgres", "postgresql"):
                # A client-side cursor holds the whole result in the driver's memory.
                cursor = connection.cursor(name="fuse_suppression_list")
                cursor.itersize = _FETCH
            else:
                cursor = connection.cursor()
            try:
                yield cursor
            finally:
                cursor.close()
    finally:
        connection.close()


class _Deadline:
    """The deadline of one query's read, ``seconds`` from now; :meth:`watching` interrupts a
    connection when it passes."""

    #: How often the watchdog interrupts again once the deadline has passed, until the read ends.
    AGAIN = 0.05

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._watching = False
        self.passed = False

    def over(self) -> bool:
        """Whether the deadline has passed (and :attr:`passed` is set)."""
        if time.monotonic() >= self._at:
            self.passed = True
        return self.passed

    def check(self, where: str) -> bool:
        """``False``; the refusal when the deadline has passed."""
        if self.over():
            raise self.refusal(where)
        return False

    @contextlib.contextmanager
    def watching(self, connection: Any) -> Iterator[None]:
        """While the body runs, a watchdog thread interrupts ``connection`` (:func:`_interrupt`) once
        the deadline passes, and again every :attr:`AGAIN` seconds until the body ends (an interrupt
        that finds no statement running is lost), and marks it :attr:`passed`; never after the body
        has ended, so a closed or reused connection is not touched."""
        ended = threading.Event()

        def expire() -> None:
            delay = max(0.0, self._at - time.monotonic())
            while not ended.wait(delay):
                with self._lock:
                    if not self._watching:
                        return
                    self.passed = True
                    _interrupt(connection)
                delay = self.AGAIN

        watchdog = threading.Thread(target=expire, name="fuse-suppression-deadline", daemon=True)
        self._watching = True
        watchdog.start()
        try:
            yield
        finally:
            with self._lock:
                self._watching = False
            ended.set()
            watchdog.join()

    def refusal(self, where: str) -> FuseValidationError:
        return FuseValidationError(
            PARAMETER,
            f"the query on {where} did not finish within {_duration(self.seconds)}, so it was "
            "interrupted; make it faster (an index, a lock it waits for), or give "
            "SuppressionQuery(..., timeout=...) a longer time",
        )


def _interrupt(connection: Any) -> None:
    """Stop the statement running on the DB-API ``connection`` from another thread, in the driver's
    own way: sqlite3's ``interrupt()``, psycopg2's and psycopg's ``cancel()``; for any other driver,
    or where that fails, close the connection under it."""
    for name in ("interrupt", "cancel"):
        method = getattr(connection, name, None)
        if callable(method):
            try:
                method()
            except Exception:  # the fallback below still stops the query
                break
            else:
                return
    with contextlib.suppress(Exception):
        connection.close()
