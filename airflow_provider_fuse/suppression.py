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
import os
import re
import sys
from array import array
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, TypeAlias

from airflow_provider_fuse.destinations import DESTINATION, destination_number
from airflow_provider_fuse.exceptions import FuseCsvError, FuseValidationError

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
#: Longer than any spelling of a phone number; a longer value is refused before it is parsed.
_MAX_CHARS = 64

# A number written with visual separators: digits, spaces, hyphens, dots and one bracketed group.
_SEPARATED_CHARS = re.compile(r"[0-9 .()\-]+")
_ONE_BRACKETED_GROUP = re.compile(r"[^()]*(?:\([1-9][0-9]*\)[^()]*)?")
_SEPARATOR_RUN = re.compile(r"[ .\-]{2,}|[ .\-]\)|\([ .\-]")
_NOT_A_DIGIT = re.compile(r"[^0-9]")

#: What :func:`suppression_number` accepts, in words, for an error about a value it refuses.
ACCEPTED_SPELLINGS = (
    "a destination in one of Fuse's formats, + and an E.164 number, or either with single spaces, "
    "hyphens or dots between groups of digits and one bracketed group not starting with 0 "
    "(docs/calling-rules.md)"
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
      ``1-617-555-1234``, ``617.555.1234``, ``+1 (617) 555 1234``, ``+44 20 7183 8750``).

    Refused, because reading them would give another person's number: a bracketed group starting
    with 0 (the national trunk prefix in ``+44 (0)20 7183 8750``), a bracket straight after ``+``
    (``+(617) 555-1234`` would be +61 7…), a number with a single dot
    (``6175551234.0``, a spreadsheet's decimal), letters (``x123`` extensions), an international
    prefix other than ``+`` (``00``), any digit that is not ASCII, and every other character.

    :raises ValueError: the text is none of these (the value is not repeated in the message).
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
    """The number of ``value`` written with visual separators (see :func:`suppression_number`)."""
    if len(value) > _MAX_CHARS:
        raise ValueError("too long for a phone number")
    international = value.startswith(("+", "tel:+"))
    body = value.removeprefix("tel:").removeprefix("+") if international else value
    if not body or _SEPARATED_CHARS.fullmatch(body) is None:
        raise ValueError(f"not a phone number: {ACCEPTED_SPELLINGS}")
    if international and body.startswith("("):
        raise ValueError("a bracket straight after +: the country code is not bracketed")
    if _ONE_BRACKETED_GROUP.fullmatch(body) is None:
        raise ValueError("brackets around anything but one group of digits not starting with 0")
    if _SEPARATOR_RUN.search(body) or not body[-1].isdigit() or body[0] in " .-":
        raise ValueError("a separator that stands between no two groups of digits")
    if body.count(".") == 1:
        raise ValueError("a single dot: a decimal number, not a phone number")
    digits = _NOT_A_DIGIT.sub("", body)
    try:
        return destination_number(f"tel:+{digits}" if international else digits)
    except ValueError:
        raise ValueError(f"not a phone number: {ACCEPTED_SPELLINGS}") from None


@dataclass(frozen=True)
class SuppressionQuery:
    """A SQL query whose rows are a suppression list, run through an Airflow ``DbApiHook`` connection.

    The first column of each row is a number (text in any spelling :func:`suppression_number`
    accepts, or an integer of its digits); other columns are ignored; a row whose first column is
    ``NULL`` is refused. The result is read with a cursor, a batch of rows at a time (a server-side
    cursor on PostgreSQL).

    :param conn_id: the Airflow connection; its hook must be a ``DbApiHook``.
    :param sql: the query, a single ``SELECT``.
    """

    conn_id: str
    sql: str

    def __repr__(self) -> str:
        # The SQL may hold literal numbers: only the connection is shown.
        return f"SuppressionQuery(conn_id={self.conn_id!r}, sql=...)"


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

    An empty list is a valid list, with a warning in the log.

    :raises FuseValidationError: for ``suppression_list``, naming the row or the problem and never
        quoting a value, when the list cannot be read whole: a missing or unreadable file or object,
        no header or no ``destination`` column, a value that is not a number, a connection whose hook
        is not a ``DbApiHook``, a query that fails; so the task fails before anything is sent.
    """
    log = log or _LOG
    if isinstance(source, SuppressionQuery):
        suppression_list, described = _read_query(source), f"the query on connection {source.conn_id!r}"
    elif isinstance(source, str | os.PathLike) or _is_object_storage(source):
        suppression_list, described = _read_csv_source(source, log)
    elif isinstance(source, Iterable) and not isinstance(source, bytes | bytearray | Mapping):
        items = source if isinstance(source, Sequence | Set) else list(source)
        suppression_list = SuppressionList.from_numbers(items, source=f"{PARAMETER} item")
        described = f"a list of {len(items)} items"
    else:
        raise FuseValidationError(
            PARAMETER,
            "must be a CSV path, an object storage path, a list of numbers or a SuppressionQuery, "
            f"got {type(source).__name__}",
        )
    if len(suppression_list):
        log.info("Suppression list: %d distinct numbers, read from %s.", len(suppression_list), described)
    else:
        log.warning("The suppression list read from %s is empty: no row is suppressed.", described)
    return suppression_list


def _number_of(value: object, where: str) -> int:
    """The normal form of one value of the list; ``where`` names it in the error."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise FuseValidationError(PARAMETER, f"{where} is not text or an integer ({type(value).__name__})")
    if not value.strip():
        raise FuseValidationError(PARAMETER, f"{where} is empty")
    try:
        return suppression_number(value)
    except ValueError as error:
        raise FuseValidationError(PARAMETER, f"{where} is not a phone number ({error})") from None


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
            return _read_remote_csv(path, log), str(path)
        source = str(path.path)
    name = os.fspath(source)
    if not name.strip():
        raise FuseValidationError(PARAMETER, "is an empty path")
    from airflow_provider_fuse.snapshot import open_regular_file

    try:
        fd = open_regular_file(name)
    except FuseCsvError as error:
        raise FuseValidationError(PARAMETER, error.message) from None
    with open(fd, "rb") as binary:
        return _read_csv(binary, name, log), name


def _read_remote_csv(path: Any, log: logging.Logger) -> SuppressionList:
    """Read a CSV object through the path's own ``open("rb")``, streaming."""
    from airflow_provider_fuse.masking import redact

    try:
        binary = path.open("rb")
    except Exception as error:
        raise FuseValidationError(
            PARAMETER, f"cannot open {path} ({type(error).__name__}: {redact(str(error))})"
        ) from None
    with binary:
        return _read_csv(binary, str(path), log)


def _read_csv(binary: IO[bytes], name: str, log: logging.Logger) -> SuppressionList:
    """The numbers of the CSV ``binary`` (see :func:`read_suppression_list`); ``name`` is its path."""
    with io.TextIOWrapper(binary, encoding="utf-8-sig", newline="") as text:
        return _read_rows(csv.reader(text, strict=True), name, log)


def _read_rows(reader: Iterator[list[str]], name: str, log: logging.Logger) -> SuppressionList:
    """The numbers of the CSV rows of ``reader``, the header first; ``name`` is the file's path."""
    collected = array("q")
    row_number = blank = 0
    number = suppression_number
    try:
        header = next(reader, None)
        if header is None:
            raise FuseValidationError(
                PARAMETER, f"{name} is empty: a suppression list CSV starts with a header row"
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
                        PARAMETER, f"{name}, row {row_number}: has no {DESTINATION} cell"
                    ) from None
                _number_of(row[column], f"{name}, row {row_number}")  # raises, saying why
                raise
    except csv.Error as error:
        raise FuseValidationError(PARAMETER, f"{name}, row {row_number + 1}: not CSV ({error})") from None
    except UnicodeDecodeError:
        raise FuseValidationError(PARAMETER, f"{name}: not UTF-8 text (near row {row_number + 1})") from None
    except OSError as error:
        raise FuseValidationError(
            PARAMETER, f"{name}: cannot be read ({type(error).__name__}: {error.strerror or 'I/O error'})"
        ) from None
    if blank:
        log.info("Suppression list %s: %d blank lines skipped.", name, blank)
    return SuppressionList._of(collected)


def _number_column(header: list[str], name: str) -> int:
    """The index of the number column of ``header``: ``destination``, or the only column."""
    names = [cell.strip() for cell in header]
    if names.count(DESTINATION) > 1:
        raise FuseValidationError(PARAMETER, f"{name}: more than one {DESTINATION} column")
    if DESTINATION in names:
        return names.index(DESTINATION)
    if len(names) != 1:
        raise FuseValidationError(
            PARAMETER,
            f"{name}: no {DESTINATION} column in the header (row 1); a file of one column may name it "
            "anything",
        )
    if any(character.isdigit() for character in names[0]):
        raise FuseValidationError(
            PARAMETER, f"{name}: row 1 holds digits, not a column name: the file needs a header row"
        )
    return 0


def _read_query(query: SuppressionQuery) -> SuppressionList:
    """The numbers of ``query``'s rows, fetched a batch at a time."""
    from airflow.providers.common.compat.sdk import BaseHook
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    from airflow_provider_fuse.masking import redact

    where = f"connection {query.conn_id!r}"
    secrets: tuple[str, ...] = ()
    try:
        connection = BaseHook.get_connection(query.conn_id)
        secrets = tuple(secret for secret in (connection.password,) if secret)
        kind = str(connection.conn_type or "").lower()
        hook = connection.get_hook()  # type: ignore[no-untyped-call]
    except Exception as error:
        raise FuseValidationError(
            PARAMETER,
            f"cannot get the hook of {where} ({type(error).__name__}: {redact(str(error), secrets=secrets)})",
        ) from None
    if not isinstance(hook, DbApiHook):
        raise FuseValidationError(
            PARAMETER, f"the hook of {where} is {type(hook).__name__}, not a DbApiHook: not a SQL database"
        )
    collected = array("q")
    position = 0
    number = suppression_number
    try:
        with _cursor(hook, kind) as cursor:
            cursor.execute(query.sql)
            if cursor.description is None:
                raise FuseValidationError(PARAMETER, f"the query on {where} returns no rows (not a SELECT)")
            while batch := cursor.fetchmany(_FETCH):
                for row in batch:
                    position += 1
                    value = row[0] if len(row) else None
                    if type(value) is str:
                        with contextlib.suppress(ValueError):
                            collected.append(number(value))
                            continue
                    if value is None:
                        raise FuseValidationError(PARAMETER, f"query row {position} has no number (NULL)")
                    collected.append(_number_of(value, f"query row {position}"))
    except FuseValidationError:
        raise
    except Exception as error:
        raise FuseValidationError(
            PARAMETER,
            f"the query on {where} failed ({type(error).__name__}: {redact(str(error), secrets=secrets)})",
        ) from None
    return SuppressionList._of(collected)


@contextlib.contextmanager
def _cursor(hook: Any, kind: str) -> Iterator[Any]:
    """A cursor of a new connection of ``hook``, both closed after; server-side on PostgreSQL."""
    connection = hook.get_conn()
    try:
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
