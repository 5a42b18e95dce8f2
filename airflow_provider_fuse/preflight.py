"""The CSV preflight: is this contact list one Fuse can dial, row by row?

It knows CSV and Fuse's destination formats and nothing of HTTP or Airflow. It reads the file once,
as a stream (memory does not grow with the file), and never puts a phone number or any other cell
into what it returns or raises: problems are reported by row number and kind only.

Row numbers count the header as row 1, as a spreadsheet shows them; a quoted field with an embedded
newline is still one row.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_fuse.exceptions import FuseCsvError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = [
    "DESTINATION",
    "DESTINATION_FORMAT",
    "CsvPart",
    "CsvSummary",
    "destination_number",
    "preflight_csv",
    "write_csv_parts",
]

#: The name of the phone-number column ("CSV Upload: destination" in Fuse's Outbound Parameters).
DESTINATION = "destination"

_ANI = r";ani=\+?\d{10,15}"
_POSTD = r";postd=[0-9*#]+"
#: Fuse's documented destination formats: 10 or 11 digits, or ``tel:+`` and an E.164 number, with
#: optional ``;ani=`` (caller id) and ``;postd=`` (DTMF digits after connect) options, each at most once.
DESTINATION_FORMAT = re.compile(
    rf"(?:\d{{10,11}}|tel:\+[1-9]\d{{7,14}})(?:{_ANI}(?:{_POSTD})?|{_POSTD}(?:{_ANI})?)?"
)

#: How many bad rows are named in an error; the count always covers them all.
REPORTED_ROWS = 5


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
    """One file written by :func:`write_csv_parts`: the header and a run of the original rows.

    :param path: where it was written.
    :param rows: data rows in it.
    :param first_row: the original row number of its first data row (the header is row 1).
    :param last_row: the original row number of its last data row.
    """

    path: str
    rows: int
    first_row: int
    last_row: int


def destination_number(destination: str) -> int:
    """The number a valid destination dials, as an integer of its E.164 digits.

    ``6175551234``, ``16175551234`` and ``tel:+16175551234;ani=8009957586`` all give 16175551234:
    a 10-digit destination is a North American number without its country code 1.
    """
    number = destination.split(";", 1)[0]
    if number.startswith("tel:+"):
        return int(number[5:])
    if len(number) == 10:
        return int("1" + number)
    return int(number)


def preflight_csv(path: str | os.PathLike[str]) -> CsvSummary:
    """Check that ``path`` is a contact CSV Fuse can take, and summarise it.

    The file must be UTF-8 (a BOM is allowed), start with a header row holding exactly one
    ``destination`` column, and every data row must have as many fields as the header and a
    destination in one of Fuse's formats (:data:`DESTINATION_FORMAT`). Other columns are not
    inspected: they become the calls' variables.

    :raises FuseCsvError: when the file is missing, unreadable, not UTF-8, not CSV, has no usable
        header, or has bad rows (with their count and the first row numbers, never their values).
    """
    try:
        size = os.path.getsize(path)
        digest = hashlib.sha256()
        with open(path, "rb") as raw:
            has_bom = raw.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8
            raw.seek(0)
            while block := raw.read(1 << 20):
                digest.update(block)
        with open(path, encoding="utf-8-sig", newline="") as text:
            return _check_rows(
                csv.reader(text, strict=True), size=size, has_bom=has_bom, sha256=digest.hexdigest()
            )
    except FileNotFoundError:
        raise FuseCsvError(f"no such file: {os.fspath(path)}") from None
    except IsADirectoryError:
        raise FuseCsvError(f"is a directory, not a CSV file: {os.fspath(path)}") from None
    except PermissionError:
        raise FuseCsvError(f"cannot be read (permission denied): {os.fspath(path)}") from None


def _check_rows(reader: Iterator[list[str]], *, size: int, has_bom: bool, sha256: str) -> CsvSummary:
    row_number = 1  # the row being read; the header is row 1
    try:
        header = next(reader, None)
        if header is None:
            raise FuseCsvError("the file is empty: it needs a header row with a 'destination' column")
        destination = _destination_index(header)
        width = len(header)
        bad_rows = 0
        reported: list[tuple[int, str]] = []
        numbers: set[int] = set()
        duplicates: list[int] = []
        duplicate_rows = 0
        for row in reader:
            row_number += 1
            problem = _row_problem(row, destination, width)
            if problem is not None:
                bad_rows += 1
                if len(reported) < REPORTED_ROWS:
                    reported.append((row_number, problem))
                continue
            number = destination_number(row[destination])
            if number in numbers:
                duplicate_rows += 1
                if len(duplicates) < REPORTED_ROWS:
                    duplicates.append(row_number)
            else:
                numbers.add(number)
    except UnicodeDecodeError:
        raise FuseCsvError(f"is not UTF-8 text (invalid bytes at or after row {row_number + 1})") from None
    except csv.Error as error:
        # csv's messages describe the syntax problem, never the cell's content.
        raise FuseCsvError(f"is not valid CSV at row {row_number + 1}: {error}") from None

    data_rows = row_number - 1
    if bad_rows:
        details = "; ".join(f"row {number}: {problem}" for number, problem in reported)
        more = "" if bad_rows <= len(reported) else f"; and {bad_rows - len(reported)} more"
        raise FuseCsvError(
            f"{bad_rows} of {data_rows} data rows are invalid (the header is row 1): {details}{more}",
            bad_rows=bad_rows,
            row_numbers=tuple(number for number, _ in reported),
        )
    return CsvSummary(
        rows=data_rows,
        columns=width,
        destination_column=destination + 1,
        has_bom=has_bom,
        size=size,
        sha256=sha256,
        duplicate_rows=duplicate_rows,
        duplicate_row_numbers=tuple(duplicates),
    )


def _destination_index(header: list[str]) -> int:
    positions = [index for index, name in enumerate(header) if name == DESTINATION]
    if len(positions) == 1:
        return positions[0]
    if len(positions) > 1:
        columns = ", ".join(str(index + 1) for index in positions)
        raise FuseCsvError(f"the header names 'destination' more than once (columns {columns})")
    near = [index + 1 for index, name in enumerate(header) if name.strip().lower() == DESTINATION]
    hint = (
        f"; column {near[0]} is close (check case and spaces)" if near else "; is the first row a header row?"
    )
    raise FuseCsvError(f"the header row has no 'destination' column ({len(header)} columns){hint}")


def _row_problem(row: list[str], destination: int, width: int) -> str | None:
    if len(row) != width:
        if not row:
            return "empty line"
        return f"{len(row)} fields where the header has {width}"
    value = row[destination]
    if not value:
        return "destination is empty"
    if DESTINATION_FORMAT.fullmatch(value) is None:
        return "destination is not in one of Fuse's formats"
    return None


def write_csv_parts(
    path: str | os.PathLike[str],
    directory: str | os.PathLike[str],
    *,
    chunk_size: int | None = None,
    drop_duplicate_destinations: bool = False,
) -> list[CsvPart]:
    """Write a preflighted CSV out again as parts of at most ``chunk_size`` rows, each with the header.

    Every row is written with its original text (quotes, line ends and all), and so is the header;
    a BOM, if the file has one, starts every part. With ``drop_duplicate_destinations`` a row whose
    destination is the same number as an earlier row's is left out (the first one is kept).
    Parts are written into ``directory`` (which the caller owns and removes). The file must have
    passed :func:`preflight_csv`.

    :return: the parts in order; none when no row is left.
    """
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    with open(path, "rb") as raw:
        prefix = codecs.BOM_UTF8 if raw.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8 else b""
    parts: list[CsvPart] = []
    with open(path, encoding="utf-8-sig", newline="") as text:
        records = _raw_records(text)
        header, header_text = next(records)
        destination = header.index(DESTINATION)
        seen: set[int] = set()
        out = None
        rows = first = last = 0
        try:
            for row_number, (row, row_text) in enumerate(records, start=2):
                if drop_duplicate_destinations:
                    number = destination_number(row[destination])
                    if number in seen:
                        continue
                    seen.add(number)
                if out is None or (chunk_size is not None and rows == chunk_size):
                    if out is not None:
                        out.close()
                        parts.append(CsvPart(out.name, rows, first, last))
                    name = os.path.join(os.fspath(directory), f"part-{len(parts) + 1:05d}.csv")
                    out = open(name, "wb")  # noqa: SIM115 (closed when the part is full, or below)
                    out.write(prefix + _with_line_end(header_text).encode("utf-8"))
                    rows, first = 0, row_number
                out.write(row_text.encode("utf-8"))
                rows += 1
                last = row_number
        finally:
            if out is not None:
                out.close()
        if out is not None and rows:
            parts.append(CsvPart(out.name, rows, first, last))
    return parts


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
