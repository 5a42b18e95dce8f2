"""Reading Fuse's answers and callbacks: JSON, or XML ``<result>...</result>``, as plain dicts.

Shared by the hook (Fuse's answers to our requests) and the results receiver (the ``call_details``
Fuse POSTs to a ``result_url``). XML is read, and turned into values, by
:mod:`airflow_provider_fuse.safe_xml`, as callbacks are: no DOCTYPE (so no entity), bounded depth
and size. Nothing here knows HTTP,
Airflow, or ``requests``.
"""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_fuse.safe_xml import XmlRefused, read_xml, xml_value

__all__ = ["parse_answer"]

#: UTF-8's byte order mark, which some servers write before a JSON or XML body.
_BOM = b"\xef\xbb\xbf"


def parse_answer(body: bytes) -> dict[str, Any] | None:
    """Read one of Fuse's answers: JSON, or XML ``<result>...</result>``.

    A UTF-8 byte order mark before it is skipped.

    :return: the answer's fields (nested XML elements become dicts, repeated ones lists), or
        ``None`` when the body is neither (an HTML proxy page, an empty body), or is XML that
        :func:`~airflow_provider_fuse.safe_xml.read_xml` refuses (a DOCTYPE or entity, nesting
        deeper than its bound, more than 1 MiB): such XML is not Fuse's, and is never expanded.
    """
    text = body.strip().removeprefix(_BOM).strip()
    if text.startswith(b"{"):
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            return None
        return value if isinstance(value, dict) else None
    if text.startswith(b"<?xml") or text.startswith(b"<result"):
        try:
            root = read_xml(text)
        except XmlRefused:
            return None
        if root.tag != "result":
            return None
        try:
            fields = xml_value(root)
        except RecursionError:  # nested deeper than any answer of Fuse's: not one
            return None
        return fields if isinstance(fields, dict) else {}
    return None
