"""The CSV preflight: exact row counts and row numbers, Fuse's destination formats, no values leaked."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import socket
import threading
from pathlib import Path

import pytest

from airflow_provider_fuse.exceptions import FuseCsvError
from airflow_provider_fuse.preflight import (
    DESTINATION_FORMAT,
    MAX_ROW_BYTES,
    destination_number,
    preflight_csv,
    write_csv_parts,
)


def write(tmp_path: Path, data: bytes | str, name: str = "contacts.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


@pytest.mark.parametrize(
    "destination",
    [
        "6175551234",
        "16175551234",
        "tel:+16175551234",
        "tel:+442071838750",
        "6175551234;ani=8009957586",
        "tel:+16175551234;ani=8009957586;postd=2",
        "16175551234;postd=12#",
        "tel:+16175551234;postd=2;ani=8009957586",
    ],
)
def test_documented_destination_formats_pass(destination):
    assert DESTINATION_FORMAT.fullmatch(destination)


@pytest.mark.parametrize(
    "destination",
    [
        "617555123",
        "617-555-1234",
        "+16175551234",
        "tel:16175551234",
        " 6175551234",
        "6175551234 ",
        "6175551234;ani=",
        "6175551234;ani=800;postd=2",
        "6175551234;ani=8009957586;ani=8009957586",
        "6175551234;foo=1",
        "one",
        "26175551234",  # 11 digits not starting with 1
        "tel:+06175551234",
        "\u0666\u0661\u0667\u0665\u0665\u0665\u0661\u0662\u0663\u0664",  # Arabic-Indic digits
        "\uff16\uff11\uff17\uff15\uff15\uff15\uff11\uff12\uff13\uff14",  # fullwidth digits
        "6175551234;ani=\u0668009957586",
    ],
)
def test_other_destinations_fail(destination):
    assert DESTINATION_FORMAT.fullmatch(destination) is None


def test_a_valid_file_is_summarised(tmp_path):
    path = write(tmp_path, "destination,first_name\r\n6175551234,Ada\r\n16175551235,Grace\r\n")
    summary = preflight_csv(path)
    assert (summary.rows, summary.columns, summary.destination_column, summary.has_bom) == (2, 2, 1, False)
    assert summary.size == path.stat().st_size


def test_quoted_fields_embedded_newlines_and_crlf_count_as_one_row_each(tmp_path):
    data = (
        'name,destination,note\r\n"Lovelace, Ada",6175551234,"line one\r\nline two"\r\n'
        '"x ""q""",6175551235,\r\n'
    )
    path = write(tmp_path, data)
    reference = list(csv.reader(io.StringIO(data, newline="")))
    summary = preflight_csv(path)
    assert summary.rows == len(reference) - 1 == 2
    assert summary.destination_column == 2


def test_a_bom_is_accepted_and_reported(tmp_path):
    summary = preflight_csv(write(tmp_path, "\ufeffdestination,x\n6175551234,1\n"))
    assert summary.has_bom
    assert summary.rows == 1


def test_a_header_without_rows_has_zero_rows(tmp_path):
    assert preflight_csv(write(tmp_path, "destination,first_name\n")).rows == 0


def test_bad_rows_are_counted_and_named_by_row_number_without_values(tmp_path):
    rows = ["destination,name"] + [f"61755512{i:02d},n{i}" for i in range(20)]
    rows[3] = "555-1234,bad"  # row 4
    rows[8] = "6175551299"  # row 9: one field
    rows[12] = ",empty"  # row 13
    path = write(tmp_path, "\n".join(rows) + "\n")
    with pytest.raises(FuseCsvError) as caught:
        preflight_csv(path)
    message = str(caught.value)
    assert caught.value.bad_rows == 3
    assert caught.value.row_numbers == (4, 9, 13)
    assert "3 of 20 data rows are invalid" in message
    assert "row 4: destination is not in one of Fuse's formats" in message
    assert "row 9: 1 fields where the header has 2" in message
    assert "row 13: destination is empty" in message
    assert "555-1234" not in message
    assert "6175551299" not in message


def test_row_numbers_count_records_not_lines(tmp_path):
    data = 'destination,note\n6175551234,"two\nlines"\nbad,x\n'
    with pytest.raises(FuseCsvError) as caught:
        preflight_csv(write(tmp_path, data))
    assert caught.value.row_numbers == (3,)


def test_only_the_first_five_bad_rows_are_named_and_the_count_covers_all(tmp_path):
    data = "destination\n" + "x\n" * 12
    with pytest.raises(FuseCsvError, match="and 7 more") as caught:
        preflight_csv(write(tmp_path, data))
    assert caught.value.bad_rows == 12
    assert caught.value.row_numbers == (2, 3, 4, 5, 6)


def test_a_blank_line_is_a_bad_row(tmp_path):
    with pytest.raises(FuseCsvError, match="row 3: empty line"):
        preflight_csv(write(tmp_path, "destination\n6175551234\n\n6175551235\n"))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty"),
        (b"phone,name\n6175551234,x\n", "no 'destination' column"),
        (b"Destination ,name\n6175551234,x\n", "column 1 is close"),
        (b"destination,destination\n1,2\n", "more than once"),
        (b"destination,name\n6175551234,Zo\xe9\n", "not UTF-8 text .* row 2"),
        (b'destination,name\n6175551234,"unclosed\n', "not valid CSV at row 2"),
    ],
)
def test_unusable_files_are_refused_with_a_reason(tmp_path, data, match):
    with pytest.raises(FuseCsvError, match=match):
        preflight_csv(write(tmp_path, data))


def test_a_header_that_is_really_a_contact_is_not_echoed(tmp_path):
    with pytest.raises(FuseCsvError) as caught:
        preflight_csv(write(tmp_path, "6175551234,Ada\n6175551235,Grace\n"))
    assert "6175551234" not in str(caught.value)
    assert "Ada" not in str(caught.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FuseCsvError, match="no such file"):
        preflight_csv(tmp_path / "missing.csv")


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(FuseCsvError, match="directory"):
        preflight_csv(tmp_path)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_row_count_matches_the_stdlib_reader_on_a_larger_file(tmp_path, newline):
    lines = ["destination,first,note"]
    for index in range(5_000):
        note = f'"a, b{newline}c"' if index % 7 == 0 else "plain"
        lines.append(f"1617555{index:04d},n{index},{note}")
    data = newline.join(lines) + newline
    path = write(tmp_path, data)
    with open(path, newline="", encoding="utf-8") as file:
        reference = sum(1 for _ in csv.reader(file)) - 1
    assert preflight_csv(path).rows == reference == 5_000


# --- Duplicates, content hash, and parts ---------------------------------------------------------------


def test_destinations_that_dial_the_same_number_are_counted_as_duplicates(tmp_path):
    data = (
        "destination,name\n"
        "6175551234,a\n"  # row 2
        "16175551234,b\n"  # row 3: same number
        "tel:+16175551234;ani=8009957586,c\n"  # row 4: same number with an option
        "6175551235,d\n"
        "tel:+442071838750,e\n"
        "tel:+442071838750;postd=1,f\n"  # row 7: same number
    )
    summary = preflight_csv(write(tmp_path, data))
    assert summary.rows == 6
    assert summary.duplicate_rows == 3
    assert summary.duplicate_row_numbers == (3, 4, 7)


@pytest.mark.parametrize(
    ("destination", "number"),
    [
        ("6175551234", 16175551234),
        ("16175551234", 16175551234),
        ("tel:+16175551234", 16175551234),
        ("tel:+16175551234;ani=8009957586;postd=2", 16175551234),
        ("tel:+442071838750", 442071838750),
    ],
)
def test_destination_number(destination, number):
    assert destination_number(destination) == number


def test_the_summary_carries_the_sha256_of_the_file_bytes(tmp_path):
    import hashlib

    path = write(tmp_path, "\ufeffdestination\r\n6175551234\r\n")
    assert preflight_csv(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def parts_text(parts) -> list[bytes]:
    return [Path(part.path).read_bytes() for part in parts]


def test_parts_keep_each_row_byte_for_byte_with_the_header(tmp_path):
    header = 'destination,"note, quoted"\r\n'
    rows = [f'161755500{index:02d},"multi\r\nline {index}"\r\n' for index in range(7)]
    path = write(tmp_path, header + "".join(rows))
    out = tmp_path / "parts"
    out.mkdir()
    parts = write_csv_parts(path, out, chunk_size=3)
    assert [(part.rows, part.first_row, part.last_row) for part in parts] == [(3, 2, 4), (3, 5, 7), (1, 8, 8)]
    texts = parts_text(parts)
    assert texts[0] == (header + "".join(rows[:3])).encode()
    assert texts[2] == (header + rows[6]).encode()
    assert b"".join(text.removeprefix(header.encode()) for text in texts) == "".join(rows).encode()


def test_without_a_chunk_size_there_is_one_part_identical_to_the_file(tmp_path):
    data = "\ufeffname,destination\nZoë,6175551234\nAda,6175551235"  # no line end after the last row
    path = write(tmp_path, data)
    (part,) = write_csv_parts(path, tmp_path)
    assert Path(part.path).read_bytes() == path.read_bytes()
    assert part.rows == 2


def test_the_bom_starts_every_part(tmp_path):
    path = write(tmp_path, "\ufeffdestination\n6175551234\n6175551235\n")
    parts = write_csv_parts(path, tmp_path, chunk_size=1)
    assert all(text.startswith(b"\xef\xbb\xbfdestination\n") for text in parts_text(parts))


def test_dropping_duplicates_keeps_the_first_occurrence(tmp_path):
    path = write(tmp_path, "destination,n\n6175551234,a\n16175551234,b\n6175551235,c\ntel:+16175551235,d\n")
    (part,) = write_csv_parts(path, tmp_path, drop_duplicate_destinations=True)
    assert Path(part.path).read_bytes() == b"destination,n\n6175551234,a\n6175551235,c\n"
    assert (part.rows, part.first_row, part.last_row) == (2, 2, 4)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files through /proc")
def test_hundreds_of_groups_keep_at_most_one_part_file_open(tmp_path):
    """A list of hundreds of zone groups must not need a file descriptor per group (a platform's
    ``ulimit -n`` of a few hundred): each part's file is open only while its rows are written."""
    groups = 300
    rows = [f"1617555{index:04d},row {index}\r\n" for index in range(9_000)]  # past one flush of rows held
    path = write(tmp_path, "destination,n\r\n" + "".join(rows))
    out = tmp_path / "parts"
    out.mkdir()
    most_open = 0

    def route(row_number: int, number: int) -> tuple[str, ...]:
        nonlocal most_open
        if row_number % 7:  # looking at every row's would cost more than the writing
            return (str(row_number % groups),)
        open_parts = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                open_parts += os.readlink(f"/proc/self/fd/{fd}").startswith(str(out))
            except OSError:
                continue
        most_open = max(most_open, open_parts)
        return (str(row_number % groups),)

    parts = write_csv_parts(path, out, chunk_size=20, route=route)
    assert most_open <= 1
    by_group: dict[tuple[str, ...], bytes] = {}
    for part in parts:
        data = Path(part.path).read_bytes()
        assert data.startswith(b"destination,n\r\n")
        assert part.sha256 == hashlib.sha256(data).hexdigest()
        by_group[part.group] = by_group.get(part.group, b"") + data.removeprefix(b"destination,n\r\n")
    assert len(by_group) == groups
    for group, data in by_group.items():
        expected = (row for number, row in enumerate(rows, start=2) if str(number % groups) == group[0])
        assert data == "".join(expected).encode()


def test_parts_of_a_header_only_file_are_none(tmp_path):
    assert write_csv_parts(write(tmp_path, "destination\n"), tmp_path) == []


# --- Hostile files: bounded time and memory, only regular files -----------------------------------


def long_row_file(tmp_path: Path, row_bytes: int) -> Path:
    """A header and one row of exactly ``row_bytes`` bytes (line end included), every field short."""
    fields = 500_000
    header = "destination" + ",c" * fields + "\n"
    head = "6175551234" + ",x" * (fields - 1) + ","
    row = head + "x" * (row_bytes - len(head) - 1) + "\n"
    assert len(row) == row_bytes
    return write(tmp_path, header + row)


@pytest.mark.parametrize("block_size", [1 << 16, 1 << 20, 1 << 22])
def test_a_row_of_the_maximum_length_is_read(tmp_path, block_size):
    assert preflight_csv(long_row_file(tmp_path, MAX_ROW_BYTES), block_size=block_size).rows == 1


@pytest.mark.parametrize("block_size", [1 << 16, 1 << 20, 1 << 22])
def test_a_row_one_byte_over_the_maximum_is_refused_naming_its_row(tmp_path, block_size):
    path = long_row_file(tmp_path, MAX_ROW_BYTES + 1)
    with pytest.raises(FuseCsvError, match=f"row 2 is longer than {MAX_ROW_BYTES} bytes") as caught:
        preflight_csv(path, block_size=block_size)
    assert "6175551234" not in str(caught.value)


def test_a_file_without_a_line_end_is_refused_as_row_1_too_long(tmp_path):
    path = write(tmp_path, b"x" * (MAX_ROW_BYTES + 2))
    with pytest.raises(FuseCsvError, match=f"row 1 is longer than {MAX_ROW_BYTES} bytes"):
        preflight_csv(path)


def test_a_row_of_many_quoted_lines_is_refused_once_past_the_maximum(tmp_path):
    # Each field is short and each line too: only the row as a whole is too long.
    data = "destination,note\n6175551234,a\n6175551235," + '"a\n",' * (MAX_ROW_BYTES // 5) + "b\n"
    with pytest.raises(FuseCsvError, match=f"row 3 is longer than {MAX_ROW_BYTES} bytes"):
        preflight_csv(write(tmp_path, data), block_size=1 << 16)


@pytest.mark.parametrize("block_size", [1 << 14, 1 << 16])
def test_a_row_of_long_quoted_fields_is_refused_once_past_the_maximum(tmp_path, block_size):
    # Each field is under csv's field size limit, and most blocks inside one hold no quote character:
    # they are still part of row 3.
    field = '"' + "plain line\n" * 9_000 + '"'
    data = "destination,note\n6175551234,a\n6175551235," + ",".join([field] * 12) + "\n"
    with pytest.raises(FuseCsvError, match=f"row 3 is longer than {MAX_ROW_BYTES} bytes"):
        preflight_csv(write(tmp_path, data), block_size=block_size)


@pytest.mark.parametrize("block_size", [1 << 16, 1 << 20])
def test_many_rows_of_quoted_lines_together_longer_than_the_maximum_are_read(tmp_path, block_size):
    rows = 2 * MAX_ROW_BYTES // 20
    data = "destination,note\n" + '6175551234,"two\nlines"\n' * rows
    assert preflight_csv(write(tmp_path, data), block_size=block_size).rows == rows


@pytest.mark.parametrize("block_size", [1 << 10, 1 << 20])
def test_a_header_field_over_the_csv_limit_is_a_csv_error_naming_row_1(tmp_path, block_size):
    data = "destination," + "x" * (csv.field_size_limit() + 1) + "\n6175551234,a\n"
    with pytest.raises(FuseCsvError, match="not valid CSV at row 1: field larger than field limit"):
        preflight_csv(write(tmp_path, data), block_size=block_size)


def refused_at_once(path: str | Path) -> str:
    """The preflight's error for ``path``, failing the test if it does not come within 5 seconds."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            preflight_csv(path)
        except BaseException as error:  # handed to the test thread
            outcome.append(error)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=5)
    assert outcome, "the preflight blocked"
    (error,) = outcome
    assert isinstance(error, FuseCsvError)
    return str(error)


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "contacts.csv"
    os.mkfifo(fifo)
    assert "not a regular file" in refused_at_once(fifo)


def test_a_device_is_refused_without_reading_it():
    assert "not a regular file" in refused_at_once("/dev/zero")


def test_a_unix_socket_is_refused(tmp_path):
    path = tmp_path / "s.csv"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        message = refused_at_once(path)
    assert "s.csv" in message


def test_a_missing_destination_column_is_described_by_position_never_by_name(tmp_path):
    # A first row without 'destination' may be a contact (no header row): none of it is shown.
    with pytest.raises(FuseCsvError) as caught:
        preflight_csv(write(tmp_path, "phone,first name,city\n6175551234,Ada,Boston\n"))
    message = str(caught.value)
    assert "(3 columns)" in message
    assert "column 1 looks like the phone-number column" in message
    assert "'destination'" in message
    for value in ("first name", "city", "Ada", "Boston"):
        assert value not in message


@pytest.mark.parametrize(
    "first_row",
    [
        "Jane Doe,jane.doe@example.com",  # a contact without a phone number
        "Jane,Doe,617,555,0100",  # a phone number split across columns
        "Jane Doe,617-555-O100",  # a letter O among the digits: read as a phone number
        ",".join(f"column_{index}" for index in range(30)),
    ],
)
def test_a_first_row_that_may_be_a_contact_is_never_quoted(tmp_path, first_row):
    values = first_row.split(",")
    with pytest.raises(FuseCsvError, match=r"no 'destination' column|holds a phone number") as caught:
        preflight_csv(write(tmp_path, first_row + "\n" + ",".join("x" * len(values)) + "\n"))
    message = str(caught.value)
    assert f"({len(values)} columns)" in message
    assert "the first row must be a header row" in message
    for value in values:
        assert value not in message


def test_a_bad_destination_lists_the_accepted_forms_once(tmp_path):
    from airflow_provider_fuse.preflight import ACCEPTED_FORMS

    with pytest.raises(FuseCsvError) as caught:
        preflight_csv(write(tmp_path, "destination\n617-555-1234\n(617) 555 1235\n6175551236\n"))
    message = str(caught.value)
    assert message.count(ACCEPTED_FORMS) == 1
    assert "tel:+" in ACCEPTED_FORMS
    assert ";ani=" in ACCEPTED_FORMS


def test_rows_that_are_only_empty_do_not_list_the_forms(tmp_path):
    from airflow_provider_fuse.preflight import ACCEPTED_FORMS

    with pytest.raises(FuseCsvError) as caught:
        preflight_csv(write(tmp_path, "destination,name\n,Ada\n6175551236,b\n"))
    assert ACCEPTED_FORMS not in str(caught.value)
