"""The CSV preflight: is this contact list one Fuse can dial, row by row?

It knows CSV and nothing of HTTP or Airflow: a destination is what
:mod:`airflow_provider_fuse.destinations` says it is (its names stay importable from here). It reads
the file once, in blocks, with the stdlib ``csv`` module (``strict=True``), so every answer is the
one a plain ``csv.reader`` pass gives; it never puts a phone number or any other cell into what it
returns or raises: problems are reported by row number and kind only.

Row numbers count the header as row 1, as a spreadsheet shows them; a quoted field with an embedded
newline is still one row.

Only a regular file is read, and no row may be longer than :data:`MAX_ROW_BYTES`: so a FIFO, a device
or a file with no line end fails at once, and time and memory stay linear in the file's size.

Duplicate destinations are found exactly in bounded memory: each run of rows' numbers (as the key
of the E.164 number they dial) is sorted and appended to one ``array('d')`` — 8 bytes per row, no
Python object kept per row — and at the end the sorted runs are cut into value ranges of about 64k
numbers, each counted with a small set. Only when there are repeats is the file read a second time
to name the first repeated rows.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import dataclasses
import hashlib
import io
import os
from array import array
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass
from itertools import chain, islice, pairwise
from typing import IO, TYPE_CHECKING

from airflow_provider_fuse.destinations import (
    ACCEPTED_FORMS,
    DESTINATION,
    DESTINATION_FORMAT,
    KEYED_DESTINATION_FORMAT,
    destination_number,
)
from airflow_provider_fuse.exceptions import FuseCsvError
from airflow_provider_fuse.masking import redact

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

__all__ = [
    "ACCEPTED_FORMS",
    "DEFAULT_BLOCK_SIZE",
    "DESTINATION",
    "DESTINATION_FORMAT",
    "MAX_ROW_BYTES",
    "CsvPart",
    "CsvSummary",
    "destination_number",
    "preflight_csv",
    "write_csv_parts",
]

#: Names a first row may give its phone-number column, spaces, underscores and case aside, other than
#: ``destination``: an error about a missing ``destination`` column says which column looks like it
#: (by position: no value of the first row is ever shown).
_PHONE_COLUMN_NAMES = frozenset(
    {"phone", "phonenumber", "phone number", "number", "telephone", "tel", "mobile", "cell", "msisdn"}
)

#: How many bad rows are named in an error; the count always covers them all.
REPORTED_ROWS = 5

#: The longest row read, in bytes (line ends included): far beyond any contact row, and what bounds the
#: memory and time spent on a file that is not a contact list (one with no line end, say).
MAX_ROW_BYTES = 1 << 20

#: Bytes read at a time: large enough that the per-block work is negligible, small enough to stay
#: a few MiB of memory whatever the file's size.
DEFAULT_BLOCK_SIZE = 1 << 20

#: North American (NANP) E.164 numbers are 1 and 10 digits: [_NANP, 2 * _NANP).
_NANP = 10**10
#: Added to every other number's key, so keys of the two kinds never meet (E.164 < 10**15 < 2**50).
_OTHER = 1 << 52

#: Rows read between two hand-overs of their numbers (one sorted run each).
_RUN_ROWS = 1 << 15


@dataclass(frozen=True)
class CsvSummary:
    """What the preflight learned about a valid contact CSV.

    :param rows: data rows, one per contact (the header is not counted).
    :param columns: columns in the header.
    :param destination_column: 1-based position of the ``destination`` column.
    :param has_bom: whether the file starts with a UTF-8 byte-order mark.
    :param size: the file's size in bytes.
    :param sha256: hex SHA-256 of the file's bytes.
    :param duplicate_rows: rows whose destination is the same number as an earlier row's
        (``6175551234``, ``16175551234`` and ``tel:+16175551234`` are one number; options such as
        ``;ani=`` are ignored).
    :param duplicate_row_numbers: the first few of those rows (the header is row 1).
    """

    rows: int
    columns: int
    destination_column: int
    has_bom: bool
    size: int
    sha256: str = ""
    duplicate_rows: int = 0
    duplicate_row_numbers: tuple[int, ...] = ()


@dataclass(frozen=True)
class CsvPart:
    """One file written by :func:`write_csv_parts`: the header and some of the original rows, in order.

    Its rows are consecutive rows of the file unless repeats were dropped or the rows were routed
    into groups: ``rows`` is then less than ``last_row - first_row + 1``.

    :param path: where it was written.
    :param rows: data rows in it.
    :param first_row: the original row number of its first data row (the header is row 1).
    :param last_row: the original row number of its last data row.
    :param group: the group its rows were routed to (``()`` when they were not routed).
    :param sha256: hex SHA-256 of the part's bytes (``""`` for the file sent whole).
    """

    path: str
    rows: int
    first_row: int
    last_row: int
    group: tuple[str, ...] = ()
    sha256: str = ""


def preflight_csv(path: str | os.PathLike[str], *, block_size: int = DEFAULT_BLOCK_SIZE) -> CsvSummary:
    """Check that ``path`` is a contact CSV Fuse can take, and summarise it.

    The file must be UTF-8 (a BOM is allowed), start with a header row holding exactly one
    ``destination`` column, and every data row must have as many fields as the header and a
    destination in one of Fuse's formats (:data:`DESTINATION_FORMAT`). Other columns are not
    inspected: they become the calls' variables. Every answer is the one Python's ``csv`` module
    (``strict=True``) would give; memory does not grow with the file beyond 8 bytes per row.

    :param block_size: bytes read at a time (a test can make it tiny to put block boundaries
        anywhere).
    :raises FuseCsvError: when the file is missing, unreadable, not a regular file (a FIFO or device is
        refused without reading), not UTF-8, not CSV, has a row longer than :data:`MAX_ROW_BYTES`, has
        no usable header, or has bad rows (with their count and the first row numbers, never their
        values).
    """
    with _opened(path) as raw:
        size = os.fstat(raw.fileno()).st_size
        digest = hashlib.sha256()
        scan = _RowScan(raw, block_size=block_size, digest=digest)
        numbers = _SortedRuns()
        scan.run(numbers.add)
        duplicate_rows, repeated = numbers.repeats()
        summary = CsvSummary(
            rows=scan.data_rows,
            columns=scan.width,
            destination_column=scan.destination + 1,
            has_bom=scan.has_bom,
            size=size,
            sha256=digest.hexdigest(),
            duplicate_rows=duplicate_rows,
        )
    if not duplicate_rows:
        return summary
    return _with_duplicate_row_numbers(path, summary, repeated, block_size)


@contextlib.contextmanager
def _opened(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """``path`` opened for reading bytes when it is a regular file; else :class:`FuseCsvError` naming it.

    A FIFO, a device (``/dev/zero``), a socket or a directory is refused at once: opening does not
    wait for a FIFO's writer, and nothing is read from it.
    """
    from airflow_provider_fuse.snapshot import open_regular_file

    file = open(open_regular_file(path), "rb")  # noqa: SIM115 (closed by the with below)
    with file:
        yield file


def _with_duplicate_row_numbers(
    path: str | os.PathLike[str], summary: CsvSummary, repeated: array[float], block_size: int
) -> CsvSummary:
    """Read the file again to name the first rows that repeat an earlier row's number."""
    finder = _RepeatFinder(repeated)
    found: list[int] = []

    def collect(first_row: int, numbers: list[int]) -> None:
        for row_number, number in enumerate(numbers, start=first_row):
            if finder.is_repeat(number):
                found.append(row_number)
                if len(found) == REPORTED_ROWS:
                    raise _Enough

    with _opened(path) as raw, contextlib.suppress(_Enough):
        _RowScan(raw, block_size=block_size).run(collect)
    return dataclasses.replace(summary, duplicate_row_numbers=tuple(found))


class _Enough(Exception):
    """Stops a scan that has found what it was looking for."""


class _RowTooLong(Exception):
    """A row goes on past :data:`MAX_ROW_BYTES`; the scan names its row number."""


# --- Reading the file in blocks of whole lines -----------------------------------------------------


def _blocks(raw: IO[bytes], block_size: int, digest: hashlib._Hash | None, carry: bytes) -> Iterator[bytes]:
    """``carry`` and the rest of the file, in blocks that end with a line end (the last may not).

    A block never ends between ``\\r`` and ``\\n``. Every byte read goes to ``digest``.

    :raises _RowTooLong: when a line without its end is already longer than :data:`MAX_ROW_BYTES`:
        the carry stays bounded, so each block costs at most ``block_size + MAX_ROW_BYTES`` bytes.
    """
    while chunk := raw.read(block_size):
        if digest is not None:
            digest.update(chunk)
        buffer = carry + chunk if carry else chunk
        end = buffer.rfind(b"\n") + 1
        if not end:
            # No \n: cut after a \r that is followed by something (so it cannot start a \r\n).
            end = buffer.rfind(b"\r", 0, len(buffer) - 1) + 1
        if end:
            yield buffer[:end]
            carry = buffer[end:]
        else:
            carry = buffer
        if len(carry) > MAX_ROW_BYTES:
            raise _RowTooLong
    if carry:
        yield carry


class _InvalidUtf8(Exception):
    """The block holds bytes that are not UTF-8; the scan names the row they are in."""


class _RowScan:
    """One pass over a contact CSV: the header, every row checked, each row's number handed on.

    ``run(consume)`` calls ``consume(first_row, numbers)`` with the keys (:func:`_key`) of consecutive
    valid rows, in file order, ``first_row`` being the row number of the first of them; after the
    first bad row it stops handing numbers on, and at the end it raises :class:`FuseCsvError` for
    bad rows.
    """

    def __init__(self, raw: IO[bytes], *, block_size: int, digest: hashlib._Hash | None = None) -> None:
        if block_size < 1:
            raise ValueError(f"block_size must be at least 1, got {block_size}")
        start = raw.read(len(codecs.BOM_UTF8))
        if digest is not None:
            digest.update(start)
        self.has_bom = start == codecs.BOM_UTF8
        self._blocks = _blocks(raw, block_size, digest, b"" if self.has_bom else start)
        self.records = 0  # rows read, the header included
        self.bad_rows = 0
        self.reported: list[tuple[int, str]] = []
        self.header: list[str] | None = None
        self.width = 0
        self.destination = 0
        self._row_bytes = 0  # of the current row, handed out so far
        self._rows = 0  # rows read when the last line was handed out
        self._reader = csv.reader(chain.from_iterable(self._line_runs()), strict=True)

    @property
    def data_rows(self) -> int:
        return max(self.records - 1, 0)

    def run(self, consume: Callable[[int, list[int]], None]) -> None:
        # Each error names the row being read: the one after the last row csv handed back.
        try:
            self._scan(consume)
        except _RowTooLong:
            raise FuseCsvError(
                f"row {self.records + 1} is longer than {MAX_ROW_BYTES} bytes: is this a contact CSV?"
            ) from None
        except _InvalidUtf8:
            raise FuseCsvError(
                f"is not UTF-8 text (invalid bytes at or after row {self.records + 1})"
            ) from None
        except csv.Error as error:
            # csv's messages describe the syntax problem, never the cell's content.
            raise FuseCsvError(f"is not valid CSV at row {self.records + 1}: {error}") from None
        if self.header is None:
            raise FuseCsvError("the file is empty: it needs a header row with a 'destination' column")
        if self.bad_rows:
            details = "; ".join(f"row {number}: {problem}" for number, problem in self.reported)
            more = (
                ""
                if self.bad_rows <= len(self.reported)
                else f"; and {self.bad_rows - len(self.reported)} more"
            )
            forms = f". Accepted forms: {ACCEPTED_FORMS}" if _NOT_A_FORM in details else ""
            raise FuseCsvError(
                f"{self.bad_rows} of {self.data_rows} data rows are invalid (the header is row 1): "
                f"{details}{more}{forms}",
                bad_rows=self.bad_rows,
                row_numbers=tuple(number for number, _ in self.reported),
            )

    def _scan(self, consume: Callable[[int, list[int]], None]) -> None:
        reader = self._reader
        header = next(reader, None)
        if header is None:
            return
        self.records = 1
        self.destination = _destination_index(header)
        self.header = header
        self.width = width = len(header)
        column, match = self.destination, KEYED_DESTINATION_FORMAT.fullmatch
        while True:
            first_row = self.records + 1
            numbers: list[int] = []
            append = numbers.append
            for row in islice(reader, _RUN_ROWS):
                # Kept current row by row: _counted reads it to tell where a row ends.
                self.records += 1
                if len(row) == width and (found := match(row[column])) is not None:
                    nanp = found[1]
                    append(int(nanp) if nanp is not None else int(found[2]) + _OTHER)
                else:
                    self.bad_rows += 1
                    if len(self.reported) < REPORTED_ROWS:
                        self.reported.append((self.records, _row_problem(row, column, width)))
            if numbers and not self.bad_rows:
                consume(first_row, numbers)
            if self.records - first_row + 1 < _RUN_ROWS:
                return

    def _line_runs(self) -> Iterator[Iterable[str]]:
        """The file's lines for ``csv`` (line ends kept), a block's worth at a time.

        ``csv`` asks for a line only when its row needs one, so the bytes handed out since the last
        row came back are the current row's: past :data:`MAX_ROW_BYTES`, it is refused. A block with
        no quote character that starts at a row's start holds only one-line rows, so when none of
        its lines is too long it is handed over as it is, not counted line by line.

        :raises _InvalidUtf8: when ``csv`` asks for a line past the last whole line before bytes
            that are not UTF-8 (the row they are in is not read).
        """
        for block in self._blocks:
            text, invalid = _decoded(block)
            lines = io.StringIO(text, newline="").readlines()
            if self.records != self._rows:  # the last line handed out ended a row
                self._row_bytes = 0
            if not self._row_bytes and b'"' not in block and _lines_fit(lines, block.isascii()):
                yield lines
                self._rows = self.records
            else:
                yield self._counted(lines)
            if invalid:
                raise _InvalidUtf8

    def _counted(self, lines: list[str]) -> Iterator[str]:
        """``lines``, each added to the current row's bytes before it is handed out.

        :raises _RowTooLong: when the current row goes past :data:`MAX_ROW_BYTES`.
        """
        for line in lines:
            if self.records != self._rows:
                self._row_bytes = 0
            self._row_bytes += len(line) if line.isascii() else len(line.encode("utf-8"))
            if self._row_bytes > MAX_ROW_BYTES:
                raise _RowTooLong
            self._rows = self.records
            yield line


def _decoded(block: bytes) -> tuple[str, bool]:
    """The block as text, and whether it had bytes that are not UTF-8: then only the whole lines
    before them."""
    try:
        return block.decode("utf-8"), False
    except UnicodeDecodeError as error:
        valid = block[: error.start]
        return valid[: max(valid.rfind(b"\n"), valid.rfind(b"\r")) + 1].decode("utf-8"), True


def _lines_fit(lines: list[str], ascii_only: bool) -> bool:
    """Whether every one of ``lines`` is at most :data:`MAX_ROW_BYTES` long in UTF-8."""
    longest = max(map(len, lines), default=0)  # in characters
    if ascii_only:
        return longest <= MAX_ROW_BYTES
    if longest * 4 <= MAX_ROW_BYTES:  # a character is at most 4 bytes of UTF-8
        return True
    return longest <= MAX_ROW_BYTES and max(len(line.encode("utf-8")) for line in lines) <= MAX_ROW_BYTES


def _destination_index(header: list[str]) -> int:
    """The index of the ``destination`` column in the first row.

    :raises FuseCsvError: when the first row names no ``destination`` column, or more than one. The
        message describes the first row by its columns' count and positions and never shows its
        values: a first row that is not a header is a contact (a name, an email, a phone number split
        across columns), and no rule tells every header name from every contact value. The only name
        it quotes is the one accepted, ``destination``.
    """
    positions = [index for index, name in enumerate(header) if name == DESTINATION]
    if len(positions) == 1:
        return positions[0]
    if len(positions) > 1:
        columns = ", ".join(str(index + 1) for index in positions)
        raise FuseCsvError(f"the header names '{DESTINATION}' more than once (columns {columns})")
    needed = (
        f"the first row must be a header row naming the phone-number column '{DESTINATION}' (exactly: "
        "lower case, no spaces), the contacts below it"
    )
    if any(redact(name) != " ".join(name.split()) for name in header):
        # A phone number in the first row: it is a contact, not a header.
        raise FuseCsvError(f"the header row holds a phone number ({len(header)} columns): {needed}")
    folded = [" ".join(name.replace("_", " ").split()).lower() for name in header]
    near = [index + 1 for index, name in enumerate(folded) if name == DESTINATION]
    phone = [index + 1 for index, name in enumerate(folded) if name in _PHONE_COLUMN_NAMES]
    if near:
        hint = f"; column {near[0]} is close (check case and spaces)"
    elif phone:
        hint = f"; column {phone[0]} looks like the phone-number column: name it '{DESTINATION}'"
    else:
        hint = ""
    raise FuseCsvError(
        f"the header row has no '{DESTINATION}' column ({len(header)} columns): {needed}{hint}"
    )


def _row_problem(row: list[str], destination: int, width: int) -> str:
    """What is wrong with a row that is not a valid contact row (never its content)."""
    if len(row) != width:
        if not row:
            return "empty line"
        return f"{len(row)} fields where the header has {width}"
    if not row[destination]:
        return "destination is empty"
    return _NOT_A_FORM


_NOT_A_FORM = "destination is not in one of Fuse's formats"


def _key(number: int) -> int:
    """A number's key for finding repeats: a North American number's 10 digits after the 1, else
    the number plus :data:`_OTHER` (so the two kinds never share a key)."""
    return number - _NANP if _NANP <= number < 2 * _NANP else number + _OTHER


# --- Repeated numbers in bounded memory ------------------------------------------------------------

#: About how many numbers are counted with one set when looking for repeats.
_RANGE_NUMBERS = 1 << 16


class _SortedRuns:
    """Every row's number, 8 bytes each, in sorted runs (one per hand-over); counts the repeats exactly.

    Numbers are kept as floats: every key is below 2**53, so a float holds it exactly, and a list of
    floats sorts about twice as fast as one of ints this size.
    """

    def __init__(self) -> None:
        self._numbers: array[float] = array("d")
        self._runs: list[tuple[int, int]] = []

    def add(self, first_row: int, numbers: list[int]) -> None:
        start = len(self._numbers)
        self._numbers.fromlist(sorted(map(float, numbers)))
        self._runs.append((start, len(self._numbers)))

    def repeats(self) -> tuple[int, array[float]]:
        """How many numbers repeat an earlier one, and (sorted) every number that occurs twice or more."""
        numbers, runs = self._numbers, self._runs
        repeated: array[float] = array("d")
        if not numbers:
            return 0, repeated
        # Cut the value space at quantiles of a sample so each range holds about _RANGE_NUMBERS.
        step = max(1, len(numbers) // 4096)
        sample = sorted(numbers[::step])
        every = max(1, _RANGE_NUMBERS // step)
        bounds: list[float | None] = [None, *sorted(set(sample[every::every])), None]
        distinct = 0
        for low, high in pairwise(bounds):
            pieces = [
                numbers[
                    start if low is None else bisect_left(numbers, low, start, end) : (
                        end if high is None else bisect_left(numbers, high, start, end)
                    )
                ]
                for start, end in runs
            ]
            values: set[float] = set()
            for piece in pieces:
                values.update(piece)
            distinct += len(values)
            if len(values) < sum(map(len, pieces)):
                counts: Counter[float] = Counter()
                for piece in pieces:
                    counts.update(piece)
                repeated.fromlist(sorted(value for value, count in counts.items() if count > 1))
        return len(numbers) - distinct, repeated


class _RepeatFinder:
    """Tells, in file order, whether a number was seen before — knowing which numbers repeat at all."""

    def __init__(self, repeated: array[float]) -> None:
        self._repeated = repeated
        self._seen = bytearray(len(repeated))

    def is_repeat(self, number: int) -> bool:
        index = bisect_left(self._repeated, number)
        if index == len(self._repeated) or self._repeated[index] != number:
            return False
        if self._seen[index]:
            return True
        self._seen[index] = 1
        return False


def _repeated_numbers(path: str | os.PathLike[str], block_size: int = DEFAULT_BLOCK_SIZE) -> array[float]:
    with _opened(path) as raw:
        numbers = _SortedRuns()
        _RowScan(raw, block_size=block_size).run(numbers.add)
    return numbers.repeats()[1]


# --- Writing parts ---------------------------------------------------------------------------------


def write_csv_parts(
    path: str | os.PathLike[str],
    directory: str | os.PathLike[str],
    *,
    chunk_size: int | None = None,
    drop_duplicate_destinations: bool = False,
    route: Callable[[int, int], tuple[str, ...] | None] | None = None,
) -> list[CsvPart]:
    """Write a preflighted CSV out again as parts of at most ``chunk_size`` rows, each with the header.

    Every row is written with its original text (quotes, line ends and all), and so is the header;
    a BOM, if the file has one, starts every part. With ``drop_duplicate_destinations`` a row whose
    destination is the same number as an earlier row's is left out (the first one is kept).

    ``route(row_number, number)`` is asked for every row left (``number``: the E.164 digits its
    destination dials, :func:`destination_number`) and answers the row's group, or ``None`` to
    leave the row out (the caller counts what it leaves out). The rows of each group go to parts of
    their own, so a part's rows need not be consecutive in the file; one part per group is being
    written at a time, and one file at most is open.

    Parts are written into ``directory`` (which the caller owns and removes). The file must have
    passed :func:`preflight_csv`. Memory does not grow with the file beyond 8 bytes per row.

    :return: the parts in the order of their first rows; none when no row is left.
    """
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    finder = _RepeatFinder(_repeated_numbers(path)) if drop_duplicate_destinations else None
    with open(path, "rb") as raw:
        prefix = codecs.BOM_UTF8 if raw.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8 else b""
    done: list[CsvPart] = []
    writing: dict[tuple[str, ...], _PartWriter] = {}
    with open(path, encoding="utf-8-sig", newline="") as text:
        records = _raw_records(text)
        header, header_text = next(records)
        head = prefix + _with_line_end(header_text).encode("utf-8")
        destination = header.index(DESTINATION)
        opened = pending = 0
        for row_number, (row, row_text) in enumerate(records, start=2):
            group: tuple[str, ...] = ()
            if finder is not None or route is not None:
                number = destination_number(row[destination])
                if finder is not None and finder.is_repeat(_key(number)):
                    continue
                if route is not None:
                    routed = route(row_number, number)
                    if routed is None:
                        continue
                    group = routed
            part = writing.get(group)
            if part is None or (chunk_size is not None and part.rows == chunk_size):
                if part is not None:
                    done.append(part.close())
                opened += 1
                name = os.path.join(os.fspath(directory), f"part-{opened:05d}.csv")
                part = writing[group] = _PartWriter(name, head, group)
            part.write(row_number, row_text)
            pending += 1
            if pending == _PENDING_ROWS:
                for part in writing.values():
                    part.flush()
                pending = 0
        done.extend(part.close() for part in writing.values())
    return sorted(done, key=lambda part: part.first_row)


#: Rows held, over all parts being written, before they are written out: a write and a digest update per row
#: cost more than the rest of the writer, and this bounds what is held to about a MiB.
_PENDING_ROWS = 1 << 13


class _PartWriter:
    """One part being written: its file (the header first), its rows, its digest. The file is open
    only while rows are written out (:meth:`flush`), so a list of many groups holds one file open at
    most, not one per group."""

    def __init__(self, name: str, head: bytes, group: tuple[str, ...]) -> None:
        self.name = name
        self.digest = hashlib.sha256(head)
        with open(name, "wb") as file:
            file.write(head)
        self.group = group
        self.rows = self.first = self.last = 0
        self._pending: list[str] = []

    def write(self, row_number: int, text: str) -> None:
        self._pending.append(text)
        if not self.rows:
            self.first = row_number
        self.rows += 1
        self.last = row_number

    def flush(self) -> None:
        """Write out the rows held (see :data:`_PENDING_ROWS`), appended to the part's file."""
        if self._pending:
            data = "".join(self._pending).encode("utf-8")
            self._pending.clear()
            with open(self.name, "ab") as file:
                file.write(data)
            self.digest.update(data)

    def close(self) -> CsvPart:
        self.flush()
        return CsvPart(self.name, self.rows, self.first, self.last, self.group, self.digest.hexdigest())


def _raw_records(text: Iterable[str]) -> Iterator[tuple[list[str], str]]:
    """Each record's fields and its exact original text (all the lines it spans, line ends kept)."""
    lines: list[str] = []

    def feed() -> Iterator[str]:
        for line in text:
            lines.append(line)
            yield line

    for fields in csv.reader(feed(), strict=True):
        # csv.reader asks for the next line only when it needs it, so ``lines`` holds exactly
        # this record's lines.
        record = "".join(lines)
        lines.clear()
        yield fields, record


def _with_line_end(header_text: str) -> str:
    return header_text if header_text.endswith(("\n", "\r")) else header_text + "\r\n"
