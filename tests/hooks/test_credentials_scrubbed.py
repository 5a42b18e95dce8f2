"""The provider scrubs the connection's credentials itself, with Airflow's masker off: an answer
that echoes them, in its body or its headers, reaches no exception, log line or test_connection
message."""

from __future__ import annotations

import json

import pytest

from airflow_provider_fuse.exceptions import (
    FuseError,
    FuseUnknownOutcomeError,
)
from tests.helpers import BASE_URL, DEVELOPER_KEY
from tests.hooks.helpers import BULK_URL, QUEUE_URL, STATUS_URL, TOKEN, connection, make_hook


@pytest.fixture
def masker_off(monkeypatch):
    """Airflow's secret masker knows nothing and masks nothing: what stays hidden, the provider hid."""
    from airflow.sdk._shared.secrets_masker import _secrets_masker

    masker = _secrets_masker()
    saved = (masker.patterns, masker.replacer)
    monkeypatch.setattr("airflow_provider_fuse.hooks.fuse.mask_secret", lambda *args, **kwargs: None)
    masker.reset_masker()
    monkeypatch.setattr(type(masker), "mask_secrets_in_logs", False)
    assert DEVELOPER_KEY in masker.redact(f"x {DEVELOPER_KEY}")
    yield
    masker.patterns, masker.replacer = saved


def echo(status: int, shape: str):
    """A stand-in that echoes the credentials it was sent, in its body and its headers."""

    def answer(request, context):
        context.status_code = status
        authorization = request.headers["Authorization"]
        context.headers["X-Echo"] = f"{authorization} {DEVELOPER_KEY}"
        context.headers["Link"] = f"<{BASE_URL}/outbound/{DEVELOPER_KEY}>"
        echoed = f"{authorization} key={DEVELOPER_KEY} token={TOKEN}"
        if shape == "error":
            return json.dumps({"error": echoed})
        if shape == "count":
            return json.dumps({"calls_queued": echoed})
        if shape == "details":
            return json.dumps({"call_details": {"status": "queued", "attempts": echoed}})
        return f"<html>{echoed}</html>"

    return answer


ECHOES = [
    ("bulk", 400, "error"),
    ("bulk", 401, "html"),
    ("bulk", 500, "error"),
    ("bulk", 502, "html"),
    ("bulk", 200, "html"),
    ("bulk", 200, "count"),
    ("bulk", 200, "nothing"),
    ("queue", 200, "error"),
    ("queue", 400, "error"),
    ("status", 200, "details"),
    ("status", 200, "nothing"),
    ("status", 404, "error"),
    ("cancel", 500, "html"),
]


@pytest.mark.parametrize(("endpoint", "status", "shape"), ECHOES)
def test_echoed_credentials_reach_no_exception_or_log(
    monkeypatch, masker_off, requests_mock, contacts_csv, log_text, endpoint, status, shape
):
    connection(monkeypatch)
    for method, url in (("POST", BULK_URL), ("POST", QUEUE_URL), ("GET", STATUS_URL)):
        requests_mock.register_uri(method, url, text=echo(status, shape if shape != "nothing" else "x"))
    requests_mock.delete(f"{BASE_URL}/apps/12/34/cancel", text=echo(status, shape))
    if shape == "nothing":  # a 2xx that is not Fuse's answer at all
        requests_mock.register_uri("POST", BULK_URL, text=echo(status, "html"))
    hook = make_hook(connect_retries=1)
    call = {
        "bulk": lambda: hook.bulk_queue(12, 34, contacts_csv),
        "queue": lambda: hook.queue_call(12, 34, "6175551234"),
        "status": lambda: hook.get_call_status(77),
        "cancel": lambda: hook.cancel_calls(12, 34),
    }[endpoint]
    with pytest.raises(FuseError) as caught:
        call()
    texts = [str(caught.value), repr(caught.value), repr(caught.value.args), log_text()]
    if caught.value.__cause__ is not None or caught.value.__context__ is not None:
        texts += [repr(caught.value.__cause__), repr(caught.value.__context__)]
    for text in texts:
        assert DEVELOPER_KEY not in text
        assert TOKEN not in text


def test_test_connection_does_not_echo_credentials(monkeypatch, masker_off, requests_mock):
    connection(monkeypatch)
    requests_mock.get(f"{BASE_URL}/outbound/airflow-provider-fuse-connection-test", text=echo(401, "error"))
    ok, message = make_hook().test_connection()
    assert ok is False
    assert DEVELOPER_KEY not in message
    assert TOKEN not in message
    assert "***" in message


def test_an_unknown_outcome_from_an_echoing_stand_in_still_names_what_happened(
    monkeypatch, masker_off, requests_mock, contacts_csv
):
    connection(monkeypatch)
    requests_mock.post(BULK_URL, text=echo(500, "error"))
    with pytest.raises(FuseUnknownOutcomeError, match=r"answered 500: \*\*\* key=\*\*\* token=\*\*\*"):
        make_hook().bulk_queue(12, 34, contacts_csv)
