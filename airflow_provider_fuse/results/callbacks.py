"""Reading the ``call_details`` Fuse POSTs to a ``result_url``, in whichever form it comes.

Fuse documents that it POSTs a call's ``call_details`` to ``result_url`` when the call completes, is
canceled or exhausts its attempts, but not the body's format. :func:`read_callback` accepts every
form a sender is likely to use, and reads the values with :meth:`CallDetails.from_answer` (numbers as
strings, the phone number wrapped in its own quotes, events from JSON or XML):

- JSON: ``{"call_details": {...}}``, or the ``call_details`` object itself;
- XML: ``<result><call_details>...</call_details></result>``, or ``<call_details>`` as the root (no
  DOCTYPE, so no entities: a body declaring one is refused);
- ``application/x-www-form-urlencoded`` and ``multipart/form-data``: a ``call_details`` field holding
  JSON or XML; or the fields of ``call_details`` themselves (``status``, ``attempts``, ...; ``events``
  as JSON text), also as ``call_details[status]``, ``call_details[events][0][event]``, ...

The content type decides; a missing one (or ``text/plain``, ``application/octet-stream``) is sniffed
from the body: ``{`` is JSON, ``<`` is XML, anything else form fields. Bodies are UTF-8 (``us-ascii``
and ``iso-8859-1`` are taken when declared). Errors name what is wrong and never quote the body: it
carries a phone number. Nothing here knows Airflow or the web framework.
"""

from __future__ import annotations

import json
import re
from email.message import Message
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import parse_qsl

from airflow_provider_fuse.calls import NUMBER_FIELDS, CallDetails
from airflow_provider_fuse.exceptions import FuseInvalidResponseError
from airflow_provider_fuse.safe_xml import XmlDoctypeRefused, XmlRefused, XmlTooDeep, read_xml, xml_value

if TYPE_CHECKING:
    import xml.etree.ElementTree as ElementTree

__all__ = ["CALL_DETAILS_NUMBERS", "FIELD_NAMES", "MAX_BODY_BYTES", "CallbackError", "read_callback"]

#: The largest callback body read: 64 KiB. A ``call_details`` is a few hundred bytes.
MAX_BODY_BYTES = 64 * 1024
#: The most form fields read from one body.
MAX_FIELDS = 256
#: The deepest form field name (``call_details[events][0][event]`` is 4 deep).
MAX_NAME_DEPTH = 6

# Numbers are stored as BIGINT: anything outside it is not one of Fuse's.
_BIGINT = range(-(2**63), 2**63)
#: The numeric fields of ``call_details`` (:data:`~airflow_provider_fuse.calls.NUMBER_FIELDS`), in the
#: results table's column order. The order is part of every stored outcome's ``delivery_key``:
#: never reorder it.
CALL_DETAILS_NUMBERS = NUMBER_FIELDS
# A list index in a form field name: ASCII digits only ("²".isdigit() is true, int("²") fails), and
# few of them (int() refuses more than 4,300 digits; a list of 256 fields needs 3).
_INDEX = re.compile(r"[0-9]{1,9}")
# A status is a word or two (``completed``, ``no answer``): anything else is not Fuse's.
_STATUS = re.compile(r"[A-Za-z][A-Za-z0-9 _-]{0,63}")
#: The names an error message may show: ``call_details``, its fields, and an event's fields. Any
#: other text of the body (a value, a field name the sender chose) is never quoted.
FIELD_NAMES = frozenset(
    {
        "call_details",
        "result",
        "status",
        *CALL_DETAILS_NUMBERS,
        "events",
        "event",
        "timestamp",
        "phone_number",
        "call_id",
    }
)
_SHOWN_INDEX = re.compile(r"[0-9]{1,3}")
# What no database stores as text: NUL and the other C0 controls but tab, line feed and carriage
# return (XML 1.0 refuses the same), and lone surrogates (no UTF-8 for them: Postgres and SQLite
# refuse the value, so the store would fail on every retry).
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
_FIELD_NAME = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_JSON_TYPES = frozenset({"application/json", "text/json"})
_XML_TYPES = frozenset({"application/xml", "text/xml"})
_FORM = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"
# A sender that labels its body vaguely (or not at all): the body says what it is.
_SNIFFED_TYPES = frozenset({"", "text/plain", "application/octet-stream", "*/*"})
_CHARSETS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "us-ascii": "utf-8",  # a subset of UTF-8: stray bytes above 127 are refused as invalid UTF-8
    "ascii": "utf-8",
    "iso-8859-1": "iso-8859-1",
    "latin-1": "iso-8859-1",
    "latin1": "iso-8859-1",
}


class CallbackError(ValueError):
    """A callback body that cannot be read as a ``call_details``.

    :param status_code: what to answer the sender: 400 (unreadable), 413 (too large) or 415 (a
        content type or charset that is not accepted).

    The message names what is wrong (a field name at most), never the body or any value in it.
    """

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code


def read_callback(body: bytes, content_type: str | None) -> CallDetails:
    """The ``call_details`` in one callback body.

    :param body: the request body, at most :data:`MAX_BODY_BYTES`.
    :param content_type: the request's ``Content-Type`` header, if any (its ``charset`` and, for
        multipart, ``boundary`` are used).
    :return: the call's details, typed; ``phone_number`` without Fuse's quotes, ``call_id`` ``None``
        (callbacks carry none).
    :raises CallbackError: with ``status_code`` 413 for a body over :data:`MAX_BODY_BYTES`, 415 for a
        content type or charset not accepted, 400 for anything unreadable: not JSON/XML/form fields, a
        DOCTYPE, invalid UTF-8, no ``call_details``, no status, a number that is not one.
    """
    if len(body) > MAX_BODY_BYTES:
        raise CallbackError(f"the callback body is larger than {MAX_BODY_BYTES} bytes", 413)
    media_type, charset, boundary = _content_type(content_type)
    if media_type == _MULTIPART:
        if not boundary:
            raise CallbackError("multipart/form-data without a boundary")
        details = _from_fields(_multipart_fields(body, boundary, charset))
    else:
        text = _decode(body, charset)
        if media_type in _SNIFFED_TYPES:
            media_type = _sniff(text)
        if media_type in _JSON_TYPES or media_type.endswith("+json"):
            details = _from_json(text)
        elif media_type in _XML_TYPES or media_type.endswith("+xml"):
            details = _from_xml(text)
        elif media_type == _FORM:
            details = _from_fields(_urlencoded_fields(text, charset))
        else:
            raise CallbackError(
                "unsupported content type: send JSON, XML, application/x-www-form-urlencoded or "
                "multipart/form-data",
                415,
            )
    return _call_details(details)


# --- Content type and text ---------------------------------------------------------------------------


def _content_type(header: str | None) -> tuple[str, str, str]:
    """(media type in lower case, Python codec, multipart boundary) of a ``Content-Type`` header."""
    if not header or not header.strip():
        return "", "utf-8", ""
    message = Message()
    message["content-type"] = header
    media_type = message.get_content_type() if "/" in header.split(";", 1)[0] else ""
    # email's default for an unparsable type is text/plain: sniffed, which is what we want anyway.
    declared = message.get_content_charset()
    if declared is None:
        charset = "utf-8"
    elif declared.lower() in _CHARSETS:
        charset = _CHARSETS[declared.lower()]
    else:
        raise CallbackError("unsupported charset: send UTF-8", 415)
    boundary = message.get_boundary() or ""
    return media_type, charset, boundary


def _decode(body: bytes, charset: str) -> str:
    try:
        text = body.decode(charset)
    except UnicodeDecodeError:
        raise CallbackError(f"the callback body is not valid {charset.upper()}") from None
    return text.removeprefix("\ufeff").strip()


def _sniff(text: str) -> str:
    if text.startswith("{"):
        return "application/json"
    if text.startswith("<"):
        return "application/xml"
    return _FORM


# --- JSON and XML ------------------------------------------------------------------------------------


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's keys and values (``json.loads``'s ``object_pairs_hook``), refused when a key
    is given twice: the last would win silently, as form fields given twice never do. The key is
    named only when it is one of :data:`FIELD_NAMES`."""
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise CallbackError(
                    f"the JSON key {key} is given twice"
                    if key in FIELD_NAMES
                    else "a JSON key is given twice"
                )
            seen.add(key)
    return value


def _json(text: str, what: str) -> Any:
    """``text`` read as JSON, at any depth no object with a key given twice.

    :param what: what the text is, for the error (``"the callback body"``).
    """
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except CallbackError:
        raise
    except (ValueError, RecursionError):
        pass
    raise CallbackError(f"{what} is not valid JSON")  # outside the except block: no chain


def _from_json(text: str) -> dict[str, Any]:
    value = _json(text, "the callback body")
    if not isinstance(value, dict):
        raise CallbackError("the callback body is not a JSON object")
    return _details_of(value)


def _parse_xml(text: str, what: str) -> ElementTree.Element:
    """The root element of ``text``, read by :func:`~airflow_provider_fuse.safe_xml.read_xml` (the
    reader of Fuse's answers too): no DOCTYPE (and so no entity), no deeper than
    :data:`~airflow_provider_fuse.safe_xml.MAX_XML_DEPTH`.

    :param what: what the text is, for the error (``"the callback body"``).
    """
    try:
        return read_xml(text)
    except XmlDoctypeRefused:
        message = "XML with a DOCTYPE (or entities) is not accepted"
    except XmlTooDeep:
        message = f"{what} is XML nested too deep"
    except XmlRefused:
        message = f"{what} is not well-formed XML"
    raise CallbackError(message)  # outside the except block: no chain


def _refuse_repeats(root: ElementTree.Element) -> None:
    """Refuse an element of a documented name (:data:`FIELD_NAMES`) given twice in one parent (two
    ``<status>``: which one is the outcome's?) — but the ``<event>`` items of ``<events>``, a list.
    Other repeated elements are lists of the sender's own, read as such."""
    pending = [root]
    while pending:
        node = pending.pop()
        seen: set[str] = set()
        for child in node:
            tag = child.tag
            if tag in seen and tag in FIELD_NAMES and not (node.tag == "events" and tag == "event"):
                raise CallbackError(f"the XML element {tag} is duplicated")
            seen.add(tag)
            pending.append(child)


def _from_xml(text: str) -> dict[str, Any]:
    root = _parse_xml(text, "the callback body")
    _refuse_repeats(root)
    if root.tag == "call_details":
        value = _element_value(root, "the callback body")
        return value if isinstance(value, dict) else _no_call_details()
    if root.tag != "result":
        raise CallbackError("XML whose root is neither <result> nor <call_details>")
    fields = _element_value(root, "the callback body")
    return _details_of(fields if isinstance(fields, dict) else {})


def _element_value(root: ElementTree.Element, what: str) -> Any:
    """:func:`~airflow_provider_fuse.safe_xml.xml_value` of a parsed tree (no deeper than
    :data:`~airflow_provider_fuse.safe_xml.MAX_XML_DEPTH`: the parser refuses
    more; the recursion guard is a second line)."""
    try:
        return xml_value(root)
    except RecursionError:
        raise CallbackError(f"{what} is XML nested too deep") from None


def _details_of(answer: dict[str, Any]) -> dict[str, Any]:
    """The call_details object of a parsed body: ``answer["call_details"]``, or the answer itself
    when it is a bare call_details (has a ``status``)."""
    details = answer.get("call_details")
    if isinstance(details, dict):
        return details
    if isinstance(details, str) and details.strip():
        # A call_details field given as text (JSON or XML inside a JSON/XML/form value).
        return _from_text(details.strip())
    if details is None and "status" in answer:
        return answer
    _no_call_details()


def _from_text(text: str) -> dict[str, Any]:
    if text.startswith("{"):
        return _from_json(text)
    if text.startswith("<"):
        return _from_xml(text)
    raise CallbackError("the call_details field is neither JSON nor XML")


def _no_call_details() -> NoReturn:
    raise CallbackError("the callback has no call_details object")


# --- Form fields -------------------------------------------------------------------------------------


def _urlencoded_fields(text: str, charset: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(
            text, keep_blank_values=True, encoding=charset, errors="strict", max_num_fields=MAX_FIELDS
        )
    except UnicodeDecodeError:
        raise CallbackError(f"a form field is not valid {charset.upper()} once percent-decoded") from None
    except ValueError:
        raise CallbackError(f"more than {MAX_FIELDS} form fields") from None


def _multipart_fields(body: bytes, boundary: str, charset: str) -> list[tuple[str, str]]:
    """The (name, value) of each part of a ``multipart/form-data`` body, files included."""
    # python-multipart comes with Airflow's api-server (apache-airflow-core requires
    # fastapi[standard], which requires it); imported here so that a worker never loads it.
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    fields: list[tuple[str, str]] = []
    header_field = bytearray()
    header_value = bytearray()
    name: bytes | None = None
    data = bytearray()

    def on_part_begin() -> None:
        nonlocal name
        name = None
        data.clear()

    def on_header_field(chunk: bytes, start: int, end: int) -> None:
        header_field.extend(chunk[start:end])

    def on_header_value(chunk: bytes, start: int, end: int) -> None:
        header_value.extend(chunk[start:end])

    def on_header_end() -> None:
        nonlocal name
        if bytes(header_field).lower() == b"content-disposition":
            disposition, params = parse_options_header(bytes(header_value))
            if disposition.lower() == b"form-data":
                name = params.get(b"name")
        header_field.clear()
        header_value.clear()

    def on_part_data(chunk: bytes, start: int, end: int) -> None:
        data.extend(chunk[start:end])

    def on_part_end() -> None:
        if name is None:
            raise CallbackError("a multipart part without a form-data name")
        if len(fields) >= MAX_FIELDS:
            raise CallbackError(f"more than {MAX_FIELDS} form fields")
        fields.append((_decode(name, charset), _decode(bytes(data), charset)))

    callbacks: Any = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    }
    parser = MultipartParser(boundary.encode("latin-1", errors="replace"), callbacks)
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError:
        raise CallbackError("the multipart/form-data body is malformed") from None
    if not fields:
        raise CallbackError("the multipart/form-data body has no fields")
    return fields


def _from_fields(fields: list[tuple[str, str]]) -> dict[str, Any]:
    """call_details from form fields: a ``call_details`` field of JSON or XML, or its fields flat
    (``status=...``) or in brackets (``call_details[status]=...``, ``call_details[events][0][event]``)."""
    tree: dict[str, Any] = {}
    for name, value in fields:
        _put(tree, _name_path(name), value)
    details = tree.get("call_details")
    if isinstance(details, str):
        return _from_text(details.strip())
    if details is None:
        if "status" not in tree:
            _no_call_details()
        details = tree
    if not isinstance(details, dict):
        _no_call_details()
    details = _lists(details)
    events = details.get("events")
    if isinstance(events, str):
        details["events"] = _events_text(events.strip())
    return details


def _name_path(name: str) -> list[str]:
    match = _FIELD_NAME.fullmatch(name.strip())
    if match is None:
        raise CallbackError("a form field name with unbalanced brackets")
    keys = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
    if len(keys) > MAX_NAME_DEPTH:
        raise CallbackError("a form field name nested too deep")
    return keys


def _put(tree: dict[str, Any], path: list[str], value: str) -> None:
    node = tree
    for depth, key in enumerate(path):
        last = depth == len(path) - 1
        if key == "":
            # name[]: the next item of a list (kept as a dict keyed by position until _lists).
            key = str(len(node))
        if last:
            if key in node:
                raise CallbackError(f"{_safe_name(path)} is given twice")
            node[key] = value
        else:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise CallbackError(f"{_safe_name(path)} is both a value and a group")
            node = child


def _safe_name(path: list[str]) -> str:
    """A form field's name for an error message, only if it is made of documented names.

    Field names are the sender's text: one may be a phone number (``6175550100=x&6175550100=y``).
    A name is shown only when each of its keys is one of :data:`FIELD_NAMES` or a list index of at
    most three digits; any other name is "a form field".
    """
    if all(key in FIELD_NAMES or _SHOWN_INDEX.fullmatch(key) for key in path):
        return "the form field " + path[0] + "".join(f"[{key}]" for key in path[1:])
    return "a form field"


def _lists(node: dict[str, Any]) -> dict[str, Any]:
    """The form tree with every group keyed 0, 1, 2... turned into a list in that order."""
    result: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            value = _lists(value)
            if any(item.isdigit() and not _INDEX.fullmatch(item) for item in value):
                raise CallbackError("a form field index is not a number of at most 9 ASCII digits")
            if value and all(_INDEX.fullmatch(item) for item in value):
                value = [value[item] for item in sorted(value, key=int)]
        result[key] = value
    return result


def _events_text(text: str) -> Any:
    if not text:
        return []
    if text.startswith("["):
        return _json(text, "the events field")
    if text.startswith("{"):
        # {"events": [...]} or {"event": ...}: whatever it holds, _typed checks.
        value = _json(text, "the events field")
        return value.get("events", value) if isinstance(value, dict) else value
    if text.startswith("<"):
        return _xml_events(text)
    raise CallbackError("the events field is neither JSON nor XML")


def _xml_events(text: str) -> Any:
    root = _parse_xml(text, "the events field")
    _refuse_repeats(root)
    return _element_value(root, "the events field")


# --- call_details ------------------------------------------------------------------------------------


def _call_details(details: dict[str, Any]) -> CallDetails:
    _check_storable(details)
    status = details.get("status")
    if status is not None and not isinstance(status, str):
        raise CallbackError("call_details.status is not text")
    if not isinstance(status, str) or not status.strip():
        raise CallbackError("call_details has no status")
    if not _STATUS.fullmatch(status.strip()):
        raise CallbackError("call_details.status is not a status word")
    details = _typed(details)
    for name in CALL_DETAILS_NUMBERS:
        value = details[name]
        if value is not None and value not in _BIGINT:
            raise CallbackError(f"call_details.{name} is out of range")
    for event in details["events"]:
        if event["timestamp"] is not None and event["timestamp"] not in _BIGINT:
            raise CallbackError("call_details.events[].timestamp is out of range")
    try:
        return CallDetails.from_answer({"call_details": details})
    except FuseInvalidResponseError as error:
        # Only the field's name is carried over (a negative count is not a number of Fuse's either).
        if error.field is None:
            raise CallbackError("call_details is not readable") from None
        raise CallbackError(f"{error.field} is not a number") from None


def _typed(details: dict[str, Any]) -> dict[str, Any]:
    """``details`` with each documented field checked against its type and written in it: refused
    (naming the field, never quoting the value) when it is not of that type, never converted.

    - the numbers (:data:`CALL_DETAILS_NUMBERS`, an event's ``timestamp``): a JSON integer, a JSON
      number with a whole value (``35.0``), or text of ASCII digits (a ``-`` before, a fraction of
      zeros after, Fuse's quotes around: ``"'35'"``); ``null`` or empty text is no value. Not
      ``1.5``, not ``true``, not other scripts' digits (``"٣"``), not a list or an object;
    - ``phone_number``: text (a JSON integer is taken as its digits); not a list, an object, a
      fraction or ``true``;
    - ``events``: a list whose items are each an event object (``event`` text, ``timestamp`` a
      number, either absent) or an event's name as text; XML's ``{"event": item or [items]}``;
      ``null`` or empty text is none. Not a list of lists, a number or other text.

    Other fields are the sender's own and are not read.
    """
    typed = dict(details)
    for name in CALL_DETAILS_NUMBERS:
        typed[name] = _whole_number(details.get(name), f"call_details.{name}")
    phone = details.get("phone_number")
    if phone is not None and (isinstance(phone, bool) or not isinstance(phone, (str, int))):
        raise CallbackError("call_details.phone_number is not text")
    typed["phone_number"] = str(phone) if isinstance(phone, int) else phone
    typed["events"] = _typed_events(details.get("events"))
    return typed


_WHOLE_NUMBER_TEXT = re.compile(r"-?[0-9]+(?:\.0*)?")
_FRACTION_TEXT = re.compile(r"-?[0-9]*\.[0-9]+")


def _whole_number(value: Any, where: str) -> int | None:
    """A number of ``call_details`` (see :func:`_typed`) as an ``int``; ``None`` when absent."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise CallbackError(f"{where} is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise CallbackError(f"{where} is not a number")
        if not value.is_integer():
            raise CallbackError(f"{where} is not a whole number")
        return int(value)
    if not isinstance(value, str):
        raise CallbackError(f"{where} is not a number")
    text = value.strip().strip("'\"").strip()
    if not text:
        return None
    if _WHOLE_NUMBER_TEXT.fullmatch(text):
        try:
            return int(text.partition(".")[0])
        except ValueError:  # more digits than int() reads (4,300): no BIGINT either
            raise CallbackError(f"{where} is out of range") from None
    if _FRACTION_TEXT.fullmatch(text):
        raise CallbackError(f"{where} is not a whole number")
    raise CallbackError(f"{where} is not a number")


def _typed_events(value: Any) -> list[dict[str, Any]]:
    """``events`` (see :func:`_typed`) as a list of ``{"event": text, "timestamp": int or None}``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    if isinstance(value, dict):  # XML: <events><event>...</event>...</events>
        if set(value) - {"event"}:
            raise CallbackError("call_details.events is not a list of events")
        value = value.get("event")
        if value is None or (isinstance(value, str) and not value.strip()):
            return []
        if not isinstance(value, list):
            value = [value]
    if not isinstance(value, list):
        raise CallbackError("call_details.events is not a list of events")
    events: list[dict[str, Any]] = []
    for item in value:
        if isinstance(item, str):
            if item:
                events.append({"event": item, "timestamp": None})
        elif isinstance(item, dict):
            name = item.get("event")
            if name is not None and not isinstance(name, str):
                raise CallbackError("call_details.events[].event is not text")
            timestamp = _whole_number(item.get("timestamp"), "call_details.events[].timestamp")
            events.append({"event": name or "", "timestamp": timestamp})
        else:
            raise CallbackError("call_details.events is not a list of events")
    return events


def _check_storable(details: dict[str, Any]) -> None:
    """Refuse text no database can store (see :data:`_UNSTORABLE`), in any key or value, at any depth.

    Such an outcome would fail to store on every try: it is refused as unreadable (400, final), not
    answered 503 (which the sender retries). The message names a field of ``call_details`` when it
    is a documented one (:data:`FIELD_NAMES`), and never quotes the text.
    """
    # (value, the documented field it is in, or "") — a loop, not recursion: a parsed JSON body
    # may be nested as deep as the JSON reader allowed.
    pending: list[tuple[Any, str]] = [
        (value, key if isinstance(key, str) and key in FIELD_NAMES else "") for key, value in details.items()
    ]
    pending.extend((key, "") for key in details)
    while pending:
        value, field = pending.pop()
        if isinstance(value, str):
            if _UNSTORABLE.search(value):
                where = f"call_details.{field}" if field else "a field of call_details"
                raise CallbackError(
                    f"{where} holds a character no database stores (NUL, a control character or a "
                    "lone surrogate)"
                )
        elif isinstance(value, dict):
            pending.extend((item, field) for item in value.values())
            pending.extend((key, field) for key in value)
        elif isinstance(value, list):
            pending.extend((item, field) for item in value)
