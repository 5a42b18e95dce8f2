"""The suppression list: one normal form for a number, every source read whole or refused, no value
ever in an error or a log line, membership exactly a set's in bounded memory."""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from airflow.sdk import ObjectStoragePath
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_fuse import suppression
from airflow_provider_fuse.destinations import DESTINATION_FORMAT, destination_number
from airflow_provider_fuse.exceptions import FuseValidationError
from airflow_provider_fuse.suppression import (
    SuppressionList,
    SuppressionQuery,
    read_suppression_list,
    suppression_number,
)
from tests.helpers import connection_json, memory_storage

#: A number on the lists below, and the digits that would show it in a message or a log line.
NUMBER = "6175551234"
LOG = logging.getLogger("tests.suppression")

ten_digits = st.integers(0, 10**10 - 1).map(lambda number: f"{number:010d}")
# An area code, exchange and line as people write them: the area code never starts with 0 here, so
# that a bracketed area code is not a trunk prefix.
nanp_parts = st.tuples(
    st.integers(100, 999).map(str),
    st.integers(0, 999).map("{:03d}".format),
    st.integers(0, 9999).map("{:04d}".format),
)
e164 = st.integers(1, 9).flatmap(
    lambda first: st.integers(7, 14).flatmap(lambda rest: st.from_regex(rf"\A{first}[0-9]{{{rest}}}\Z"))
)


def refused(source: object, caplog: pytest.LogCaptureFixture) -> str:
    """The message of the error reading ``source`` raises; it names ``suppression_list``, and neither
    it nor anything logged holds the number."""
    caplog.set_level(logging.DEBUG)
    with pytest.raises(FuseValidationError) as caught:
        read_suppression_list(source, log=LOG)  # type: ignore[arg-type]
    assert caught.value.parameter == "suppression_list"
    for text in (str(caught.value), caplog.text):
        assert NUMBER not in text
        assert NUMBER[3:] not in text
    return caught.value.message


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- the normal form -------------------------------------------------------------------------------


@given(ten_digits)
def test_the_three_fuse_spellings_of_a_north_american_number_are_one_number(digits):
    spellings = (digits, f"1{digits}", f"tel:+1{digits}", f"+1{digits}")
    assert {suppression_number(spelling) for spelling in spellings} == {int(f"1{digits}")}


@given(e164)
def test_a_tel_or_plus_e164_number_is_its_digits(digits):
    assert suppression_number(f"tel:+{digits}") == suppression_number(f"+{digits}") == int(digits)


@given(
    nanp_parts,
    st.sampled_from(
        [
            "({a}) {b}-{c}",
            "{a}-{b}-{c}",
            "{a}.{b}.{c}",
            "1 ({a}) {b}-{c}",
            "+1 {a} {b} {c}",
            "+1 ({a}) {b}-{c}",
            "1-{a}-{b}-{c}",
            "tel:+1-{a}-{b}-{c}",
        ]
    ),
)
def test_a_crm_spelling_of_a_north_american_number_is_the_same_number(parts, pattern):
    area, exchange, line = parts
    assert suppression_number(pattern.format(a=area, b=exchange, c=line)) == int(f"1{area}{exchange}{line}")


@given(
    st.sampled_from(
        ["6175551234", "16175551234", "tel:+16175551234;ani=8009957586;postd=2", "tel:+442071838750"]
    ),
    st.sampled_from(["", " ", "\t", " \r\n"]),
)
def test_every_destination_is_its_destination_number_whatever_the_surrounding_whitespace(
    destination, padding
):
    assert suppression_number(f"{padding}{destination}{padding}") == destination_number(destination)


#: The options of a Fuse destination (``;ani=...``, ``;postd=...``, or none), drawn from the
#: destination grammar itself: what follows the number of any destination it matches.
fuse_options = st.from_regex(DESTINATION_FORMAT, fullmatch=True).map(
    lambda text: text[len(text.split(";")[0]) :]
)
crm_spellings = st.sampled_from(
    ["({a}) {b}-{c}", "{a}-{b}-{c}", "{a}.{b}.{c}", "+1 ({a}) {b}-{c}", "+1-{a}-{b}-{c}", "+1{a}{b}{c}"]
)


@pytest.mark.parametrize(
    "text", ["+1-617-555-1234;ani=8009957586", "+16175551234;postd=1", "(617) 555-1234;postd=2#"]
)
def test_a_plus_or_separated_number_takes_fuses_options(text):
    assert suppression_number(text) == 16175551234


@given(nanp_parts, crm_spellings, fuse_options)
def test_any_spelling_takes_the_options_a_destination_takes_and_they_change_nothing(parts, pattern, options):
    area, exchange, line = parts
    spelling = pattern.format(a=area, b=exchange, c=line)
    assert suppression_number(spelling + options) == suppression_number(spelling)


@given(nanp_parts, crm_spellings, st.text(";anipostd=+*#0123456789 x", max_size=30).map(";".__add__))
def test_options_are_accepted_after_a_spelling_exactly_where_a_destination_accepts_them(
    parts, pattern, options
):
    area, exchange, line = parts
    try:
        accepted = destination_number(f"tel:+1{area}{exchange}{line}{options}") > 0
    except ValueError:
        accepted = False
    try:
        number: int | None = suppression_number(pattern.format(a=area, b=exchange, c=line) + options)
    except ValueError:
        number = None
    assert number == (int(f"1{area}{exchange}{line}") if accepted else None)


@pytest.mark.parametrize(
    "text",
    [
        "+44 (0)20 7183 8750",  # the trunk prefix: read as digits it would be another number
        "(0617) 555-1234",
        "+(617) 555-1234",  # read as E.164 it would be +61 7…
        "6175551234.0",  # a spreadsheet's decimal
        "617555123.0",
        "6.175551234E9",
        "617-555-1234 x12",
        "0044 20 7183 8750",
        "617--555-1234",
        "617 555 1234-",
        "(617) (555) 1234",
        "617555123",
        "26175551234",
        "\u0666\u0661\u0667\u0665\u0665\u0665\u0661\u0662\u0663\u0664",
        "617\u00a0555\u00a01234",
        "",
        "tel:16175551234",
        "1" * 80,
    ],
)
def test_what_could_be_read_as_another_number_is_refused_without_repeating_it(text):
    with pytest.raises(ValueError, match="phone number|bracket|separator|decimal") as caught:
        suppression_number(text)
    assert len(text.strip()) < 7 or text.strip() not in str(caught.value)


# -- the list ------------------------------------------------------------------------------------


def separated_reading(text: str) -> int | None:
    """What the reading of numbers written with separators gives for ``text`` (``None``: refused)."""
    try:
        return suppression._separated_number(text.strip())
    except ValueError:
        return None


@given(st.text("0123456789\u0660\uff11 ", max_size=18).map("+".__add__))
def test_plus_and_digits_is_read_as_numbers_with_separators_are(text):
    # suppression_number reads + and digits without the separators' checks: the same answer.
    try:
        number: int | None = suppression_number(text)
    except ValueError:
        number = None
    assert number == separated_reading(text)


@given(st.lists(st.integers(10**9, 10**15)), st.lists(st.integers(10**9, 10**15)))
def test_membership_is_a_sets(numbers, others):
    suppression_list = SuppressionList(numbers)
    assert len(suppression_list) == len(set(numbers))
    for probe in [*numbers, *others]:
        assert (probe in suppression_list) == (probe in set(numbers))


@given(st.lists(st.integers(0, 60), max_size=300), st.lists(st.integers(0, 60)))
def test_membership_is_a_sets_when_the_list_is_sorted_in_many_runs(numbers, others):
    with mock.patch.object(suppression, "_RUN", 4):
        suppression_list = SuppressionList(numbers)
    assert len(suppression_list) == len(set(numbers))
    assert [probe in suppression_list for probe in range(61)] == [
        probe in set(numbers) for probe in range(61)
    ]
    assert suppression_list == SuppressionList(sorted(set(numbers)))


@given(st.lists(st.integers(10**9, 10**15)), st.randoms(use_true_random=False), st.data())
def test_the_digest_is_independent_of_order_and_repeats(numbers, random, data):
    repeats = data.draw(st.lists(st.sampled_from(numbers))) if numbers else []
    shuffled = [*numbers, *repeats]
    random.shuffle(shuffled)
    assert SuppressionList(shuffled).sha256 == SuppressionList(numbers).sha256
    extra = data.draw(st.integers(10**9, 10**15).filter(lambda number: number not in numbers))
    assert SuppressionList([*numbers, extra]).sha256 != SuppressionList(numbers).sha256


@given(ten_digits, st.sampled_from(["{}", "1{}", "tel:+1{}", "+1{}"]))
def test_the_digest_is_independent_of_spelling(digits, spelling):
    listed = SuppressionList.from_numbers([spelling.format(digits)], source="item")
    assert listed.sha256 == SuppressionList([int(f"1{digits}")]).sha256


def test_a_lookup_takes_the_normal_form_not_text():
    suppression_list = SuppressionList([int(f"1{NUMBER}")])
    assert int(f"1{NUMBER}") in suppression_list
    assert destination_number(f"tel:+1{NUMBER}") in suppression_list
    with pytest.raises(TypeError):
        assert NUMBER in suppression_list


def test_the_repr_shows_the_count_not_the_numbers():
    assert repr(SuppressionList([int(f"1{NUMBER}")])) == "SuppressionList(<1 numbers>)"
    assert NUMBER not in repr(SuppressionQuery("dnc", f"select '{NUMBER}'"))


# -- a list of numbers (an XComArg) --------------------------------------------------------------


def test_a_list_of_numbers_in_any_spelling_and_integers(caplog):
    caplog.set_level(logging.INFO)
    listed = read_suppression_list([NUMBER, f"tel:+1{NUMBER}", "(415) 555-0000", 14155550001], log=LOG)
    assert len(listed) == 3
    assert int(f"1{NUMBER}") in listed
    assert 14155550000 in listed
    assert 14155550001 in listed
    assert "3 distinct numbers" in caplog.text
    assert NUMBER not in caplog.text


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["4155550000", f"{NUMBER}x"], "item 2 is not a phone number: it holds a letter"),
        (["4155550000", ""], "item 2 is empty"),
        ([None], "item 1 is None, neither text nor an integer"),
        ([float(NUMBER)], "item 1 is a float, neither text nor an integer"),
        ([True], "item 1 is a bool, neither text nor an integer"),
    ],
)
def test_an_item_that_is_not_a_number_is_named_by_position(items, message, caplog):
    refusal = refused(items, caplog)
    assert refusal.startswith(message)
    assert "correct or remove" in refusal


@pytest.mark.parametrize(
    "value",
    [f"{NUMBER}x", f"{NUMBER} ext 2", f"{NUMBER}.0", "+(617) 555-1234", "617--555-1234", "0044 20 7183 8750"],
)
def test_a_value_refusal_says_not_a_phone_number_once_and_never_names_the_parameter_twice(value, caplog):
    refusal = refused(["4155550000", value], caplog)
    assert refusal.startswith("item 2 is not a phone number: ")
    assert refusal.count("phone number") == 1
    assert "suppression_list" not in refusal  # the error's own prefix names it


def test_an_extension_is_called_one(caplog):
    assert "an extension" in refused([f"{NUMBER} ext 2"], caplog)


def test_an_empty_list_is_a_list_and_the_log_says_so(caplog):
    caplog.set_level(logging.INFO)
    assert len(read_suppression_list([], log=LOG)) == 0
    assert "is empty: no row is suppressed" in caplog.text


@pytest.mark.parametrize("source", [int(NUMBER), None, NUMBER.encode(), {NUMBER: 1}])
def test_a_source_of_no_known_kind_is_refused_by_its_type(source, caplog):
    assert "must be a CSV path" in refused(source, caplog)


@pytest.mark.parametrize(
    "source",
    [NUMBER, f"{NUMBER},4155550000", f"[{NUMBER!r}]", f"(617) 555-{NUMBER[-4:]}", f"tel:+1{NUMBER}"],
)
def test_a_string_of_numbers_is_read_as_a_path_and_the_refusal_neither_shows_it_nor_leaves_the_user_stuck(
    source, caplog
):
    """A list given without its brackets, or an XCom rendered as text: read as a path, never echoed."""
    refusal = refused(source, caplog)
    assert "A string is read as the path of a CSV file" in refusal
    assert "give the numbers as a list" in refusal


@pytest.mark.parametrize("source", ["None", " ", ""])
def test_a_template_that_rendered_nothing_is_named_as_such(source, caplog):
    refusal = refused(source, caplog)
    assert "rendered nothing" in refusal
    assert "no such file" not in refusal


def test_a_missing_path_is_shown_without_the_number_it_holds(tmp_path, caplog):
    refusal = refused(tmp_path / f"dnc-{NUMBER}.csv", caplog)
    assert refusal.startswith("no such file: ")
    assert "[redacted]" in refusal
    assert "where the task runs" in refusal


# -- CSV files -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"destination\n{NUMBER}\ntel:+14155550000\n",
        f"first_name,destination\nAda,{NUMBER}\nGrace,(415) 555-0000\n",
        f"\ufeffphone\r\n{NUMBER}\r\n\r\n  \r\n+1 415 555 0000\r\n\n",
        f'destination\n"{NUMBER}"\n"+1 (415) 555-0000"',
    ],
)
def test_a_csv_of_a_destination_column_or_one_column(tmp_path, text, caplog):
    caplog.set_level(logging.INFO)
    listed = read_suppression_list(write(tmp_path / "dnc.csv", text), log=LOG)
    assert listed == SuppressionList([int(f"1{NUMBER}"), 14155550000])
    assert NUMBER not in caplog.text


def test_blank_lines_are_skipped_and_counted(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    read_suppression_list(str(write(tmp_path / "dnc.csv", f"destination\n\n{NUMBER}\n \n\n")), log=LOG)
    assert "3 blank lines skipped" in caplog.text


def test_a_header_alone_is_an_empty_list(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    assert len(read_suppression_list(write(tmp_path / "dnc.csv", "destination\n"), log=LOG)) == 0
    assert "is empty: no row is suppressed" in caplog.text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty: a suppression list CSV starts with a header row"),
        (f"{NUMBER}\n4155550000\n", "holds digits, not a column name: add a header row"),
        (f"name,phone\nAda,{NUMBER}\n", "no destination column in the header (row 1)"),
        (f"destination,destination\n{NUMBER},{NUMBER}\n", "more than one destination column"),
        (f"destination\n4155550000\n{NUMBER} ext 2\n", "row 3 of "),
        (f"destination\n4155550000\n+44 (0){NUMBER}\n", "is not a phone number"),
        (f"name,destination\nAda,{NUMBER}\nGrace\n", "has no destination cell"),
        (f"name,destination\nAda,{NUMBER}\nGrace,\n", "is empty; correct or remove"),
        (f'destination\n{NUMBER}\n"{NUMBER}\n', "is not CSV"),
        (f"destination\n{NUMBER}\n{NUMBER}\x00\n", "row 3"),
    ],
)
def test_a_csv_that_cannot_be_read_whole_names_the_row_not_the_value(tmp_path, text, message, caplog):
    assert message in refused(write(tmp_path / f"dnc-{NUMBER}.csv", text), caplog)


def test_a_csv_that_is_not_utf8_is_refused(tmp_path, caplog):
    path = tmp_path / "dnc.csv"
    path.write_bytes(f"destination\n{NUMBER}\n".encode() + b"\xff\xfe\n")
    assert "not UTF-8 text" in refused(path, caplog)


@pytest.mark.parametrize("make", ["missing", "directory", "fifo", "unreadable"])
def test_a_file_that_cannot_be_read_is_refused(tmp_path, make, caplog):
    path = tmp_path / "dnc.csv"
    if make == "directory":
        path.mkdir()
    elif make == "fifo":
        os.mkfifo(path)
    elif make == "unreadable":
        write(path, f"destination\n{NUMBER}\n").chmod(0)
        if os.access(path, os.R_OK):
            pytest.skip("running as a user who reads every file")
    message = refused(path, caplog)
    assert str(path) in message


def test_an_object_storage_path_on_a_local_file(tmp_path):
    path = write(tmp_path / "dnc.csv", f"destination\n{NUMBER}\n")
    assert int(f"1{NUMBER}") in read_suppression_list(ObjectStoragePath(f"file://{path}"), log=LOG)
    assert int(f"1{NUMBER}") in read_suppression_list(f"file://{path}", log=LOG)


@pytest.fixture
def memory_list():
    """``memory://dnc-bucket/dnc.csv`` holding one number."""
    with memory_storage({"/dnc-bucket/dnc.csv": f"destination\r\n{NUMBER}\r\n".encode()}):
        yield "memory://dnc-bucket/dnc.csv"


def test_a_remote_object_is_read_through_its_own_open(memory_list):
    assert len(read_suppression_list(ObjectStoragePath(memory_list), log=LOG)) == 1
    assert len(read_suppression_list(memory_list, log=LOG)) == 1


def test_a_remote_object_that_is_not_there_is_refused(memory_list, caplog):
    refusal = refused("memory://dnc-bucket/other.csv", caplog)
    # Airflow 3.1 spells a memory path memory:/..., later versions memory://...: only what we say is pinned.
    assert "no such object: memory:" in refusal
    assert "dnc-bucket/other.csv" in refusal


def test_a_remote_object_is_shown_without_the_number_or_the_credentials_its_uri_holds(memory_list, caplog):
    refusal = refused(f"memory://dnc-bucket/{NUMBER}.csv?token=s3cr3t-t0ken", caplog)
    assert "[redacted]" in refusal
    assert "s3cr3t-t0ken" not in refusal


class _FailingStream(io.RawIOBase):
    """A remote object's stream that fails on its second read, as botocore's read timeouts do (not
    an ``OSError``), with a message holding a credential and a number."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.reads = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self.reads += 1
        if self.reads > 1:
            raise self.error
        data = f"destination\n{NUMBER}\n".encode()
        buffer[: len(data)] = data
        return len(data)


def failing_object(error: Exception) -> object:
    """A remote object whose stream fails with ``error`` on its second read; recognised by its class
    name, as the module recognises an ``ObjectStoragePath``."""

    class ObjectStoragePath:
        protocol = "s3"

        def open(self, mode: str) -> io.BufferedReader:
            return io.BufferedReader(_FailingStream(error))

        def __str__(self) -> str:
            return "s3://dnc-bucket/dnc.csv?token=s3cr3t-t0ken"

    return ObjectStoragePath()


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError(f"connection reset reading s3://dnc-bucket/dnc.csv?token=s3cr3t-t0ken {NUMBER}"),
        TimeoutError(f"read timed out: s3cr3t-t0ken {NUMBER}"),
        ValueError(f"s3cr3t-t0ken {NUMBER}"),
    ],
)
def test_a_remote_object_that_fails_mid_read_is_refused_without_the_errors_text(error, caplog):
    refusal = refused(failing_object(error), caplog)
    assert refusal.startswith("s3://dnc-bucket/dnc.csv?token=*** ")
    assert f"read ({type(error).__name__}" in refusal
    if not isinstance(error, OSError):
        # The operator fails the task without a retry on a list it cannot read: a clear reads it again.
        assert "clear the task" in refusal
    assert "s3cr3t-t0ken" not in refusal
    assert "s3cr3t-t0ken" not in caplog.text


def test_two_hundred_thousand_numbers_stay_within_a_few_mib(tmp_path):
    path = tmp_path / "dnc.csv"
    with path.open("w") as file:
        file.write("destination\n")
        file.writelines(f"{2_000_000_000 + 48_271 * row % 7_999_999_999}\n" for row in range(200_000))
    tracemalloc.start()
    try:
        listed = read_suppression_list(path, log=LOG)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(listed) == 200_000
    # 8 bytes a number and a filter of 2 to 4; a Python set or a sorted list of them needs 40 or more.
    assert peak < 8 * 2**20, peak


# -- SQL -----------------------------------------------------------------------------------------


@pytest.fixture
def dnc_db(tmp_path, monkeypatch):
    """The connection ``dnc`` to a SQLite database with a table ``dnc`` of two numbers."""
    path = tmp_path / "dnc.db"
    with sqlite3.connect(path) as connection:
        connection.execute("create table dnc (phone text, id integer, number integer)")
        connection.executemany(
            "insert into dnc values (?, ?, ?)",
            [(NUMBER, 1, int(f"1{NUMBER}")), ("(415) 555-0000", 2, 14155550000)],
        )
    connection.close()
    monkeypatch.setenv("AIRFLOW_CONN_DNC", f"sqlite://{path}")
    return path


@pytest.mark.parametrize("column", ["phone", "number", "phone, id"])
def test_a_query_through_a_dbapi_connection(dnc_db, column, caplog):
    caplog.set_level(logging.INFO)
    listed = read_suppression_list(SuppressionQuery("dnc", f"select {column} from dnc"), log=LOG)
    assert listed == SuppressionList([int(f"1{NUMBER}"), 14155550000])
    assert "read from the query on connection 'dnc'" in caplog.text


def test_a_query_reads_more_rows_than_one_fetch(dnc_db):
    with sqlite3.connect(dnc_db) as connection:
        connection.executemany(
            "insert into dnc (phone) values (?)", [(str(14155550000 + row),) for row in range(25_000)]
        )
    connection.close()
    assert len(read_suppression_list(SuppressionQuery("dnc", "select phone from dnc"), log=LOG)) == 25_001


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("select phone from no_such_table", "the query on connection 'dnc' failed (OperationalError"),
        ("select null", "query row 1 has no number (NULL)"),
        (f"select '{NUMBER}' union all select '{NUMBER}9'", "query row 2 is not a phone number"),
        (f"select {NUMBER}.0", "query row 1 is a float, neither text nor an integer"),
        ("create table other (phone text)", "returns no result set (not a SELECT)"),
    ],
)
def test_a_query_that_cannot_be_read_whole_is_refused(dnc_db, sql, message, caplog):
    assert message in refused(SuppressionQuery("dnc", sql), caplog)


def test_a_failed_query_is_named_by_its_error_class_and_code_never_the_drivers_text(dnc_db, caplog):
    """Drivers quote the SQL in their messages (SQLite's ``near "...": syntax error``, Postgres's
    ``LINE 1: ...``), and the SQL may hold a name, an address or a number."""
    query = SuppressionQuery("dnc", "select phone from dnc where phone = 'jane@example.com' 'jane'")
    refusal = refused(query, caplog)
    assert "failed (OperationalError, SQLITE_ERROR)" in refusal
    assert "jane" not in refusal
    assert "jane" not in caplog.text


def test_a_failed_postgres_query_is_named_by_its_sqlstate_never_the_drivers_text(postgres_dnc, caplog):
    query = SuppressionQuery(
        postgres_dnc, "select phone from dnc where phone = 'jane@example.com' and nocol = 1"
    )
    refusal = refused(query, caplog)
    assert "failed (UndefinedColumn, SQLSTATE 42703)" in refusal
    assert "jane" not in refusal
    assert "LINE" not in refusal


def test_a_query_of_no_rows_is_refused_unless_the_list_may_be_empty(dnc_db, caplog):
    """A do-not-call table that lost its rows (a truncated table, the wrong database or schema) reads
    as a list that suppresses nobody: refused, unless the query says an empty list is expected."""
    refusal = refused(SuppressionQuery("dnc", "select phone from dnc where id < 0"), caplog)
    assert "returned no rows" in refusal
    assert "allow_empty=True" in refusal
    caplog.set_level(logging.INFO)
    empty = SuppressionQuery("dnc", "select phone from dnc where id < 0", allow_empty=True)
    assert len(read_suppression_list(empty, log=LOG)) == 0
    assert "is empty: no row is suppressed" in caplog.text


def test_a_connection_that_is_not_a_sql_database_is_refused(monkeypatch, caplog):
    monkeypatch.setenv("AIRFLOW_CONN_NOT_SQL", connection_json())
    assert "is FuseHook, not a DbApiHook" in refused(SuppressionQuery("not_sql", "select 1"), caplog)


def test_a_connection_that_is_not_defined_is_refused(caplog):
    assert "cannot get the hook of connection 'no_such_connection'" in refused(
        SuppressionQuery("no_such_connection", "select 1"), caplog
    )


def test_postgres_is_read_through_a_server_side_cursor():
    """A client-side cursor of psycopg holds the whole result in the driver's memory."""
    connection = mock.MagicMock()
    with suppression._cursor(mock.Mock(get_conn=mock.Mock(return_value=connection)), "postgres") as cursor:
        assert cursor is connection.cursor.return_value
    connection.cursor.assert_called_once_with(name="fuse_suppression_list")
    assert cursor.itersize == suppression._FETCH
    cursor.close.assert_called_once_with()
    connection.close.assert_called_once_with()


# -- a query's deadline ---------------------------------------------------------------------------

#: A query that runs for tens of seconds on SQLite (a hundred million recursive steps), so that a test
#: of the deadline fails, instead of hanging, where the query is not interrupted.
SLOW_SQLITE = (
    "with recursive c(x) as (select 1 union all select x + 1 from c where x < 100000000) "
    "select count(*) from c"
)


def test_a_query_has_a_deadline_of_ten_minutes_unless_it_says_otherwise():
    assert SuppressionQuery("dnc", "select 1").timeout == timedelta(minutes=10)
    assert SuppressionQuery("dnc", "select 1", timeout=30).timeout == 30
    assert "timeout=30" in repr(SuppressionQuery("dnc", "select 1", timeout=30))


@pytest.mark.parametrize("timeout", [0, -1, timedelta(0), True, "10", None, float("nan"), float("inf")])
def test_a_deadline_that_is_not_a_positive_time_is_refused(timeout):
    with pytest.raises(ValueError, match="timeout must be a timedelta or a number of seconds"):
        SuppressionQuery("dnc", "select 1", timeout=timeout)


def test_a_query_past_its_deadline_is_interrupted_and_refused(dnc_db, caplog):
    started = time.monotonic()
    refusal = refused(SuppressionQuery("dnc", SLOW_SQLITE, timeout=timedelta(seconds=0.3)), caplog)
    assert time.monotonic() - started < 5
    assert "the query on connection 'dnc' did not finish within 0.3 seconds" in refusal
    assert "timeout=" in refusal
    assert not [thread for thread in threading.enumerate() if thread.name == "fuse-suppression-deadline"]


def watchdogs() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "fuse-suppression-deadline"]


@pytest.mark.parametrize("timeout", [0.001, 0.02, 0.3])
def test_a_deadline_shorter_than_connecting_still_stops_the_query(dnc_db, timeout, caplog):
    """A deadline that passes before the statement starts (a slow connection lookup) is not lost: an
    interrupt with no statement running is a no-op, so the read is refused before ``execute``, and
    the watchdog interrupts again until the read ends."""
    started = time.monotonic()
    assert "did not finish within" in refused(SuppressionQuery("dnc", SLOW_SQLITE, timeout=timeout), caplog)
    assert time.monotonic() - started < 5
    assert not watchdogs()


def test_an_interrupt_lost_before_the_statement_starts_is_sent_again(dnc_db, monkeypatch, caplog):
    """The deadline passes just as ``execute`` starts, after the check before it: the first interrupt
    finds no statement, the next ones stop it."""
    monkeypatch.setattr(suppression._Deadline, "over", lambda self: False)
    started = time.monotonic()
    assert "did not finish within" in refused(SuppressionQuery("dnc", SLOW_SQLITE, timeout=0.001), caplog)
    assert time.monotonic() - started < 5
    assert not watchdogs()


def test_a_query_within_its_deadline_leaves_no_watchdog_behind(dnc_db):
    assert (
        len(read_suppression_list(SuppressionQuery("dnc", "select phone from dnc", timeout=60), log=LOG)) == 2
    )
    assert not [thread for thread in threading.enumerate() if thread.name == "fuse-suppression-deadline"]


def test_a_query_that_ends_after_its_deadline_is_refused_even_if_not_interrupted(dnc_db, monkeypatch, caplog):
    """A driver whose interrupt comes too late (the rows already fetched) still gives no list: the
    deadline is the rule, not whether the interrupt took."""
    monkeypatch.setattr(suppression, "_interrupt", lambda connection: None)
    counted = (
        "(with recursive c(x) as (select 1 union all select x + 1 from c where x < 3000000) "
        "select count(*) from c)"
    )
    query = SuppressionQuery("dnc", f"select phone from dnc where {counted} > 0", timeout=0.2)
    assert "did not finish within 0.2 seconds" in refused(query, caplog)


@pytest.mark.parametrize(
    ("methods", "called"),
    [(("interrupt", "cancel", "close"), "interrupt"), (("cancel", "close"), "cancel"), (("close",), "close")],
)
def test_the_deadline_interrupts_in_the_drivers_own_way(methods, called):
    """sqlite3 interrupts its statement, psycopg2 and psycopg cancel theirs, any other driver's
    connection is closed under the query."""
    connection = mock.Mock(spec=list(methods))
    suppression._interrupt(connection)
    assert [name for name, _, _ in connection.method_calls] == [called]


def test_a_driver_whose_interrupt_fails_has_its_connection_closed():
    connection = mock.Mock(spec=["interrupt", "close"])
    connection.interrupt.side_effect = RuntimeError("gone")
    suppression._interrupt(connection)
    connection.close.assert_called_once_with()


@pytest.fixture(scope="module")
def postgres_dnc():
    """The connection ``pg_dnc`` to a throwaway Postgres with a table ``dnc`` of one number (skipped
    where Postgres is not installed)."""
    from tests.results.test_table import throwaway_postgres

    with throwaway_postgres() as cluster:
        cluster.sql("create table dnc (phone text)", f"insert into dnc values ('{NUMBER}')")
        with mock.patch.dict(os.environ, {"AIRFLOW_CONN_PG_DNC": cluster.uri}):
            yield "pg_dnc"


@pytest.mark.parametrize("timeout", [0.001, 0.5])
def test_a_postgres_query_past_its_deadline_is_cancelled_and_refused(postgres_dnc, timeout, caplog):
    started = time.monotonic()
    query = SuppressionQuery(postgres_dnc, "select phone from dnc, pg_sleep(20)", timeout=timeout)
    assert "did not finish within" in refused(query, caplog)
    assert time.monotonic() - started < 10
    assert len(read_suppression_list(SuppressionQuery(postgres_dnc, "select phone from dnc"), log=LOG)) == 1


# -- imports -------------------------------------------------------------------------------------


def test_importing_the_module_imports_no_sql_or_object_storage_machinery():
    before = "import airflow_provider_fuse.exceptions, airflow_provider_fuse.destinations, sys"
    script = f"{before}; loaded = set(sys.modules); import airflow_provider_fuse.suppression; " + (
        "import json; print(json.dumps(sorted(set(sys.modules) - loaded)))"
    )
    added = json.loads(
        subprocess.run(
            [sys.executable, "-c", script], check=True, capture_output=True, text=True
        ).stdout.splitlines()[-1]
    )
    heavy = (
        "airflow.providers",
        "airflow.sdk.io",
        "fsspec",
        "upath",
        "sqlalchemy",
        "sqlite3",
        "requests",
        "httpx",
    )
    assert not [name for name in added if name.startswith(heavy)], added


# -- templating ----------------------------------------------------------------------------------


def test_a_query_declares_its_sql_and_connection_templated_and_compares_by_value():
    assert SuppressionQuery.template_fields == ("sql", "conn_id")
    assert SuppressionQuery("dnc", "select 1") == SuppressionQuery("dnc", "select 1")
    assert SuppressionQuery("dnc", "select 1") != SuppressionQuery("dnc", "select 2")


def test_a_query_in_the_operators_suppression_list_is_rendered_and_read(dnc_db, tmp_path):
    """Airflow renders an object that declares ``template_fields`` inside a template field, setting
    each attribute: the SQL and the connection are templated like the rest of the task."""
    from airflow_provider_fuse.operators.fuse import FuseBulkQueueOperator

    query = SuppressionQuery("{{ params.conn }}", "select phone from {{ params.table }}")
    task = FuseBulkQueueOperator(
        task_id="queue_calls",
        application_id=12,
        deployment_id=34,
        csv_path=str(tmp_path / "contacts.csv"),
        suppression_list=query,
    )
    task.render_template_fields({"params": {"conn": "dnc", "table": "dnc"}})
    assert task.suppression_list == SuppressionQuery("dnc", "select phone from dnc")
    assert read_suppression_list(task.suppression_list, log=LOG) == SuppressionList(
        [int(f"1{NUMBER}"), 14155550000]
    )
    assert "select" not in repr(task.suppression_list)
