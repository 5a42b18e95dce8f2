"""Fuse-shaped answers: compact JSON, or ``<?xml version="1.0"?><result>...`` when XML is asked for."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

if TYPE_CHECKING:
    from airflow_provider_fuse.sandbox.models import Call

__all__ = ["call_details", "error_response", "fuse_response", "to_xml", "wants_xml"]

JSON_TYPE = "application/json"
XML_TYPE = "application/xml"


def wants_xml(accept: str | None) -> bool:
    """True when the ``Accept`` header prefers ``application/xml`` over ``application/json``.

    Media ranges are weighed by their ``q``; a tie goes to the one listed first. Anything that
    names neither gets JSON, as Fuse documents.
    """
    best: tuple[float, int, str] | None = None
    for position, item in enumerate((accept or "").split(",")):
        media, *params = (p.strip() for p in item.split(";"))
        media = media.lower()
        if media not in (JSON_TYPE, XML_TYPE):
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0 and (best is None or (quality, -position) > (best[0], best[1])):
            best = (quality, -position, media)
    return best is not None and best[2] == XML_TYPE


def _fill(element: ET.Element, value: Any) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _fill(ET.SubElement(element, str(key)), item)
    elif isinstance(value, list | tuple):
        # A list becomes repeated children named after the singular of the parent ("events" → "event").
        child_name = element.tag[:-1] if element.tag.endswith("s") else "item"
        for item in value:
            _fill(ET.SubElement(element, child_name), item)
    elif value is None:
        pass
    elif isinstance(value, bool):
        element.text = "1" if value else "0"
    else:
        element.text = str(value)


def to_xml(payload: Mapping[str, Any]) -> bytes:
    """``payload`` as Fuse's XML document: ``<?xml version="1.0"?>`` then an indented ``<result>``."""
    root = ET.Element("result")
    _fill(root, payload)
    ET.indent(root, space="  ")
    return b'<?xml version="1.0"?>\n' + ET.tostring(root, encoding="unicode").encode("utf-8") + b"\n"


def to_json(payload: Mapping[str, Any]) -> bytes:
    """``payload`` as compact JSON, the way the documented samples print it."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def fuse_response(
    status_code: int,
    payload: Mapping[str, Any] | None,
    xml: bool,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A response in Fuse's format; ``payload=None`` gives an empty body with no content type."""
    if payload is None:
        return Response(status_code=status_code, headers=dict(headers or {}))
    body = to_xml(payload) if xml else to_json(payload)
    return Response(
        content=body,
        status_code=status_code,
        media_type=XML_TYPE if xml else JSON_TYPE,
        headers=dict(headers or {}),
    )


def error_response(
    status_code: int, message: str, xml: bool, headers: Mapping[str, str] | None = None
) -> Response:
    """Fuse's failure answer: ``{"error": message}`` or ``<result><error>message</error></result>``."""
    return fuse_response(status_code, {"error": message}, xml, headers)


def call_details(call: Call, types: str) -> dict[str, Any]:
    """The ``call_details`` object of ``GET /outbound/{id}`` and of ``result_url`` callbacks.

    :param types: ``"strings"``: numbers as strings and the phone number wrapped in its own single
        quotes, as the documented sample shows; ``"native"``: JSON integers and a bare number.
        Absent values (no ``end_timestamp``, ``reattempt_wait``, or ``duration`` before completion)
        are ``null`` either way.
    """
    as_text = types == "strings"

    def number(value: int | None) -> int | str | None:
        if value is None:
            return None
        return str(value) if as_text else value

    return {
        "status": call.status,
        "attempts": number(call.attempts),
        "max_attempts": number(call.max_attempts),
        "queued_timestamp": number(call.queued_timestamp),
        "start_timestamp": number(
            call.start_timestamp if call.start_timestamp is not None else call.queued_timestamp
        ),
        "end_timestamp": number(call.end_timestamp),
        "reattempt_wait": number(call.reattempt_wait),
        "events": [{"event": e.event, "timestamp": number(e.timestamp)} for e in call.events],
        "duration": number(call.duration),
        "phone_number": f"'{call.phone_number}'" if as_text else call.phone_number,
    }
