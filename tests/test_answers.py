"""answers.parse_answer: Fuse's answers read by the callbacks' XML rules (issue 18, item 16).

Each case fails on the reader before the fix (``ElementTree.fromstring``), which expanded every
internal entity of an answer: a 460-byte answer became 6 MB of text.
"""

from __future__ import annotations

import tracemalloc

import pytest

from airflow_provider_fuse.answers import parse_answer
from airflow_provider_fuse.safe_xml import MAX_XML_BYTES, MAX_XML_DEPTH
from tests.test_safe_xml import DOCTYPES, laughs


def test_json_and_xml_answers_are_read():
    assert parse_answer(b' {"calls_queued": 3} ') == {"calls_queued": 3}
    xml = b'<?xml version="1.0"?>\n<result><calls_queued>3</calls_queued><e>a</e><e>b</e></result>'
    assert parse_answer(xml) == {"calls_queued": "3", "e": ["a", "b"]}
    assert parse_answer(b"<result/>") == {}


@pytest.mark.parametrize(
    "body",
    [
        b'\xef\xbb\xbf{"calls_queued": 3}',
        b'\xef\xbb\xbf<?xml version="1.0"?><result><calls_queued>3</calls_queued></result>',
        b"\xef\xbb\xbf<result><calls_queued>3</calls_queued></result>",
        b'\r\n\xef\xbb\xbf {"calls_queued": 3}',
    ],
)
def test_a_byte_order_mark_before_an_answer_is_skipped(body):
    assert parse_answer(body) in ({"calls_queued": 3}, {"calls_queued": "3"})


def test_an_entity_that_would_make_a_valid_answer_is_not_expanded():
    # Expanded, this is a well-formed count of 3: the answer must be refused, not read.
    answer = (
        b'<?xml version="1.0"?><!DOCTYPE result [<!ENTITY n "3">]>'
        b"<result><calls_queued>&n;</calls_queued></result>"
    )
    assert parse_answer(answer) is None


@pytest.mark.parametrize("document", DOCTYPES.values(), ids=DOCTYPES.keys())
def test_an_answer_with_a_doctype_is_not_fuses(document):
    assert parse_answer(document.encode()) is None


def test_billion_laughs_is_refused_without_being_expanded():
    bomb = laughs(6)
    tracemalloc.start()
    try:
        assert parse_answer(bomb) is None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Expanded: 6 MB of text and ~20 MB traced. Refused: a few kilobytes.
    assert peak < 600_000, f"peak {peak} bytes"


def test_answers_are_held_to_the_depth_and_size_bounds():
    deep = b"<result>" + b"<a>" * MAX_XML_DEPTH + b"x" + b"</a>" * MAX_XML_DEPTH + b"</result>"
    assert parse_answer(deep) is None
    fits = b"<result>" + b"<a>" * (MAX_XML_DEPTH - 1) + b"x" + b"</a>" * (MAX_XML_DEPTH - 1) + b"</result>"
    assert parse_answer(fits) is not None
    assert parse_answer(b"<result><e>" + b"x" * MAX_XML_BYTES + b"</e></result>") is None
