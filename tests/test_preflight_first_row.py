"""A first row without a ``destination`` column: the error never shows any of its values.

Such a row may be a contact (a file without its header row): a name, an email, a phone number split
across columns or spelled with a letter. The only name the error may quote is the accepted one.
"""

from __future__ import annotations

import re
import string
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_fuse.exceptions import FuseCsvError
from airflow_provider_fuse.preflight import DESTINATION, preflight_csv

_NAMES = st.text(string.ascii_letters + " '-.", min_size=1, max_size=20)
_DIGITS = st.text(string.digits, min_size=1, max_size=15)
_PHONE_LIKE = st.from_regex(r"\+?[0-9]{3}[-. ]?[0-9O]{3}[-. ]?[0-9Ol]{4}", fullmatch=True)
_ANY = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters=',"\r\n'), min_size=1, max_size=20
)
_VALUE = st.one_of(st.emails(), _NAMES, _DIGITS, _PHONE_LIKE, _ANY)


def message_for(first_row: list[str]) -> str:
    """The preflight's error for a file whose first row is ``first_row``, a valid-looking row below."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "contacts.csv"
        rows = [first_row, ["6175550100"] * len(first_row)]
        path.write_text("".join(",".join(row) + "\n" for row in rows), encoding="utf-8")
        with pytest.raises(FuseCsvError) as caught:
            preflight_csv(path)
    return str(caught.value)


@given(st.lists(_VALUE.filter(lambda value: value != DESTINATION), min_size=1, max_size=8))
def test_no_value_of_a_first_row_without_destination_is_shown(first_row: list[str]) -> None:
    message = message_for(first_row)
    # What the message says whatever the values: the fixed text, the count and positions.
    fixed = message_for(["x"] * len(first_row)) + message_for(["Destination "]) + message_for(["phone"])

    assert set(re.findall(r"'([^']*)'", message)) <= {DESTINATION}
    for value in first_row:
        for run in re.findall(r"[0-9]{3,}", value):
            assert run not in message
        if len(value.strip()) >= 3 and value.strip() not in fixed:
            assert value.strip() not in message
