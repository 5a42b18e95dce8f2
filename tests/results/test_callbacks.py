"""read_callback: every body format a sender may POST to result_url gives the same call_details, and
every refusal names what is wrong without quoting the body or its phone number."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ElementTree
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from urllib3.filepost import encode_multipart_formdata

from airflow_provider_fuse.calls import CallDetails, CallEvent, CallStatus
from airflow_provider_fuse.results.callbacks import MAX_BODY_BYTES, CallbackError, read_callback
from airflow_provider_fuse.safe_xml import xml_value as _xml_value

PHONE = "6173720293"
# Fuse's documented sample: numbers as strings, the phone number wrapped in its own quotes.
SAMPLE: dict[str, Any] = {
    "status": "completed",
    "attempts": "1",
    "max_attempts": "3",
    "reattempt_wait": "300",
    "queued_timestamp": "1430769441",
    "start_timestamp": "1430769441",
    "end_timestamp": "1430769476",
    "duration": "35",
    "events": [
        {"event": "queued", "timestamp": "1430769441"},
        {"event": "dialing", "timestamp": "1430769442"},
        {"event": "connected", "timestamp": "1430769446"},
        {"event": "completed", "timestamp": "1430769476"},
    ],
    "phone_number": f"'{PHONE}'",
}
EXPECTED = CallDetails(
    status=CallStatus.COMPLETED,
    attempts=1,
    max_attempts=3,
    reattempt_wait=300,
    queued_timestamp=1430769441,
    start_timestamp=1430769441,
    end_timestamp=1430769476,
    duration=35,
    events=(
        CallEvent("queued", 1430769441),
        CallEvent("dialing", 1430769442),
        CallEvent("connected", 1430769446),
        CallEvent("completed", 1430769476),
    ),
    phone_number=PHONE,
)
SCALARS = [name for name in SAMPLE if name != "events"]


def xml_details(details: dict[str, Any], *, events_tag: str = "events") -> str:
    fields = "".join(f"<{name}>{details[name]}</{name}>" for name in details if name != "events")
    events = "".join(
        f"<event><event>{item['event']}</event><timestamp>{item['timestamp']}</timestamp></event>"
        for item in details.get("events", [])
    )
    return f"<call_details>{fields}<{events_tag}>{events}</{events_tag}></call_details>"


def flat_fields(details: dict[str, Any]) -> list[tuple[str, str]]:
    fields = [(name, str(details[name])) for name in SCALARS if name in details]
    return [*fields, ("events", json.dumps(details["events"]))]


def bracket_fields(details: dict[str, Any]) -> list[tuple[str, str]]:
    fields = [(f"call_details[{name}]", str(details[name])) for name in SCALARS if name in details]
    for index, item in enumerate(details["events"]):
        fields += [
            (f"call_details[events][{index}][event]", item["event"]),
            (f"call_details[events][{index}][timestamp]", item["timestamp"]),
        ]
    return fields


def multipart(fields: list[tuple[str, str]]) -> tuple[bytes, str]:
    return encode_multipart_formdata(fields, boundary="fuse-callback-boundary-1234")


# --- Every accepted format --------------------------------------------------------------------------


FORMATS: dict[str, tuple[bytes, str | None]] = {
    "json": (json.dumps({"call_details": SAMPLE}).encode(), "application/json"),
    "bare json call_details": (json.dumps(SAMPLE).encode(), "application/json"),
    "xml result": (
        f'<?xml version="1.0" encoding="UTF-8"?><result>{xml_details(SAMPLE)}</result>'.encode(),
        "application/xml",
    ),
    "xml call_details root": (xml_details(SAMPLE).encode(), "text/xml"),
    "form with a call_details JSON field": (
        urlencode({"call_details": json.dumps(SAMPLE)}).encode(),
        "application/x-www-form-urlencoded",
    ),
    "form with a call_details XML field": (
        urlencode({"call_details": f"<result>{xml_details(SAMPLE)}</result>"}).encode(),
        "application/x-www-form-urlencoded",
    ),
    "form with flattened fields": (
        urlencode(flat_fields(SAMPLE)).encode(),
        "application/x-www-form-urlencoded",
    ),
    "form with call_details[...] names": (
        urlencode(bracket_fields(SAMPLE)).encode(),
        "application/x-www-form-urlencoded",
    ),
    "multipart with a call_details JSON field": multipart([("call_details", json.dumps(SAMPLE))]),
    "multipart with flattened fields": multipart(flat_fields(SAMPLE)),
    "multipart with call_details[...] names": multipart(bracket_fields(SAMPLE)),
}


@pytest.mark.parametrize("name", FORMATS)
def test_every_accepted_format_gives_the_same_call_details(name):
    body, content_type = FORMATS[name]
    assert read_callback(body, content_type) == EXPECTED


# A multipart body needs its boundary from the content type: never sniffed.
@pytest.mark.parametrize("name", [name for name in FORMATS if not name.startswith("multipart")])
def test_a_missing_content_type_is_sniffed_from_the_body(name):
    body, _ = FORMATS[name]
    assert read_callback(body, None) == EXPECTED
    assert read_callback(body, "text/plain") == EXPECTED
    assert read_callback(body, "application/octet-stream") == EXPECTED


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        'application/json; charset="utf-8"',
        "APPLICATION/JSON",
        "application/vnd.fuse+json",
        "text/json; charset=us-ascii",
    ],
)
def test_a_json_content_type_with_a_charset_or_suffix_is_json(content_type):
    assert read_callback(FORMATS["json"][0], content_type) == EXPECTED


def test_a_form_declared_latin_1_is_read_as_latin_1():
    body = urlencode({"status": "completed", "phone_number": PHONE, "extra": "café"}, encoding="latin-1")
    details = read_callback(body.encode(), "application/x-www-form-urlencoded; charset=iso-8859-1")
    assert details.status is CallStatus.COMPLETED


def test_a_utf_8_byte_order_mark_is_ignored():
    assert read_callback(b"\xef\xbb\xbf" + FORMATS["json"][0], "application/json") == EXPECTED


def test_an_events_list_in_xml_with_one_event_is_a_list_of_one():
    body = (
        "<result><call_details><status>failed</status><events><event><event>queued</event>"
        "<timestamp>5</timestamp></event></events></call_details></result>"
    )
    assert read_callback(body.encode(), "application/xml").events == (CallEvent("queued", 5),)


def test_a_multipart_file_part_is_read_like_a_field():
    body, content_type = encode_multipart_formdata(
        {"call_details": ("call_details.json", json.dumps(SAMPLE), "application/json")}
    )
    assert read_callback(body, content_type) == EXPECTED


def test_form_events_may_be_xml_text():
    fields = [("status", "completed"), ("events", "<events><event><event>queued</event></event></events>")]
    assert read_callback(urlencode(fields).encode(), None).events == (CallEvent("queued", None),)


def test_form_events_with_empty_brackets_keep_their_order():
    fields = [
        ("status", "failed"),
        ("events[][event]", "queued"),
        ("events[][event]", "dialing"),
    ]
    # "[]" appends: each appearance is the next event (one field per event here).
    events = read_callback(urlencode(fields).encode(), None).events
    assert [event.event for event in events] == ["queued", "dialing"]


def test_form_events_numbered_past_nine_are_in_numeric_order():
    fields = [("status", "failed")]
    fields += [(f"events[{index}][event]", f"e{index}") for index in range(12)]
    events = read_callback(urlencode(fields).encode(), None).events
    assert [event.event for event in events] == [f"e{index}" for index in range(12)]


def test_a_cancelled_spelling_is_canceled():
    assert read_callback(b'{"status": "Cancelled"}', None).status is CallStatus.CANCELED


def test_an_unknown_status_word_is_kept():
    assert read_callback(b'{"status": "voicemail"}', None).status.value == "voicemail"


def test_no_phone_number_is_none():
    assert read_callback(b'{"status": "failed"}', None).phone_number is None


def test_numbers_may_be_json_numbers_or_strings_with_quotes():
    details = read_callback(b'{"status": "failed", "attempts": 2, "duration": "\'7\'"}', None)
    assert (details.attempts, details.duration) == (2, 7)


# --- Refusals ---------------------------------------------------------------------------------------


def refused(body: bytes, content_type: str | None, status_code: int = 400) -> CallbackError:
    with pytest.raises(CallbackError) as caught:
        read_callback(body, content_type)
    assert caught.value.status_code == status_code
    message = str(caught.value)
    assert PHONE not in message
    assert "617" not in message
    return caught.value


def test_a_body_over_the_limit_is_refused_before_it_is_read():
    body = json.dumps({"call_details": {**SAMPLE, "pad": "x" * MAX_BODY_BYTES}}).encode()
    assert "larger than" in str(refused(body, "application/json", 413))


def test_a_body_at_the_limit_is_read():
    body = json.dumps({"call_details": SAMPLE}).encode()
    body = body[:-1] + b" " * (MAX_BODY_BYTES - len(body)) + b"}"
    assert len(body) == MAX_BODY_BYTES
    assert read_callback(body, "application/json") == EXPECTED


@pytest.mark.parametrize(
    "body",
    [
        f'<!DOCTYPE r [<!ENTITY p "{PHONE}">]><result><call_details><status>&p;</status>'
        "</call_details></result>",
        '<?xml version="1.0"?><!DOCTYPE result SYSTEM "file:///etc/passwd"><result/>',
        '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><result>&lol2;</result>',
    ],
)
def test_xml_with_a_doctype_or_entities_is_refused(body):
    assert "DOCTYPE" in str(refused(body.encode(), "application/xml"))


def test_an_undeclared_entity_is_not_well_formed():
    refused(b"<result><call_details><status>&x;</status></call_details></result>", "application/xml")


@pytest.mark.parametrize(
    "body",
    [
        b'{"call_details": {"status": "completed", "phone_number": "6173720293\xff"}}',
        b"status=completed&phone_number=617372029\xc3",
        b"<result><call_details><status>completed\xfe</status></call_details></result>",
    ],
)
def test_invalid_utf_8_is_refused(body):
    assert "UTF-8" in str(refused(body, None))


def test_invalid_utf_8_inside_a_percent_escape_is_refused():
    refused(b"status=completed&phone_number=%FF6173720293", "application/x-www-form-urlencoded")


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"call_details": {**SAMPLE, "status": None}}),
        json.dumps({"call_details": {k: v for k, v in SAMPLE.items() if k != "status"}}),
        json.dumps({"call_details": {**SAMPLE, "status": "  "}}),
        json.dumps({"call_details": {**SAMPLE, "status": 3}}),
        urlencode([("phone_number", PHONE), ("call_details[attempts]", "1")]),
        f"<result><call_details><phone_number>{PHONE}</phone_number></call_details></result>",
    ],
)
def test_call_details_without_a_status_is_refused(body):
    assert "status" in str(refused(body.encode(), None))


def test_a_status_that_is_not_a_word_is_refused():
    body = json.dumps({"call_details": {**SAMPLE, "status": f"<b>{PHONE}</b>"}})
    assert "status" in str(refused(body.encode(), None))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("attempts", f"{PHONE}x"),
        ("duration", "ten"),
        ("queued_timestamp", f"'{PHONE}'a"),
        ("max_attempts", [1]),
    ],
)
def test_a_non_numeric_number_is_refused_by_name(name, value):
    body = json.dumps({"call_details": {**SAMPLE, name: value}}).encode()
    assert str(refused(body, "application/json")) == f"call_details.{name} is not a number"


def test_a_non_numeric_event_timestamp_is_refused():
    body = json.dumps({"call_details": {**SAMPLE, "events": [{"event": "queued", "timestamp": PHONE + "z"}]}})
    assert "timestamp is not a number" in str(refused(body.encode(), None))


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 1e30, 1e300])
def test_a_number_beyond_bigint_is_refused(value):
    body = json.dumps({"call_details": {**SAMPLE, "attempts": value}}).encode()
    assert "out of range" in str(refused(body, None))


@pytest.mark.parametrize(
    "body",
    [
        b"[1, 2]",
        b'"completed"',
        b'{"result": "ok"}',
        b'{"call_details": [1]}',
        b'{"call_details": "plain text"}',
        b"<result><other>1</other></result>",
        b"<html><body>Bad gateway</body></html>",
        b"",
        b"hello",
    ],
)
def test_a_body_without_call_details_is_refused(body):
    refused(body, None)


@pytest.mark.parametrize("body", [b"{", b'{"call_details": ', b"<result><call_details>", b"<a></b>"])
def test_a_malformed_body_is_refused(body):
    refused(body, None)


@pytest.mark.parametrize("content_type", ["image/png", "application/pdf", "text/html"])
def test_an_unsupported_content_type_is_415(content_type):
    refused(FORMATS["json"][0], content_type, 415)


@pytest.mark.parametrize("charset", ["utf-16", "shift_jis", "x-unknown"])
def test_an_unsupported_charset_is_415(charset):
    refused(FORMATS["json"][0], f"application/json; charset={charset}", 415)


def test_multipart_without_a_boundary_is_refused():
    body, _ = FORMATS["multipart with flattened fields"]
    assert "boundary" in str(refused(body, "multipart/form-data"))


def test_multipart_with_the_wrong_boundary_is_refused():
    body, _ = FORMATS["multipart with flattened fields"]
    refused(body, "multipart/form-data; boundary=another")


def test_a_form_field_given_twice_is_refused():
    body = urlencode([("status", "completed"), ("status", "failed")]).encode()
    assert "given twice" in str(refused(body, None))


def test_a_form_field_both_value_and_group_is_refused():
    body = urlencode([("status", "failed"), ("events", "[]"), ("events[0][event]", "queued")]).encode()
    refused(body, None)


def test_form_events_that_are_not_json_are_refused():
    body = urlencode([("status", "failed"), ("events", f"[{PHONE}")]).encode()
    assert "events" in str(refused(body, None))


def test_a_form_with_unbalanced_brackets_is_refused():
    refused(urlencode([("call_details[status", "failed")]).encode(), None)


def test_too_many_form_fields_are_refused():
    refused("&".join(f"f{index}=1" for index in range(1000)).encode() + b"&status=failed", None)


# Nesting the XML parser takes (each level a few bytes) but deeper than Python's recursion limit.
DEEP = 2000


@pytest.mark.parametrize(
    ("body", "content_type", "what"),
    [
        (
            b"<result><call_details>" + b"<a>" * DEEP + b"</a>" * DEEP + b"</call_details></result>",
            "application/xml",
            "the callback body",
        ),
        (b"<call_details>" + b"<a>" * DEEP + b"</a>" * DEEP + b"</call_details>", None, "the callback body"),
        (
            urlencode([("status", "failed"), ("events", "<e>" * DEEP + "</e>" * DEEP)]).encode(),
            None,
            "the events field",
        ),
    ],
)
def test_xml_nested_deeper_than_python_recurses_is_refused(body, content_type, what):
    assert len(body) < MAX_BODY_BYTES
    assert str(refused(body, content_type)) == f"{what} is XML nested too deep"


@pytest.mark.parametrize(
    "fields",
    [
        [("status", "failed"), ("events[\u00b2][event]", "queued")],  # "²".isdigit() is true
        [("call_details[status]", "failed"), ("call_details[events][\u0663][event]", "queued")],  # Arabic 3
        [("status", "failed"), ("events[0][event]", "queued"), ("events[1\u00b9][event]", PHONE)],
        [("status", "failed"), ("events[" + "1" * 5000 + "][event]", "queued")],  # past int()'s 4,300 digits
    ],
)
def test_a_form_index_that_is_not_ascii_digits_is_refused(fields):
    error = refused(urlencode(fields).encode(), None)
    assert "index" in str(error)
    assert PHONE not in str(error)


def test_form_indexes_of_ascii_digits_still_make_a_list_in_order():
    body = urlencode(
        [("status", "failed"), ("events[10][event]", "dialing"), ("events[2][event]", "queued")]
    ).encode()
    assert [event.event for event in read_callback(body, None).events] == ["queued", "dialing"]


def test_repeated_xml_children_become_one_list_in_document_order():
    root = ElementTree.fromstring("<r><one>1</one><e>a</e><e>b</e><e><x>c</x></e><f/></r>")
    assert _xml_value(root) == {"one": "1", "e": ["a", "b", {"x": "c"}], "f": ""}


def test_repeated_xml_children_take_linear_time():
    # Copying the list for each repeat took 5 s of CPU for these 64,000 (0.15 s for the 16,000 of a
    # 64 KiB body, on the event loop); appending takes ~20 ms.
    root = ElementTree.fromstring("<r>" + "<e/>" * 64_000 + "</r>")
    started = time.process_time()
    value = _xml_value(root)
    assert time.process_time() - started < 1.0
    assert value == {"e": [""] * 64_000}


def refusal(body: bytes, content_type: str | None) -> CallbackError | None:
    """The error read_callback raised, if any: any other exception fails the test."""
    try:
        read_callback(body, content_type)
    except CallbackError as error:
        return error
    return None


# --- Properties -------------------------------------------------------------------------------------


def as_text_number(value: int, draw_style: int) -> Any:
    return [value, str(value), f"'{value}'"][draw_style]


@st.composite
def call_details(draw: st.DrawFn) -> tuple[dict[str, Any], CallDetails]:
    """A call_details as a sender might write it (numbers as ints or strings, the phone number quoted
    or not), and what it means."""
    status = draw(st.sampled_from(["completed", "failed", "canceled", "rejected", "queued"]))
    numbers = {
        name: draw(st.none() | st.integers(0, 2**40))
        for name in ("attempts", "max_attempts", "reattempt_wait", "queued_timestamp", "duration")
    }
    phone = draw(st.from_regex(r"1?[2-9][0-9]{9}", fullmatch=True))
    events = draw(
        st.lists(
            st.tuples(st.sampled_from(["queued", "dialing", "connected", "completed"]), st.integers(0, 2**40))
        )
    )
    raw: dict[str, Any] = {"status": status}
    for name, value in numbers.items():
        if value is not None:
            raw[name] = as_text_number(value, draw(st.integers(0, 2)))
    raw["phone_number"] = draw(st.sampled_from([phone, f"'{phone}'"]))
    raw["events"] = [{"event": name, "timestamp": str(timestamp)} for name, timestamp in events]
    meaning = CallDetails(
        status=CallStatus(status),
        **numbers,
        events=tuple(CallEvent(name, timestamp) for name, timestamp in events),
        phone_number=phone,
    )
    return raw, meaning


def encodings(raw: dict[str, Any]) -> dict[str, tuple[bytes, str | None]]:
    textual = {name: str(value) for name, value in raw.items() if name != "events"}
    scalars = [(name, value) for name, value in textual.items()]
    brackets = [(f"call_details[{name}]", value) for name, value in textual.items()]
    for index, item in enumerate(raw["events"]):
        brackets += [
            (f"call_details[events][{index}][event]", item["event"]),
            (f"call_details[events][{index}][timestamp]", item["timestamp"]),
        ]
    flat = [*scalars, ("events", json.dumps(raw["events"]))]
    return {
        "json": (json.dumps({"call_details": raw}).encode(), "application/json"),
        "bare json": (json.dumps(raw).encode(), None),
        "xml": (f"<result>{xml_details({**textual, 'events': raw['events']})}</result>".encode(), None),
        "form json": (urlencode({"call_details": json.dumps(raw)}).encode(), None),
        "form flat": (urlencode(flat).encode(), "application/x-www-form-urlencoded"),
        "form brackets": (urlencode(brackets).encode(), "application/x-www-form-urlencoded"),
        "multipart flat": multipart(flat),
        "multipart brackets": multipart(brackets),
    }


@given(call_details())
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_every_format_of_any_call_details_reads_the_same(case):
    raw, meaning = case
    for name, (body, content_type) in encodings(raw).items():
        assert read_callback(body, content_type) == meaning, name


@given(
    st.binary(max_size=512),
    st.sampled_from(
        [
            None,
            "application/json",
            "application/xml",
            "multipart/form-data; boundary=b",
            "application/x-www-form-urlencoded",
        ]
    ),
)
@example(b"<result><call_details><status>x</status><events><event/></events></call_details></result>", None)
@example(b"status=a&events[0]=x&events[1][event]=y", None)
@settings(max_examples=400, deadline=None)
def test_any_body_is_read_or_refused_with_a_callback_error(body, content_type):
    error = refusal(body, content_type)
    assert error is None or error.status_code in (400, 413, 415)


@given(st.from_regex(r"[2-9][0-9]{9}", fullmatch=True), st.sampled_from(sorted(FORMATS)))
@settings(max_examples=60, deadline=None)
def test_no_refusal_quotes_the_phone_number(phone, name):
    body, content_type = FORMATS[name]
    broken = body.replace(PHONE.encode(), phone.encode()).replace(b"1430769441", phone.encode() + b"x", 1)
    error = refusal(broken, content_type)
    assert error is not None
    assert phone not in str(error)
    assert phone[:7] not in str(error)


@given(st.text(max_size=80))
@settings(max_examples=500, deadline=None)
@example("application/json; charset")
@example("application/json; charset=")
@example('multipart/form-data; boundary="')
@example("application/json; charset*=utf-8''utf-8")
@example("/")
@example("application/")
def test_any_content_type_header_is_read_or_refused_with_a_callback_error(content_type):
    error = refusal(FORMATS["json"][0], content_type)
    assert error is None or error.status_code in (400, 415)


# --- Outcomes no database can store: refused as unreadable (400), never retried ---------------------

UNSTORABLE = ["\x00", "\x01", "\x1b", "\x7f\x00", "\ud800", "\udfff"]


@pytest.mark.parametrize("character", UNSTORABLE, ids=repr)
@pytest.mark.parametrize("field", ["phone_number", "status_detail", "events"])
def test_a_character_no_database_stores_is_refused_in_any_field(character: str, field: str) -> None:
    details: dict[str, Any] = {**SAMPLE}
    if field == "events":
        details["events"] = [{"event": "queued" + character, "timestamp": "1430769441"}]
    else:
        details[field] = f"'617{character}3720293'"
    body = json.dumps({"call_details": details}).encode()  # \u0000 and \ud800 escapes: valid JSON

    error = refused(body, "application/json")

    assert error.status_code == 400
    assert "617" not in str(error)
    if field == "phone_number":
        assert "call_details.phone_number" in str(error)


@pytest.mark.parametrize("body", [b"status=completed&phone_number=617%00", b"status=completed&x%01=1"])
def test_a_control_character_in_a_form_field_or_its_name_is_refused(body: bytes) -> None:
    assert refused(body, "application/x-www-form-urlencoded").status_code == 400


@pytest.mark.parametrize("allowed", ["\t", "\n", "\r", "é", "\u2028"], ids=repr)
def test_tabs_newlines_and_any_other_character_are_read(allowed: str) -> None:
    body = json.dumps({"call_details": {**SAMPLE, "status_detail": f"a{allowed}b"}}).encode()

    assert read_callback(body, "application/json").status is CallStatus.COMPLETED


# --- Errors never quote the body, field names included -----------------------------------------------


def test_a_form_field_named_with_a_number_given_twice_is_not_named() -> None:
    body = urlencode([("status", "completed"), (PHONE, "1"), (PHONE, "2")]).encode()

    error = refused(body, None)

    assert str(error) == "a form field is given twice"


def test_a_documented_form_field_given_twice_is_named() -> None:
    body = urlencode([("call_details[status]", "completed"), ("call_details[events][0][event]", "a")] * 2)

    assert str(refused(body.encode(), None)) == "the form field call_details[status] is given twice"


# Text a sender chooses (field names, values), from an alphabet none of the error messages' own words
# are made of: digits, a few letters no message uses, and non-ASCII characters. Four characters in a
# row are "a quote".
_SENDER_TEXT = st.text(alphabet="0123456789+'QWKZVéß中²", min_size=4, max_size=12)
_QUOTE = 4


def _quotes(message: str, chosen: list[str]) -> list[str]:
    return [
        text[start : start + _QUOTE]
        for text in chosen
        for start in range(len(text) - _QUOTE + 1)
        if text[start : start + _QUOTE] in message
    ]


def _structures(
    names: list[str], values: list[str], documented: list[str], kind: int
) -> tuple[bytes, str | None]:
    """A hostile body mixing documented names with the sender's text, in one of several forms."""
    fields = list(zip([*names, *documented], [*values, *values], strict=False))
    if kind == 0:  # form fields, duplicates and groups included
        pairs = [*fields, *fields[:1], *[(f"{name}[{value}]", value) for name, value in fields[:2]]]
        return urlencode(pairs).encode(), "application/x-www-form-urlencoded"
    if kind == 1:  # form fields under call_details[...]
        pairs = [(f"call_details[{name}]", value) for name, value in fields] + [
            (f"call_details[{names[0]}]", "")
        ]
        return urlencode(pairs).encode(), None
    if kind == 2:  # JSON with the sender's names and values
        return json.dumps({"call_details": dict(fields)}).encode(), "application/json"
    if kind == 3:  # XML, tags of the sender's choosing
        inner = "".join(f"<{name}>{value}</{name}>" for name, value in fields)
        return f"<result><call_details>{inner}</call_details></result>".encode(), "application/xml"
    if kind == 4:  # JSON numbers that are not
        return json.dumps(
            {"call_details": {"status": "completed", **dict.fromkeys(documented, values[0])}}
        ).encode(), None
    # events as text
    return urlencode([("status", "completed"), ("events", values[0]), *fields]).encode(), None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(_SENDER_TEXT, min_size=1, max_size=4),
    values=st.lists(_SENDER_TEXT, min_size=1, max_size=4),
    documented=st.lists(
        st.sampled_from(
            ["status", "attempts", "duration", "phone_number", "events", "call_details", "timestamp"]
        ),
        max_size=3,
    ),
    kind=st.integers(0, 5),
)
@example(names=[PHONE], values=["1", "2"], documented=[], kind=0)
def test_no_error_quotes_the_body(
    names: list[str], values: list[str], documented: list[str], kind: int
) -> None:
    body, content_type = _structures(names, values, documented, kind)
    message = ""
    try:
        read_callback(body, content_type)
    except CallbackError as error:
        message = str(error)
    assert _quotes(message, [*names, *values]) == [], message


# --- Keys given twice, values of the wrong type (review r2, 2 and 3) ----------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"status": "completed", "status": "failed"}', "the JSON key status is given twice"),
        (
            b'{"call_details": {"status": "completed", "attempts": "1", "attempts": "2"}}',
            "the JSON key attempts is given twice",
        ),
        (
            b'{"call_details": {"status": "failed"}, "call_details": {"status": "completed"}}',
            "the JSON key call_details is given twice",
        ),
        (
            b'{"status": "failed", "events": [{"event": "queued", "timestamp": 1, "timestamp": 2}]}',
            "the JSON key timestamp is given twice",
        ),
        (b'{"status": "failed", "x": {"6173720293": 1, "6173720293": 2}}', "a JSON key is given twice"),
    ],
)
def test_a_json_key_given_twice_is_refused_at_any_depth(body: bytes, message: str) -> None:
    assert str(refused(body, "application/json")) == message


@pytest.mark.parametrize(
    "fields",
    [
        [("call_details", '{"status": "completed", "status": "failed"}')],
        [("status", "failed"), ("events", '[{"event": "queued", "event": "dialing"}]')],
        [("status", "failed"), ("events", '{"events": [], "events": [{"event": "queued"}]}')],
    ],
)
def test_a_json_key_given_twice_inside_a_form_field_is_refused(fields: list[tuple[str, str]]) -> None:
    assert "is given twice" in str(refused(urlencode(fields).encode(), None))


@pytest.mark.parametrize(
    ("body", "tag"),
    [
        (b"<call_details><status>completed</status><status>failed</status></call_details>", "status"),
        (
            b"<result><call_details><status>failed</status></call_details>"
            b"<call_details><status>completed</status></call_details></result>",
            "call_details",
        ),
        (
            b"<call_details><status>failed</status><events><event><event>queued</event>"
            b"<timestamp>1</timestamp><timestamp>2</timestamp></event></events></call_details>",
            "timestamp",
        ),
        (
            b"<call_details><status>failed</status><phone_number>6173720293</phone_number>"
            b"<phone_number>6173720294</phone_number></call_details>",
            "phone_number",
        ),
    ],
)
def test_a_documented_xml_element_given_twice_is_said_to_be_duplicated(body: bytes, tag: str) -> None:
    assert str(refused(body, "application/xml")) == f"the XML element {tag} is duplicated"


def test_the_events_of_xml_are_still_a_list_and_other_repeated_elements_are_read() -> None:
    body = (
        b"<call_details><status>failed</status><extra><x>1</x><x>2</x></extra><events>"
        b"<event><event>queued</event><timestamp>1</timestamp></event>"
        b"<event><event>failed</event><timestamp>2</timestamp></event></events></call_details>"
    )
    assert read_callback(body, None).events == (CallEvent("queued", 1), CallEvent("failed", 2))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("attempts", 1.5, "call_details.attempts is not a whole number"),
        ("attempts", "1.5", "call_details.attempts is not a whole number"),
        ("attempts", "\u0663", "call_details.attempts is not a number"),  # ARABIC-INDIC DIGIT THREE
        ("duration", "\uff13\uff15", "call_details.duration is not a number"),  # fullwidth 35
        ("max_attempts", True, "call_details.max_attempts is not a number"),
        ("queued_timestamp", {"t": 1}, "call_details.queued_timestamp is not a number"),
        ("phone_number", [[[[PHONE]]]], "call_details.phone_number is not text"),
        ("phone_number", {"n": PHONE}, "call_details.phone_number is not text"),
        ("phone_number", 6173720293.5, "call_details.phone_number is not text"),
        ("status", ["completed"], "call_details.status is not text"),
        ("events", [[{"event": "queued", "timestamp": 1}]], "call_details.events is not a list of events"),
        ("events", [["queued", 1]], "call_details.events is not a list of events"),
        ("events", 7, "call_details.events is not a list of events"),
        ("events", PHONE, "call_details.events is not a list of events"),
        ("events", [{"event": 7, "timestamp": 1}], "call_details.events[].event is not text"),
        (
            "events",
            [{"event": "queued", "timestamp": "\u0663"}],
            "call_details.events[].timestamp is not a number",
        ),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_naming_its_field(field: str, value: Any, message: str) -> None:
    body = json.dumps({"call_details": {**SAMPLE, field: value}}).encode()
    assert str(refused(body, "application/json")) == message


@pytest.mark.parametrize(
    ("value", "number"),
    [(35, 35), (35.0, 35), ("35", 35), ("'35'", 35), (" 35.00 ", 35), ("", None), (None, None)],
)
def test_a_whole_number_in_any_documented_form_is_read(value: Any, number: int | None) -> None:
    body = json.dumps({"call_details": {**SAMPLE, "duration": value}}).encode()
    assert read_callback(body, None).duration == number


def test_a_phone_number_given_as_a_json_integer_is_its_digits() -> None:
    assert read_callback(b'{"status": "failed", "phone_number": 6173720293}', None).phone_number == PHONE


# Values that are not of a field's documented type, each holding text that must never be quoted.
_NOT_TEXT = st.one_of(
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda value: not value.is_integer()),
    st.lists(st.just(PHONE), min_size=0, max_size=2).map(lambda inner: [inner]),
    st.dictionaries(st.sampled_from(["n", PHONE]), st.just(PHONE), min_size=1, max_size=2),
)
_NOT_A_NUMBER = st.one_of(
    _NOT_TEXT,
    st.text(alphabet="٠١٢٣٤٥٦٧٨٩０１２３４５６７８９²³¹", min_size=1, max_size=6),
    st.from_regex(r"[0-9]{1,4}\.[0-9]*[1-9]", fullmatch=True),
    st.just(PHONE + "x"),
)
_NOT_EVENTS = st.one_of(
    st.booleans(),
    st.integers(),
    st.just(PHONE),
    st.lists(st.lists(st.just(PHONE), max_size=2), min_size=1, max_size=2),
    st.lists(st.one_of(st.integers(), st.booleans(), st.none()), min_size=1, max_size=2),
    st.builds(lambda name: [{"event": name, "timestamp": 1}], _NOT_TEXT),
    st.builds(lambda stamp: [{"event": "queued", "timestamp": stamp}], _NOT_A_NUMBER),
)
_WRONG = {
    "status": _NOT_TEXT,
    "attempts": _NOT_A_NUMBER,
    "max_attempts": _NOT_A_NUMBER,
    "reattempt_wait": _NOT_A_NUMBER,
    "queued_timestamp": _NOT_A_NUMBER,
    "start_timestamp": _NOT_A_NUMBER,
    "end_timestamp": _NOT_A_NUMBER,
    "duration": _NOT_A_NUMBER,
    "phone_number": _NOT_TEXT,
    "events": _NOT_EVENTS,
}


@st.composite
def wrongly_typed(draw: st.DrawFn) -> tuple[dict[str, Any], str, Any]:
    """A call_details of documented types but one field, whose value is of another type."""
    raw, _ = draw(call_details())
    field = draw(st.sampled_from(sorted(_WRONG)))
    value = draw(_WRONG[field])
    return {**raw, field: value}, field, value


@given(wrongly_typed(), st.sampled_from(["json", "bare json", "form json", "multipart json"]))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(({**SAMPLE, "attempts": 1.5}, "attempts", 1.5), "json")
@example(({**SAMPLE, "attempts": "\u0663"}, "attempts", "\u0663"), "form json")
@example(({**SAMPLE, "phone_number": [[[[PHONE]]]]}, "phone_number", [[[[PHONE]]]]), "json")
@example(({**SAMPLE, "events": [[{"event": "queued"}]]}, "events", [[{"event": "queued"}]]), "json")
def test_any_field_not_of_its_documented_type_is_a_400_naming_it(case, encoding) -> None:
    details, field, value = case
    text = json.dumps(details)
    body, content_type = {
        "json": (json.dumps({"call_details": details}).encode(), "application/json"),
        "bare json": (text.encode(), None),
        "form json": (urlencode({"call_details": text}).encode(), None),
        "multipart json": multipart([("call_details", text)]),
    }[encoding]
    error = refusal(body, content_type)  # any other exception than CallbackError fails: a 500
    assert error is not None, "read, not refused: a 200"
    assert error.status_code == 400
    message = str(error)
    assert f"call_details.{field}" in message or (field == "status" and "status" in message)
    assert PHONE not in message
    if isinstance(value, str):
        assert value not in message
