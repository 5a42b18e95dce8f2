"""Each assumption switch, both ways: the default reading on the default sandbox, the other on one
sandbox started with every other reading at once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_fuse.sandbox import FuseSandbox, SandboxAssumptions
from airflow_provider_fuse.sandbox.lifecycle import RING_SECONDS, TALK_SECONDS

OTHER_READINGS = SandboxAssumptions(
    bad_rows="skip",
    bom="reject",
    destination_position="first",
    queue_response="link_only",
    empty_csv="reject",
    header_case="insensitive",
    past_end="accept",
    call_details_types="native",
    cancel_scope="waiting",
    is_pci="forbid",
    max_rows=3,
)


@pytest.fixture(scope="module")
def other_sandbox() -> Iterator[FuseSandbox]:
    with FuseSandbox(time_scale=1e-6, assumptions=OTHER_READINGS) as sandbox:
        yield sandbox


@pytest.fixture
def other(other_sandbox, client_for):
    other_sandbox.reset()
    return client_for(other_sandbox)


def test_every_switch_defaults_to_its_first_choice():
    defaults = SandboxAssumptions()
    for name, choices in SandboxAssumptions.choices().items():
        assert getattr(defaults, name) == choices[0]
        assert getattr(OTHER_READINGS, name) == choices[1]


def test_unknown_switch_value_is_refused():
    with pytest.raises(ValueError, match="bad_rows"):
        SandboxAssumptions(bad_rows="maybe")  # type: ignore[arg-type]


# bad_rows


def test_bad_rows_reject_fails_the_whole_upload(fuse, sandbox):
    assert fuse.bulk_queue("destination\n6175551234\nnope\n").status_code == 400
    assert sandbox.calls() == []


def test_bad_rows_skip_queues_the_good_rows(other):
    response = other.bulk_queue("destination\n6175551234\nnope\n6175551235\n")
    assert response.json() == {"calls_queued": 2}
    (upload,) = other.sandbox.uploads()
    assert (upload.rows, upload.calls_queued) == (3, 2)
    assert [c.destination for c in other.sandbox.calls()] == ["6175551234", "6175551235"]


# bom

BOM_CSV = b"\xef\xbb\xbfdestination\n6175551234\n"


def test_bom_accept_strips_it(fuse, sandbox):
    assert fuse.bulk_queue(BOM_CSV).json() == {"calls_queued": 1}
    assert sandbox.uploads()[0].csv == BOM_CSV  # recorded as received


def test_bom_reject_is_400(other):
    response = other.bulk_queue(BOM_CSV)
    assert response.status_code == 400
    assert response.json()["error"] == "The csv file must not start with a byte order mark."


# destination_position


def test_destination_position_any_accepts_a_later_column(fuse):
    assert fuse.bulk_queue("name,destination\nAnn,6175551234\n").json() == {"calls_queued": 1}


def test_destination_position_first_rejects_a_later_column(other):
    response = other.bulk_queue("name,destination\nAnn,6175551234\n")
    assert response.status_code == 400
    assert response.json()["error"] == "The destination column must be the first column of the csv file."


# queue_response


def test_queue_response_call_id_puts_the_id_in_the_body(fuse):
    response = fuse.queue(phone_number="6175551234")
    assert response.json() == {"call_id": "1"}
    assert response.headers["link"].endswith("/api/outbound/1>")


def test_queue_response_link_only_names_the_call_only_in_the_link(other):
    response = other.queue(phone_number="6175551234")
    assert response.json() == {"calls_queued": 1}
    call_id = response.headers["link"].strip("<>").rsplit("/", 1)[1]
    assert other.outbound(call_id).status_code == 200


# empty_csv


def test_empty_csv_zero_answers_calls_queued_0(fuse):
    response = fuse.bulk_queue("destination\n")
    assert response.status_code == 200
    assert response.json() == {"calls_queued": 0}


def test_empty_csv_reject_is_400(other):
    response = other.bulk_queue("destination\n")
    assert response.status_code == 400
    assert response.json()["error"] == "The csv file contains no rows."


# header_case


def test_header_case_exact_rejects_capitalised_destination(fuse):
    assert fuse.bulk_queue("Destination\n6175551234\n").status_code == 400


def test_header_case_insensitive_accepts_it(other):
    assert other.bulk_queue(" Destination ,name\n6175551234,Ann\n").json() == {"calls_queued": 1}
    assert other.sandbox.calls()[0].variables == {"name": "Ann"}


# past_end


def test_past_end_reject_is_400(fuse, sandbox):
    response = fuse.bulk_queue(end_timestamp=str(int(sandbox.now()) - 60))
    assert response.status_code == 400
    assert response.json()["error"] == "The end_timestamp parameter must be in the future."


def test_past_end_accept_queues_calls_that_fail_at_once(other):
    end = int(other.sandbox.now()) - 60
    assert other.bulk_queue(end_timestamp=str(end)).json() == {"calls_queued": 1}
    (call,) = other.sandbox.calls()
    assert call.status == "failed"
    assert call.attempts == 0
    assert call.event_names[-2:] == ["expired", "failed"]


# call_details_types


def test_call_details_types_strings_match_the_documented_sample(fuse):
    fuse.queue(phone_number="6175551234")
    details = fuse.outbound("1").json()["call_details"]
    assert details["max_attempts"] == "1"
    assert details["phone_number"] == "'6175551234'"


def test_call_details_types_native_sends_integers_and_bare_numbers(other):
    other.queue(phone_number="6175551234")
    details = other.outbound("1").json()["call_details"]
    assert details["max_attempts"] == 1
    assert isinstance(details["attempts"], int)
    assert isinstance(details["queued_timestamp"], int)
    assert details["phone_number"] == "6175551234"


# cancel_scope


def test_cancel_scope_unfinished_cancels_a_connected_call(frozen):
    frozen.queue(phone_number="6175551234")
    frozen.sandbox.advance(RING_SECONDS + 1)
    assert frozen.sandbox.calls()[0].status == "connected"
    assert frozen.cancel().status_code == 202
    assert frozen.sandbox.calls()[0].status == "canceled"


def test_cancel_scope_waiting_lets_a_connected_call_finish(other):
    other.queue(phone_number="6175551234")
    other.queue(phone_number="6175551235", start_timestamp=str(int(other.sandbox.now()) + 3600))
    other.sandbox.advance(RING_SECONDS + 1)
    assert other.cancel().status_code == 202
    connected, waiting = other.sandbox.calls()
    assert (connected.status, waiting.status) == ("connected", "canceled")
    other.sandbox.advance(TALK_SECONDS)
    assert other.sandbox.calls()[0].status == "completed"


# is_pci


def test_is_pci_accept_queues_a_secure_call(fuse, sandbox):
    assert fuse.bulk_queue(is_pci="1").status_code == 200
    assert sandbox.calls()[0].is_pci is True


def test_is_pci_forbid_is_403(other):
    response = other.bulk_queue(is_pci="1")
    assert response.status_code == 403
    assert "secure environment" in response.json()["error"]
    assert other.bulk_queue(is_pci="0").status_code == 200


# max_rows


def test_max_rows_none_accepts_many_rows(fuse):
    assert fuse.bulk_queue("destination\n" + "6175551234\n" * 500).json() == {"calls_queued": 500}


def test_max_rows_limit_rejects_a_longer_csv(other):
    response = other.bulk_queue("destination\n" + "6175551234\n" * 4)
    assert response.status_code == 400
    assert response.json()["error"] == "The csv file has more than 3 rows."
