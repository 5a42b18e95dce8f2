"""safe_xml.read_xml: the one XML reader of Fuse's answers and callbacks (issue 18, item 16)."""

from __future__ import annotations

import sys
import tracemalloc
import xml.etree.ElementTree as ElementTree

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_fuse.safe_xml import (
    MAX_XML_BYTES,
    MAX_XML_DEPTH,
    XmlDoctypeRefused,
    XmlMalformed,
    XmlRefused,
    XmlTooDeep,
    XmlTooLarge,
    read_xml,
)

PHONE = "6175550100"


def laughs(levels: int, *, uses: int = 2) -> bytes:
    """A "billion laughs" document: each entity is ten of the one before; ``uses`` of the last one.
    With 6 levels it is about 450 bytes and expands to 3 MB per use."""
    entities = '<!ENTITY a0 "lollollollollollollollollollol">' + "".join(
        f'<!ENTITY a{level} "{f"&a{level - 1};" * 10}">' for level in range(1, levels + 1)
    )
    return (
        f'<?xml version="1.0"?><!DOCTYPE result [{entities}]>'
        f"<result><call_details><status>{f'&a{levels};' * uses}</status></call_details></result>"
    ).encode()


DOCTYPES = {
    "billion laughs": laughs(6).decode(),
    "internal entity": f'<!DOCTYPE r [<!ENTITY p "{PHONE}">]><result><number>&p;</number></result>',
    "external entity": '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><result>&x;</result>',
    "external DTD": '<?xml version="1.0"?><!DOCTYPE result SYSTEM "http://127.0.0.1:9/x.dtd"><result/>',
    "parameter entity": '<!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><result/>',
    "empty DOCTYPE": "<!DOCTYPE result><result/>",
}


@pytest.mark.parametrize("document", DOCTYPES.values(), ids=DOCTYPES.keys())
@pytest.mark.parametrize("form", [bytes, str])
def test_a_doctype_is_refused_before_anything_in_it_is_read(document, form):
    text = document if form is str else document.encode()
    with pytest.raises(XmlDoctypeRefused) as caught:
        read_xml(text)
    assert PHONE not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


def test_billion_laughs_costs_nothing_it_is_never_expanded():
    # Without the DOCTYPE rule expat expands this 460-byte document to 6 MB of text (its own
    # amplification guard starts at 8 MiB); refused, it allocates a few kilobytes. The bound is a
    # hundred times what the refusal takes and a tenth of what the expansion would: not a timing.
    bomb = laughs(6)
    assert len(bomb) < 500
    tracemalloc.start()
    try:
        with pytest.raises(XmlDoctypeRefused):
            read_xml(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 600_000, f"peak {peak} bytes"


def test_an_undeclared_entity_is_malformed_not_expanded():
    with pytest.raises(XmlMalformed):
        read_xml(b"<result><status>&x;</status></result>")


def test_the_predefined_entities_and_character_references_are_read():
    root = read_xml(b"<result><error>a &amp; b &lt;c&gt; &#65;&#x42;</error></result>")
    assert root.findtext("error") == "a & b <c> AB"


def nested(depth: int) -> bytes:
    return b"<a>" * depth + b"x" + b"</a>" * depth


def test_nesting_is_bounded_whatever_the_recursion_limit():
    assert read_xml(nested(MAX_XML_DEPTH)).tag == "a"
    with pytest.raises(XmlTooDeep):
        read_xml(nested(MAX_XML_DEPTH + 1))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(100)
    try:
        with pytest.raises(XmlTooDeep):
            read_xml(nested(100_000))
    finally:
        sys.setrecursionlimit(limit)


def test_a_caller_may_bound_depth_and_size_tighter_never_looser():
    with pytest.raises(XmlTooDeep):
        read_xml(nested(6), max_depth=5)
    with pytest.raises(XmlTooDeep):
        read_xml(nested(MAX_XML_DEPTH + 1), max_depth=10 * MAX_XML_DEPTH)
    with pytest.raises(XmlTooLarge):
        read_xml(b"<a>" + b"x" * 100 + b"</a>", max_bytes=100)
    with pytest.raises(XmlTooLarge):
        read_xml(b"<a>" + b"x" * MAX_XML_BYTES + b"</a>", max_bytes=2 * MAX_XML_BYTES)


def test_size_is_bounded_in_bytes_of_utf8():
    fits = b"<a>" + b"x" * (MAX_XML_BYTES - 7) + b"</a>"
    assert len(fits) == MAX_XML_BYTES
    assert read_xml(fits).text == "x" * (MAX_XML_BYTES - 7)
    with pytest.raises(XmlTooLarge):
        read_xml(fits + b" ")
    with pytest.raises(XmlTooLarge):  # 2 bytes each in UTF-8
        read_xml("<a>" + "é" * (MAX_XML_BYTES // 2) + "</a>")


@pytest.mark.parametrize(
    "document", [b"", b"   ", b"<a>", b"<a></b>", b"not xml", "<a>\ud800</a>", b"<a>\xff</a>", b"<a/><b/>"]
)
def test_what_is_not_well_formed_is_malformed(document):
    with pytest.raises(XmlMalformed):
        read_xml(document)


def test_every_refusal_is_a_value_error():
    assert issubclass(XmlRefused, ValueError)
    for refusal in (XmlDoctypeRefused, XmlTooDeep, XmlTooLarge, XmlMalformed):
        assert issubclass(refusal, XmlRefused)


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=40)
_TAG = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)


@st.composite
def trees(draw: st.DrawFn, depth: int = 0) -> ElementTree.Element:
    element = ElementTree.Element(draw(_TAG))
    if depth < MAX_XML_DEPTH - 1 and draw(st.booleans()):
        element.extend(draw(st.lists(trees(depth + 1), max_size=3)))
    else:
        element.text = draw(_TEXT)
    return element


@given(trees())
def test_any_document_within_the_bounds_reads_as_the_standard_parser_reads_it(tree):
    document = ElementTree.tostring(tree, encoding="utf-8")
    assert ElementTree.tostring(read_xml(document)) == ElementTree.tostring(ElementTree.fromstring(document))


@given(st.binary(max_size=200) | _TEXT.map(lambda text: f"<r>{PHONE}{text}"))
def test_a_refusal_never_quotes_the_document(document):
    refusals: list[str] = []
    try:
        read_xml(document)
    except XmlRefused as refusal:
        refusals.append(str(refusal))
    assert not [message for message in refusals if PHONE in message]
