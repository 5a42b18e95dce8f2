"""Reading Fuse's answers and callbacks: JSON, or XML ``<result>...</result>``, as plain dicts.

Shared by the hook (Fuse's answers to our requests) and the results receiver (the ``call_details``
Fuse POSTs to a ``result_url``). Nothing here knows HTTP, Airflow, or ``requests``.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from typing import Any

__all__ = ["parse_answer"]


def parse_answer(body: bytes) -> dict[str, Any] | None:
    """Read one of Fuse's answers: JSON, or XML ``<result>...</result>``.

    :return: the answer's fields (nested XML elements become dicts, repeated ones lists), or
        ``None`` when the body is neither (an HTML proxy page, an empty body).
    """
    text = body.strip()
    if text.startswith(b"{"):
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            return None
        return value if isinstance(value, dict) else None
    if text.startswith(b"<?xml") or text.startswith(b"<result"):
        try:
            root = ElementTree.fromstring(text)
        except (ElementTree.ParseError, RecursionError):
            return None
        if root.tag != "result":
            return None
        try:
            fields = _xml_value(root)
        except RecursionError:  # nested deeper than any answer of Fuse's: not one
            return None
        return fields if isinstance(fields, dict) else {}
    return None


def _xml_value(element: ElementTree.Element) -> Any:
    """An element's value: its text when it has no children, else a dict of its children's values
    (a repeated child becomes a list, in document order)."""
    children = list(element)
    if not children:
        return element.text or ""
    value: dict[str, Any] = {}
    repeated: set[str] = set()  # tags whose value is the list this function built
    for child in children:
        item = _xml_value(child)
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
