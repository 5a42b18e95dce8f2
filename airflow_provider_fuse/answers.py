"""Reading Fuse's answers and callbacks: JSON, or XML ``<result>...</result>``, as plain dicts.

Shared by the hook (Fuse's answers to our requests) and the results receiver (the ``call_details``
Fuse POSTs to a ``result_url``). XML is read, and turned into values, by
:mod:`airflow_provider_fuse.safe_xml`, as callbacks are: no DOCTYPE (so no entity), bounded depth
and size. Nothing here knows HTTP,
Airflow, or ``requests``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_provider_fuse.masking import shown_keys
from airflow_provider_fuse.safe_xml import XmlRefused, read_xml, xml_value

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["describe_body", "parse_answer"]

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


def describe_body(body: bytes, *, secrets: Iterable[str] = ()) -> str:
    """What ``body`` is, for an error that must not quote it (it may hold names, emails, numbers):
    ``a JSON object with keys error, message (212 bytes)``, ``an XML result with keys ...``,
    ``an HTML page (154 bytes)``, ``12 bytes that are neither a JSON object nor an XML result``,
    ``an empty body``. Keys are named as
    :func:`~airflow_provider_fuse.masking.shown_keys` names them (``secrets`` too).
    """
    size = f"{len(body)} byte{'' if len(body) == 1 else 's'}"
    text = body.strip().removeprefix(_BOM).strip()
    if not text:
        return "an empty body"
    answer = parse_answer(body)
    if answer is not None:
        kind = "a JSON object" if text.startswith(b"{") else "an XML result"
        keys = f" {shown_keys(answer, secrets=secrets)}" if answer else ""
        return f"{kind}{keys} ({size})"
    if text[:20].lower().startswith((b"<!doctype html", b"<html")):
        return f"an HTML page ({size})"
    return f"{size} that are neither a JSON object nor an XML result"
