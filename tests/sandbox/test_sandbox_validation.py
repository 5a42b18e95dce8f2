"""Bad input is answered 400 (403 for is_pci under "forbid") with a Fuse-style message, and queues nothing."""

from __future__ import annotations

import pytest

REATTEMPT_WAIT_REQUIRED = "The reattempt_wait parameter must be supplied when max_attempts is greater than 1."


def test_documented_reattempt_wait_message_is_exact(fuse, sandbox):
    response = fuse.bulk_queue(max_attempts="2")
    assert response.status_code == 400
    assert response.content == (
        b'{"error":"The reattempt_wait parameter must be supplied when max_attempts is greater than 1."}'
    )
    assert sandbox.calls() == []


def test_documented_reattempt_wait_message_in_xml(fuse):
    response = fuse.bulk_queue(max_attempts="3", accept="application/xml")
    assert response.text == (
        f'<?xml version="1.0"?>\n<result>\n  <error>{REATTEMPT_WAIT_REQUIRED}</error>\n</result>\n'
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_attempts": "0"}, "The max_attempts parameter must be an integer between 1 and 10."),
        ({"max_attempts": "11", "reattempt_wait": "60"}, "The max_attempts parameter must be an integer"),
        ({"max_attempts": "two"}, "The max_attempts parameter must be an integer"),
        ({"reattempt_wait": "59"}, "The reattempt_wait parameter must be an integer between 60 and 86400."),
        ({"max_attempts": "2", "reattempt_wait": "86401"}, "The reattempt_wait parameter must be an integer"),
        ({"start_timestamp": "tomorrow"}, "The start_timestamp parameter must be a unix timestamp."),
        ({"start_timestamp": "1700000000.5"}, "The start_timestamp parameter must be a unix timestamp."),
        ({"end_timestamp": "-5"}, "The end_timestamp parameter must be a unix timestamp."),
        ({"is_pci": "yes"}, "The is_pci parameter must be 0 or 1."),
        ({"is_pci": "2"}, "The is_pci parameter must be 0 or 1."),
        ({"result_url": "/relative/path"}, "The result_url parameter must be an absolute http or https URL."),
        (
            {"result_url": "ftp://127.0.0.1/x"},
            "The result_url parameter must be an absolute http or https URL.",
        ),
        ({"result_url": "http://"}, "The result_url parameter must be an absolute http or https URL."),
    ],
)
def test_invalid_field_is_400_naming_it(fuse, sandbox, fields, message):
    response = fuse.bulk_queue(**fields)
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)
    assert sandbox.calls() == []


def test_end_not_after_start_is_400(fuse, sandbox):
    start = int(sandbox.now()) + 3600
    response = fuse.bulk_queue(start_timestamp=str(start), end_timestamp=str(start))
    assert response.status_code == 400
    assert response.json()["error"] == "The end_timestamp parameter must be later than the start_timestamp."


def test_empty_fields_count_as_absent(fuse):
    response = fuse.bulk_queue(
        start_timestamp="", end_timestamp="", max_attempts="", result_url="", is_pci=""
    )
    assert response.json() == {"calls_queued": 1}


def test_missing_csv_is_400(fuse):
    response = fuse.bulk_queue(None, max_attempts="1")
    assert response.status_code == 400
    assert response.json()["error"] == "The csv parameter must be supplied as a file."


def test_csv_sent_as_plain_field_is_400(fuse, sandbox):
    response = fuse.http.post(
        f"{sandbox.url}/apps/101/202/bulk_queue",
        files={"csv": (None, "destination\n6175551234\n")},
        auth=fuse.auth,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "The csv parameter must be supplied as a file."


def test_csv_without_destination_column_is_400(fuse):
    response = fuse.bulk_queue("phone,name\n6175551234,Ann\n")
    assert response.status_code == 400
    assert response.json()["error"] == "The csv file must have a destination column in its header row."


def test_empty_csv_file_is_400(fuse):
    response = fuse.bulk_queue(b"")
    assert response.status_code == 400
    assert response.json()["error"] == "The csv file is empty."


def test_csv_not_utf8_is_400(fuse):
    response = fuse.bulk_queue("destination,name\n6175551234,Zo\u00eb\n".encode("latin-1"))
    assert response.status_code == 400
    assert response.json()["error"] == "The csv file must be UTF-8 encoded."


@pytest.mark.parametrize(
    "destination",
    [
        "617555123",  # 9 digits
        "26175551234",  # 11 digits not starting with 1
        "617-555-1234",
        "(617) 555-1234",
        "+16175551234",
        "tel:16175551234",
        " 6175551234",
        "6175551234;ani=",
        "6175551234;ani=800-995-7586",
        "6175551234;foo=1",
        "6175551234;ani=1;ani=2",
        "",
        "\u0666\u0661\u0667\u0665\u0665\u0665\u0661\u0662\u0663\u0664",  # Arabic-Indic digits
        "\uff16\uff11\uff17\uff15\uff15\uff15\uff11\uff12\uff13\uff14",  # fullwidth digits
        "tel:+0442071838750",  # E.164 never starts with 0
        "tel:+4420718387500000",  # 16 digits: longer than E.164
        "6175551234;ani=800995758",  # a 9-digit caller id
        "6175551234;postd=",
        "6175551234;postd=2;postd=3",
        "6175551234;",
    ],
)
def test_bad_destination_rejects_the_upload(fuse, sandbox, destination):
    response = fuse.bulk_queue(f'destination\n6175551234\n"{destination}"\n')
    assert response.status_code == 400
    assert "row 3" in response.json()["error"]
    assert sandbox.calls() == []


@pytest.mark.parametrize(
    "destination",
    [
        "6175551234",
        "16175551234",
        "tel:+16175551234",
        "6175551234;ani=8009957586",
        "16175551234;postd=2",
        "tel:+16175551234;ani=8009957586;postd=2",
        "tel:+442071838750;postd=2;ani=8009957586",
        "6175551234;postd=12*#",
        "6175551234;ani=+18009957586",
    ],
)
def test_documented_destination_formats_are_accepted(fuse, destination):
    response = fuse.bulk_queue(f"destination\n{destination}\n")
    assert response.json() == {"calls_queued": 1}


def test_bad_rows_message_names_row_numbers_never_phone_numbers(fuse):
    rows = ["6175551234", "555", "6175551234", "12345", "6175551234,extra"]
    response = fuse.bulk_queue("destination\n" + "\n".join(rows) + "\n")
    message = response.json()["error"]
    assert "rows 3, 5, 6" in message
    assert "555" not in message
    assert "12345" not in message


def test_bad_rows_message_lists_at_most_ten(fuse):
    response = fuse.bulk_queue("destination\n" + "bad\n" * 15)
    assert response.json()["error"].endswith("rows 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 5 more.")


def test_queue_requires_phone_number(fuse):
    response = fuse.queue(max_attempts="1")
    assert response.status_code == 400
    assert response.json()["error"] == "The phone_number parameter must be supplied."


def test_queue_rejects_bad_phone_number(fuse):
    response = fuse.queue(phone_number="617-555-1234")
    assert response.status_code == 400
    assert response.json()["error"] == "The phone_number parameter is not a valid phone number."


@pytest.mark.parametrize("call_parameters", ["[1, 2]", "not json", '"text"'])
def test_queue_rejects_call_parameters_that_are_not_a_json_object(fuse, call_parameters):
    response = fuse.queue(phone_number="6175551234", call_parameters=call_parameters)
    assert response.status_code == 400
    assert response.json()["error"] == "The call_parameters parameter must be a JSON object."


def test_queue_applies_the_same_field_rules(fuse):
    response = fuse.queue(phone_number="6175551234", max_attempts="5")
    assert response.status_code == 400
    assert response.json()["error"] == REATTEMPT_WAIT_REQUIRED
