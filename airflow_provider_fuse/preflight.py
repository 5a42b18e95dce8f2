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
import os
import re
from dataclasses import dataclass

from airflow_provider_fuse.exceptions import FuseCsvError

__all__ = ["DESTINATION", "DESTINATION_FORMAT", "CsvSummary", "preflight_csv"]

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
    """

    rows: int
    columns: int
    destination_column: int
    has_bom: bool
    size: int


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
        with open(path, "rb") as raw:
            has_bom = raw.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8
        with open(path, encoding="utf-8-sig", newline="") as text:
            return _check_rows(csv.reader(text, strict=True), size=size, has_bom=has_bom)
    except FileNotFoundError:
        raise FuseCsvError(f"no such file: {os.fspath(path)}") from None
    except IsADirectoryError:
        raise FuseCsvError(f"is a directory, not a CSV file: {os.fspath(path)}") from None
    except PermissionError:
        raise FuseCsvError(f"cannot be read (permission denied): {os.fspath(path)}") from None


def _check_rows(reader: csv._reader, *, size: int, has_bom: bool) -> CsvSummary:
    row_number = 1  # the row being read; the header is row 1
    try:
        header = next(reader, None)
        if header is None:
            raise FuseCsvError("the file is empty: it needs a header row with a 'destination' column")
        destination = _destination_index(header)
        width = len(header)
        bad_rows = 0
        reported: list[tuple[int, str]] = []
        for row in reader:
            row_number += 1
            problem = _row_problem(row, destination, width)
            if problem is not None:
                bad_rows += 1
                if len(reported) < REPORTED_ROWS:
                    reported.append((row_number, problem))
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
        rows=data_rows, columns=width, destination_column=destination + 1, has_bom=has_bom, size=size
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
