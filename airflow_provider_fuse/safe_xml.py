"""The one XML reader for what the provider reads from outside: Fuse's answers and its callbacks.

The parser is the standard library's (expat, through :mod:`xml.etree.ElementTree`); what this
module adds are the three rules every reader of untrusted XML needs, checked while parsing:

- **no DOCTYPE**: a document can declare entities only in its DOCTYPE, so refusing it refuses every
  entity, internal ("billion laughs": a few hundred bytes expanding to megabytes)
  and external (XXE: a file or URL read into the document). It is refused as soon as the parser
  meets it, before any declaration in it is read. Only XML's five predefined entities (``&amp;``,
  ...) and character references remain, which expand to one character each;
- **a depth bound** (:data:`MAX_XML_DEPTH`): deeper nesting is refused while parsing, whatever
  Python's recursion limit is, so a recursive walk of the tree cannot exhaust the stack;
- **a size bound** (:data:`MAX_XML_BYTES` unless the caller gives a smaller one): a larger document
  is refused before it is parsed.

``defusedxml`` refuses the DOCTYPE the same way but bounds neither depth nor size, so it would not
replace any of this; it is not a dependency. Errors name the rule broken, never the text: the text
may carry a phone number. :func:`xml_value` turns a tree read so into plain values (texts, dicts,
lists). Nothing here knows HTTP, Airflow or Fuse.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from typing import Any

__all__ = [
    "MAX_XML_BYTES",
    "MAX_XML_DEPTH",
    "XmlDoctypeRefused",
    "XmlMalformed",
    "XmlRefused",
    "XmlTooDeep",
    "XmlTooLarge",
    "read_xml",
    "xml_value",
]

#: The deepest element accepted: ``<result><call_details><events><event><timestamp>`` is five levels.
MAX_XML_DEPTH = 32
#: The largest document read, in bytes (UTF-8 for text): the hook's read cap on an answer, 1 MiB.
#: Fuse's answers and callbacks are a few hundred bytes.
MAX_XML_BYTES = 1 << 20


class XmlRefused(ValueError):
    """XML that was not read. The message names the rule it broke, never the document's text."""


class XmlDoctypeRefused(XmlRefused):
    """The document has a DOCTYPE (the only place entities can be declared)."""


class XmlTooDeep(XmlRefused):
    """The document nests elements deeper than the bound."""


class XmlTooLarge(XmlRefused):
    """The document is larger than the bound."""


class XmlMalformed(XmlRefused):
    """The document is not well-formed XML (an undeclared entity included)."""


def read_xml(
    document: bytes | str, *, max_bytes: int = MAX_XML_BYTES, max_depth: int = MAX_XML_DEPTH
) -> ElementTree.Element:
    """The root element of ``document``, read under the rules of this module.

    :param document: the XML, as bytes (its declaration, else UTF-8, says the encoding) or as text
        (read as UTF-8: an ``encoding`` its declaration names other than UTF-8 is not honoured).
    :param max_bytes: the largest document read, at most :data:`MAX_XML_BYTES`.
    :param max_depth: the deepest nesting read, at most :data:`MAX_XML_DEPTH`.
    :raises XmlDoctypeRefused: a DOCTYPE, before anything in it is read.
    :raises XmlTooDeep: elements nested deeper than ``max_depth``.
    :raises XmlTooLarge: more than ``max_bytes`` bytes.
    :raises XmlMalformed: anything else the parser refuses (an undeclared entity, a broken tag, an
        empty document).
    """
    data = document.encode("utf-8", errors="surrogatepass") if isinstance(document, str) else document
    if len(data) > min(max_bytes, MAX_XML_BYTES):
        raise XmlTooLarge(f"XML of more than {min(max_bytes, MAX_XML_BYTES)} bytes is not read")
    parser = ElementTree.XMLParser(target=_Bounded(min(max_depth, MAX_XML_DEPTH)))
    try:
        parser.feed(data)
        root: ElementTree.Element = parser.close()
    except (XmlDoctypeRefused, XmlTooDeep):
        raise
    except (ElementTree.ParseError, RecursionError, ValueError, TypeError):
        # Raised outside the except block: a ParseError's text quotes the line and column only,
        # but nothing of the document may ride along as a cause either.
        pass
    else:
        return root
    raise XmlMalformed("the XML is not well-formed")


def xml_value(element: ElementTree.Element) -> Any:
    """An element's value: its text when it has no children, else a dict of its children's values
    (a repeated child becomes a list, in document order). Attributes and tails are not read.

    Recursive: give it a tree :func:`read_xml` returned (no deeper than :data:`MAX_XML_DEPTH`).
    """
    children = list(element)
    if not children:
        return element.text or ""
    value: dict[str, Any] = {}
    repeated: set[str] = set()  # tags whose value is the list this function built
    for child in children:
        item = xml_value(child)
        if child.tag not in value:
            value[child.tag] = item
        elif child.tag in repeated:
            # Appended in place: copying the list for each repeat made a body of many repeated
            # children cost quadratic time.
            value[child.tag].append(item)
        else:
            value[child.tag] = [value[child.tag], item]
            repeated.add(child.tag)
    return value


class _Bounded(ElementTree.TreeBuilder):
    """A tree builder that stops at a DOCTYPE and at an element nested deeper than ``max_depth``.

    The parser calls :meth:`doctype` where the DOCTYPE starts, before its internal subset (its
    entity declarations) is read; an exception raised here stops the parse.
    """

    def __init__(self, max_depth: int) -> None:
        super().__init__()
        self._depth = 0
        self._max_depth = max_depth

    def doctype(self, name: str, pubid: str, system: str) -> None:
        raise XmlDoctypeRefused("XML with a DOCTYPE (or entities) is not accepted")

    def start(self, tag: Any, attrs: Any) -> ElementTree.Element:
        self._depth += 1
        if self._depth > self._max_depth:
            raise XmlTooDeep(f"XML nested deeper than {self._max_depth} elements is not read")
        return super().start(tag, attrs)

    def end(self, tag: Any) -> ElementTree.Element:
        self._depth -= 1
        return super().end(tag)
