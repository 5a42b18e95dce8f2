"""The preflight is exact: the documented rules' answer for every file, wherever its blocks end.

Two kinds of proof. Properties (hypothesis): contact files are built from the documented rules — the
destination grammar of docs/destinations.md, CSV quoting, line ends, a BOM — together with the answer
those rules give (rows, bad rows and their row numbers, repeats of one E.164 number), and the preflight
must give that answer at any block size. Cases: tricky files are checked against :func:`reference`, a
plain ``csv.reader`` pass with a per-row regex and a set of numbers, at many block sizes, so that block
boundaries fall inside rows, between ``\\r`` and ``\\n``, and inside quoted fields.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_fuse.exceptions import FuseCsvError
from airflow_provider_fuse.preflight import (
    ACCEPTED_FORMS,
    DESTINATION_FORMAT,
    REPORTED_ROWS,
    destination_number,
    preflight_csv,
    write_csv_parts,
)

BLOCK_SIZES = [1, 2, 3, 5, 8, 13, 64, 1 << 20]


class _InvalidUtf8(Exception):
    pass


def reference(data: bytes) -> tuple:
    """The outcome a straightforward stdlib pass gives: a summary tuple, or the error's details."""
    has_bom = data.startswith(codecs.BOM_UTF8)
    body = data[len(codecs.BOM_UTF8) :] if has_bom else data
    try:
        text, invalid = body.decode("utf-8"), False
    except UnicodeDecodeError as error:
        valid = body[: error.start]
        text, invalid = valid[: max(valid.rfind(b"\n"), valid.rfind(b"\r")) + 1].decode("utf-8"), True

    def lines():
        yield from io.StringIO(text, newline="")
        if invalid:
            raise _InvalidUtf8

    reader = csv.reader(lines(), strict=True)
    records = 0
    try:
        header = next(reader, None)
        if header is None:
            return ("error", "the file is empty: it needs a header row with a 'destination' column")
        records = 1
        if header.count("destination") != 1:
            return ("error", "bad header")
        destination, width = header.index("destination"), len(header)
        bad: list[tuple[int, str]] = []
        bad_rows = 0
        seen: set[int] = set()
        duplicates: list[int] = []
        duplicate_rows = 0
        for row in reader:
            records += 1
            if len(row) != width:
                problem = "empty line" if not row else f"{len(row)} fields where the header has {width}"
            elif not row[destination]:
                problem = "destination is empty"
            elif DESTINATION_FORMAT.fullmatch(row[destination]) is None:
                problem = "destination is not in one of Fuse's formats"
            else:
                number = destination_number(row[destination])
                if number in seen:
                    duplicate_rows += 1
                    duplicates.append(records)
                seen.add(number)
                continue
            bad_rows += 1
            bad.append((records, problem))
    except _InvalidUtf8:
        return ("error", f"is not UTF-8 text (invalid bytes at or after row {records + 1})")
    except csv.Error as error:
        return ("error", f"is not valid CSV at row {records + 1}: {error}")
    if bad_rows:
        details = "; ".join(f"row {number}: {problem}" for number, problem in bad[:REPORTED_ROWS])
        more = "" if bad_rows <= REPORTED_ROWS else f"; and {bad_rows - REPORTED_ROWS} more"
        forms = f". Accepted forms: {ACCEPTED_FORMS}" if "not in one of Fuse's formats" in details else ""
        message = (
            f"{bad_rows} of {records - 1} data rows are invalid (the header is row 1): {details}{more}{forms}"
        )
        return ("bad rows", bad_rows, tuple(number for number, _ in bad[:REPORTED_ROWS]), message)
    return (
        "ok",
        records - 1,
        width,
        destination + 1,
        has_bom,
        duplicate_rows,
        tuple(duplicates[:REPORTED_ROWS]),
        len(data),
        hashlib.sha256(data).hexdigest(),
    )


def outcome(path: Path, block_size: int) -> tuple:
    """What :func:`preflight_csv` answers, in :func:`reference`'s shape."""
    try:
        summary = preflight_csv(path, block_size=block_size)
    except FuseCsvError as error:
        message = str(error).removeprefix("csv: ")
        if error.bad_rows:
            return ("bad rows", error.bad_rows, error.row_numbers, message)
        if message.startswith("the header"):
            return ("error", "bad header")
        return ("error", message)
    return (
        "ok",
        summary.rows,
        summary.columns,
        summary.destination_column,
        summary.has_bom,
        summary.duplicate_rows,
        summary.duplicate_row_numbers,
        summary.size,
        summary.sha256,
    )


def assert_same_as_reference(tmp_path: Path, data: bytes | str, block_sizes=BLOCK_SIZES) -> tuple:
    data = data.encode() if isinstance(data, str) else data
    path = tmp_path / "contacts.csv"
    path.write_bytes(data)
    expected = reference(data)
    for block_size in block_sizes:
        assert outcome(path, block_size) == expected, f"block_size={block_size}"
    return expected


# --- Properties: files built from the documented rules ------------------------------------------

_NANP = ["6175551234", "2125550000", "4155559999", "1617555123"]  # 10 digits; the last starts with 1
_E164 = ["442071838750", "4420718387", "33142685300", "1617555123"]  # tel:+ numbers that are not 1+10
_OPTION = st.sampled_from(
    ["", ";ani=8009957586", ";ani=+18009957586", ";postd=12#", ";postd=2;ani=8009957586"]
)


@st.composite
def valid_destination(draw: st.DrawFn) -> tuple[str, int]:
    """A destination in one of the documented forms, and the E.164 number it dials."""
    if draw(st.booleans()):
        digits = draw(st.sampled_from(_NANP))
        spelled = draw(st.sampled_from([digits, "1" + digits, "tel:+1" + digits]))
        number = int("1" + digits)
    else:
        e164 = draw(st.sampled_from(_E164))
        spelled, number = "tel:+" + e164, int(e164)
    return spelled + draw(_OPTION), number


#: Documented refusals (docs/destinations.md), and a Unicode digit.
_REFUSED = st.sampled_from(
    ["26175551234", "617555123", "617-555-1234", "+16175551234", "tel:16175551234", "tel:+0442071838750",
     "6175551234;ani=", "6175551234;foo=1", " 6175551234", "\u0666175551234", "tel:+16175551234;"]
)  # fmt: skip
_CELL = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)


def cell(value: str, quote: bool = False) -> str:
    """``value`` written as one CSV field: quoted when it must be (or when asked), quotes doubled."""
    if quote or not value or any(char in value for char in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def contact_file(draw: st.DrawFn, bad_rows: bool = True) -> tuple[bytes, dict]:
    """A contact CSV and the answer the documented rules give for it (``bad_rows``: it may have some)."""
    width = draw(st.integers(1, 4))
    column = draw(st.integers(0, width - 1))
    header = [cell(f"c{index}") for index in range(width)]
    header[column] = cell("destination", quote=draw(st.booleans()))
    lines, bad, numbers, destinations = [",".join(header)], [], [], []
    for row_number in range(2, draw(st.integers(0, 25)) + 2):
        kinds = ["valid"] * 6 + (
            ["refused", "empty", "extra field", "missing field", "blank"] if bad_rows else []
        )
        kind = draw(st.sampled_from(kinds))
        fields = [cell(draw(_CELL)) for _ in range(width)]
        if kind == "valid":
            destination, number = draw(valid_destination())
            fields[column] = cell(destination, quote=draw(st.booleans()))
            numbers.append((row_number, number))
            destinations.append(destination)
        elif kind == "refused":
            destinations.append(draw(_REFUSED))
            fields[column] = cell(destinations[-1])
            bad.append((row_number, "destination is not in one of Fuse's formats"))
        elif kind == "empty":
            fields[column] = '""'
            bad.append((row_number, "destination is empty"))
        elif kind == "extra field":
            fields.append(cell(draw(_CELL)))
            bad.append((row_number, f"{width + 1} fields where the header has {width}"))
        elif kind == "missing field" and width > 1:
            fields.pop()
            bad.append((row_number, f"{width - 1} fields where the header has {width}"))
        else:
            fields = []
            bad.append((row_number, "empty line"))
        lines.append(",".join(fields))
    ends = [draw(st.sampled_from(["\n", "\r\n"])) for _ in lines]
    if lines[-1] and draw(st.booleans()):
        ends[-1] = ""  # no line end after the last row
    bom = draw(st.booleans())
    data = (codecs.BOM_UTF8 if bom else b"") + "".join(map(str.__add__, lines, ends)).encode("utf-8")
    seen: set[int] = set()
    repeats = []
    for row_number, number in numbers:
        if number in seen:
            repeats.append(row_number)
        seen.add(number)
    answer = {
        "rows": len(lines) - 1, "width": width, "column": column + 1, "bom": bom, "bad": bad,
        "repeats": repeats, "destinations": destinations,
    }  # fmt: skip
    return data, answer


def written(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> Path:
    path = tmp_path_factory.getbasetemp() / "property-contacts.csv"
    path.write_bytes(data)
    return path


@settings(max_examples=200, deadline=None)
@given(case=contact_file(), block_size=st.one_of(st.integers(1, 64), st.just(1 << 20)))
def test_the_preflight_gives_the_documented_answer_for_any_contact_file(tmp_path_factory, case, block_size):
    data, answer = case
    path = written(tmp_path_factory, data)
    if answer["bad"]:
        with pytest.raises(FuseCsvError) as caught:
            preflight_csv(path, block_size=block_size)
        named = answer["bad"][:REPORTED_ROWS]
        assert caught.value.bad_rows == len(answer["bad"])
        assert caught.value.row_numbers == tuple(number for number, _ in named)
        for number, problem in named:
            assert f"row {number}: {problem}" in str(caught.value)
        return
    summary = preflight_csv(path, block_size=block_size)
    assert (summary.rows, summary.columns, summary.destination_column, summary.has_bom) == (
        answer["rows"], answer["width"], answer["column"], answer["bom"]
    )  # fmt: skip
    assert summary.duplicate_rows == len(answer["repeats"])
    assert summary.duplicate_row_numbers == tuple(answer["repeats"][:REPORTED_ROWS])
    assert (summary.size, summary.sha256) == (len(data), hashlib.sha256(data).hexdigest())


@settings(max_examples=200, deadline=None)
@given(case=contact_file(bad_rows=False), block_size=st.one_of(st.integers(1, 64), st.just(1 << 20)))
def test_repeats_are_counted_by_the_e164_number_they_dial(tmp_path_factory, case, block_size):
    data, answer = case
    path = written(tmp_path_factory, data)
    summary = preflight_csv(path, block_size=block_size)
    assert summary.duplicate_rows == len(answer["repeats"])
    assert summary.duplicate_row_numbers == tuple(answer["repeats"][:REPORTED_ROWS])


@settings(max_examples=100, deadline=None)
@given(case=contact_file())
def test_no_destination_of_a_refused_file_appears_in_the_error(tmp_path_factory, case):
    data, answer = case
    path = written(tmp_path_factory, data)
    with pytest.raises(FuseCsvError) if answer["bad"] else contextlib.nullcontext() as caught:
        preflight_csv(path)
    if caught is not None:
        for destination in answer["destinations"]:
            assert destination.strip() not in str(caught.value)


# --- One case per tricky thing ---------------------------------------------------------------------

CASES = {
    "plain LF": "destination,name\n6175551234,Ada\n16175551235,Grace\n",
    "plain CRLF": "destination,name\r\n6175551234,Ada\r\n16175551235,Grace\r\n",
    "mixed line ends": "destination,name\r\n6175551234,Ada\n16175551235,Grace\r\n6175551236,Alan\n",
    "CR only": "destination,name\r6175551234,Ada\r16175551235,Grace\r",
    "no final line end": "destination,name\n6175551234,Ada\n16175551235,Grace",
    "BOM": "\ufeffdestination,name\r\n6175551234,Ada\r\n",
    "destination not first": "name,destination,note\nAda,6175551234,x\nGrace,tel:+16175551235,y\n",
    "destination last": "name,note,destination\nAda,x,6175551234\nGrace,y,16175551235\n",
    "single column": "destination\n6175551234\n16175551235\n",
    "quoted comma": 'destination,name\n6175551234,"Lovelace, Ada"\n6175551235,Grace\n',
    "quoted quote": 'destination,name\n6175551234,"say ""hi"""\n6175551235,Grace\n',
    "quoted LF": 'destination,note\n6175551234,"line one\nline two"\nbad,x\n6175551235,z\n',
    "quoted CRLF": 'destination,note\r\n6175551234,"line one\r\nline two"\r\nbad,x\r\n',
    "quoted destination": 'destination,name\n"6175551234",Ada\n"bad",Grace\n',
    "quoted header": '"destination","name"\n6175551234,Ada\n',
    "header with newline in a quoted name": '"first\nname",destination\nAda,6175551234\n',
    "blank line": "destination,name\n6175551234,Ada\n\n6175551235,Grace\n",
    "blank line single column": "destination\n6175551234\n\n6175551235\n",
    "CRLF blank line": "destination,name\r\n6175551234,Ada\r\n\r\n6175551235,Grace\r\n",
    "too few fields": "destination,name\n6175551234\n6175551235,Grace\n",
    "too many fields": "destination,name\n6175551234,Ada,x\n6175551235,Grace\n",
    "bad destinations": "destination,name\n555-1234,a\n,b\n 6175551234,c\n6175551234 ,d\ntel:16175551234,e\n",
    "more than five bad rows": "destination\n" + "x\n" * 12 + "6175551234\n",
    "every format and option": (
        "destination\n6175551234\n16175551235\ntel:+16175551236\ntel:+442071838750\n"
        "6175551237;ani=8009957586\ntel:+16175551238;ani=8009957586;postd=2\n16175551239;postd=12#\n"
        "tel:+16175551230;postd=2;ani=8009957586\n26175551234\n01234567890\ntel:+12345678\n"
    ),
    "duplicates across formats": (
        "destination,name\n6175551234,a\n16175551234,b\ntel:+16175551234;ani=8009957586,c\n"
        "6175551235,d\ntel:+442071838750,e\ntel:+442071838750;postd=1,f\n1617555123,g\n11617555123,h\n"
    ),
    "same digits, different numbers": (
        "destination\n4420718387\ntel:+4420718387\n26175551234\ntel:+26175551234\n"
    ),
    "more than five duplicates": "destination\n" + "6175551234\n" * 9,
    "non-ASCII names": "destination,name\n6175551234,Zoë\n6175551235,Łukasz\n",
    "NUL byte": "destination,name\n6175551234,a\x00b\n",
    "tab and spaces": "destination,name\n6175551234,a\tb c\n",
    "unclosed quote": 'destination,name\n6175551234,"unclosed\n6175551235,x\n',
    "text after a closing quote": 'destination,name\n6175551234,"a"b\n',
    "header only": "destination,name\n",
    "header only without line end": "destination,name",
    "empty": "",
    "only a BOM": "\ufeff",
    "no destination column": "phone,name\n6175551234,x\n",
    "destination twice": "destination,destination\n1,2\n",
    "Unicode digits and 11 digits not starting with 1": (
        "destination\n6175551234\n\u0666\u0661\u0667\u0665\u0665\u0665\u0661\u0662\u0663\u0664\n"
        "\uff16\uff11\uff17\uff15\uff15\uff15\uff11\uff12\uff13\uff14\n26175551234\n"
        "6175551234;ani=\u0668009957586\n"
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_each_tricky_case_matches_the_stdlib_reader_at_every_block_size(tmp_path, name):
    assert_same_as_reference(tmp_path, CASES[name])


@pytest.mark.parametrize(
    "data",
    [
        b"destination,name\n6175551234,Zo\xe9\n",
        b"destination,name\n6175551234,a\n6175551235,b\xff\n6175551236,c\n",
        b"destination,name\r\n6175551234,a\r\n6175551235,\xe9\r\n",
        b"destination,name\r6175551234,a\r6175551235,\xe9\r",
        b'destination,note\n6175551234,"multi\nline \xe9"\n',
        b"dest\xe9nation,name\n6175551234,a\n",
        b"\xef\xbb\xbfdestination\n6175551234\n\xc3",
    ],
)
def test_invalid_utf8_names_the_row_it_is_in(tmp_path, data):
    expected = assert_same_as_reference(tmp_path, data)
    assert "not UTF-8" in expected[1]


def test_a_bad_row_right_at_a_block_boundary_is_found(tmp_path):
    row = b"6175551234,x\n"  # 13 bytes
    header = b"destination,n\n"  # 14 bytes
    for bad_index in range(6):
        rows = [row] * 6
        rows[bad_index] = b"617555123X,x\n"
        data = header + b"".join(rows)
        expected = assert_same_as_reference(tmp_path, data, block_sizes=[13, 14, 26, 27, 28])
        assert expected[2] == (bad_index + 2,)


def test_a_quoted_newline_crossing_block_boundaries_is_one_row(tmp_path):
    data = 'destination,note\n6175551234,"' + "a\n" * 40 + '"\nbad,x\n6175551235,y\n'
    expected = assert_same_as_reference(tmp_path, data, block_sizes=range(1, 40))
    assert expected[:3] == ("bad rows", 1, (3,))


def test_a_field_longer_than_the_csv_limit_is_refused_as_csv_does(tmp_path):
    data = "destination,note\n6175551234," + "x" * (csv.field_size_limit() + 1) + "\n"
    expected = assert_same_as_reference(tmp_path, data, block_sizes=[1 << 16, 1 << 20])
    assert "field larger than field limit" in expected[1]


def test_a_header_field_longer_than_the_csv_limit_is_refused_as_csv_does(tmp_path):
    data = "destination," + "x" * (csv.field_size_limit() + 1) + "\n6175551234,a\n"
    expected = assert_same_as_reference(tmp_path, data, block_sizes=[1 << 10, 1 << 16, 1 << 20])
    assert expected[1].startswith("is not valid CSV at row 1: field larger than field limit")


def test_a_long_line_under_the_csv_limit_is_accepted(tmp_path):
    data = "destination,note\n6175551234," + "x" * (csv.field_size_limit() - 10) + "\n6175551235,y\n"
    assert assert_same_as_reference(tmp_path, data, block_sizes=[1 << 10, 1 << 20])[0] == "ok"


# --- Many generated files ---------------------------------------------------------------------------

_NUMBERS = [f"{area}555{line:04d}" for area in (617, 212, 415) for line in range(8)]


def _destination(rng: random.Random) -> str:
    kind = rng.random()
    number = rng.choice(_NUMBERS)
    if kind < 0.75:
        form = rng.choice([number, "1" + number, "tel:+1" + number])
        option = rng.choice(["", "", "", ";ani=8009957586", ";postd=2#", ";ani=+18009957586;postd=1"])
        return form + option
    if kind < 0.85:
        return rng.choice(
            ["tel:+442071838750", "tel:+4420718387", "26175551234", "01234567890", "tel:+12345678"]
        )
    return rng.choice(["", "x", "555-1234", " " + number, number + " ", "tel:" + number, number + ";ani="])


def _other(rng: random.Random) -> str:
    return rng.choice(
        ["Ada", "", "a b", "Zoë", "x" * 30, '"Lovelace, Ada"', '"say ""hi"""', '"l1\nl2"', '"l1\r\nl2"', "7"]
    )


def _generated_file(rng: random.Random) -> bytes:
    width = rng.randint(1, 4)
    destination = rng.randrange(width)
    header = [f"c{index}" for index in range(width)]
    header[destination] = rng.choice(["destination", "destination", '"destination"'])
    newline = rng.choice(["\n", "\r\n", "mixed"])
    lines = [",".join(header)]
    for _ in range(rng.randint(0, 40)):
        roll = rng.random()
        if roll < 0.03:
            lines.append("")
            continue
        fields = [_other(rng) for _ in range(width)]
        fields[destination] = _destination(rng)
        if roll < 0.08:
            fields.append("extra")
        elif roll < 0.12 and width > 1:
            fields.pop()
        lines.append(",".join(fields))
    ends = [rng.choice(["\n", "\r\n", "\r"]) if newline == "mixed" else newline for _ in lines]
    text = "".join(line + end for line, end in zip(lines, ends, strict=True))
    if rng.random() < 0.2:
        text = text.rstrip("\r\n")
    data = text.encode()
    if rng.random() < 0.15:
        data = codecs.BOM_UTF8 + data
    if rng.random() < 0.05 and data:
        at = rng.randrange(len(data))
        data = data[:at] + rng.choice([b"\xff", b"\xe9", b'"', b"\x00"]) + data[at:]
    return data


@pytest.mark.parametrize("seed", range(8))
def test_generated_files_match_the_stdlib_reader(tmp_path, seed):
    rng = random.Random(seed)
    for _ in range(60):
        data = _generated_file(rng)
        assert_same_as_reference(
            tmp_path, data, block_sizes=[rng.randint(1, 80), rng.randint(1, 400), 1 << 20]
        )


# --- Repeats and parts ------------------------------------------------------------------------------


def test_repeats_are_found_exactly_across_many_blocks_and_ranges(tmp_path, monkeypatch):
    import airflow_provider_fuse.preflight as preflight

    monkeypatch.setattr(preflight, "_RANGE_NUMBERS", 16)  # many value ranges, as a big file has
    rng = random.Random(5)
    numbers = [rng.randrange(2_000_000_000, 9_999_999_999) for _ in range(3_000)]
    rows = [str(rng.choice(numbers[:2_000])) if rng.random() < 0.1 else str(n) for n in numbers]
    data = "destination\n" + "\n".join(rows) + "\n"
    expected = assert_same_as_reference(tmp_path, data, block_sizes=[7, 500, 1 << 20])
    assert expected[5] > 100


def test_dropping_repeats_keeps_the_first_row_of_each_number_in_any_format(tmp_path):
    data = (
        "destination,n\n6175551234,a\ntel:+442071838750,b\n16175551234,c\n"
        "tel:+442071838750;ani=8009957586,d\n6175551235,e\ntel:+16175551235,f\n"
    )
    path = tmp_path / "contacts.csv"
    path.write_text(data)
    (part,) = write_csv_parts(path, tmp_path, drop_duplicate_destinations=True)
    assert Path(part.path).read_text() == "destination,n\n6175551234,a\ntel:+442071838750,b\n6175551235,e\n"


def test_memory_grows_by_about_eight_bytes_per_row(tmp_path, monkeypatch):
    import tracemalloc

    import airflow_provider_fuse.preflight as preflight

    # Small runs and value ranges, so both files are past the sizes where the per-run and per-range
    # work stops growing: what remains is the 8 bytes kept per row.
    monkeypatch.setattr(preflight, "_RANGE_NUMBERS", 4096)
    monkeypatch.setattr(preflight, "_RUN_ROWS", 4096)

    def peak(rows: int) -> int:
        path = tmp_path / f"contacts-{rows}.csv"
        rng = random.Random(rows)
        numbers = rng.sample(range(2_000_000_000, 10_000_000_000), rows)
        path.write_text("destination,name\n" + "".join(f"1{number},Ada\n" for number in numbers))
        tracemalloc.start()
        try:
            assert preflight_csv(path, block_size=1 << 16).rows == rows
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, big = peak(20_000), peak(220_000)
    assert big - small < 200_000 * 12
