"""FuseHook against hostile input and hostile answers (issue 10, items 3, 5, 9, 10, 11).

Each case goes end to end through the hook and asserts the exception class and what the duplicate
guard reads from it (:func:`nothing_queued`): an error that is not an unknown outcome must mean that
nothing left the machine.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from urllib3.exceptions import LocationParseError

from airflow_provider_fuse.exceptions import (
    FuseCsvError,
    FuseError,
    FuseInvalidResponseError,
    FuseRequestError,
    FuseUnknownOutcomeError,
    FuseValidationError,
    nothing_queued,
)
from airflow_provider_fuse.hooks import requests_client
from airflow_provider_fuse.hooks.fuse import FuseHook
from tests.helpers import BASE_URL, DEVELOPER_KEY, EMAIL, connection_json

BULK_URL = f"{BASE_URL}/apps/12/34/bulk_queue"
QUEUE_URL = f"{BASE_URL}/apps/12/34/queue"
STATUS_URL = f"{BASE_URL}/outbound/77"
TOKEN = base64.b64encode(f"{EMAIL}:{DEVELOPER_KEY}".encode()).decode()


def make_hook(**kwargs: object) -> FuseHook:
    return FuseHook(retry_backoff=0.0, **kwargs)  # type: ignore[arg-type]


def connection(monkeypatch: pytest.MonkeyPatch, **fields: object) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json(**fields))


def settings_error(monkeypatch: pytest.MonkeyPatch, **fields: object) -> FuseValidationError:
    connection(monkeypatch, **fields)
    with pytest.raises(FuseValidationError) as caught:
        make_hook().settings  # noqa: B018
    assert nothing_queued(caught.value)
    return caught.value


# --- Item 5: what can be checked is checked when the connection is read -----------------------------


@pytest.mark.parametrize("port", [99999, 65536, -1])
def test_a_port_field_outside_1_to_65535_is_refused_naming_port(monkeypatch, port):
    error = settings_error(monkeypatch, host="fuse.example.com", port=port)
    assert error.parameter == "port"


@pytest.mark.parametrize("host", ["https://fuse.example.com:99999/api", "fuse.example.com:0", "h:x/api"])
def test_a_port_inside_the_host_outside_1_to_65535_is_refused_naming_host(monkeypatch, host):
    error = settings_error(monkeypatch, host=host)
    assert error.parameter == "host"
    assert "65535" in str(error)


@pytest.mark.parametrize(
    "host",
    [
        "https://fuse example.com/api",
        "https://[::1/api",
        "https://fuse.example.com\n/api",
        "https://fuse.\u200bexample.com/",
    ],
)
def test_a_host_that_is_not_a_url_is_refused_naming_host(monkeypatch, host):
    assert settings_error(monkeypatch, host=host).parameter == "host"


@pytest.mark.parametrize(
    "host", ["https://user:pw-s3cr3t@fuse.example.com/api", "https://ops%40example.com@fuse.example.com"]
)
def test_credentials_in_the_host_are_refused_without_echoing_them(monkeypatch, host, log_text):
    error = settings_error(monkeypatch, host=host)
    assert error.parameter == "host"
    assert "login" in str(error)
    for part in ("pw-s3cr3t", "user:", "ops%40example.com", "fuse.example.com"):
        assert part not in str(error)
        assert part not in log_text()


@pytest.mark.parametrize("scheme", ["socks5", "socks5h", "socks4"])
def test_a_socks_proxy_is_refused_when_socks_support_is_not_installed(monkeypatch, scheme):
    monkeypatch.setattr("airflow_provider_fuse.hooks.settings._socks_available", lambda: False)
    error = settings_error(monkeypatch, extra={"proxies": {"https": f"{scheme}://u:proxy-pw@127.0.0.1:1080"}})
    assert error.parameter == "extra.proxies.https"
    assert "PySocks" in str(error)
    assert "proxy-pw" not in str(error)


def test_a_socks_proxy_is_accepted_when_socks_support_imports(monkeypatch):
    monkeypatch.setattr("airflow_provider_fuse.hooks.settings._socks_available", lambda: True)
    connection(monkeypatch, extra={"proxies": {"https": "socks5h://127.0.0.1:1080"}})
    assert make_hook().settings.proxies == {"https": "socks5h://127.0.0.1:1080"}


@pytest.mark.parametrize(
    "proxy", ["ftp://127.0.0.1:21", "http://127.0.0.1:99999", "http://", "http://u:proxy-pw@127.0.0.1:0"]
)
def test_a_proxy_this_install_cannot_use_is_refused_without_echoing_it(monkeypatch, proxy):
    error = settings_error(monkeypatch, extra={"proxies": {"https": proxy}})
    assert error.parameter == "extra.proxies.https"
    assert proxy not in str(error)
    assert "proxy-pw" not in str(error)


@pytest.mark.parametrize(
    "timeout",
    [
        float("inf"),
        float("nan"),
        0,
        -3,
        1e300,
        "Infinity",
        {"read": float("inf")},
        {"total": 0},
        {"connect": 1, "reed": 2},
        [1, 2, 3, 4],
    ],
)
def test_a_timeout_that_is_not_finite_positive_seconds_is_refused(monkeypatch, timeout):
    assert settings_error(monkeypatch, extra={"timeout": timeout}).parameter.startswith("extra.timeout")


def test_the_total_timeout_is_read_from_the_timeout_extra(monkeypatch):
    connection(monkeypatch, extra={"timeout": {"connect": 2, "read": 30, "total": 90}})
    settings = make_hook().settings
    assert (settings.timeout, settings.total_timeout) == ((2.0, 30.0), 90.0)


def test_the_total_timeout_defaults_to_an_hour(monkeypatch):
    connection(monkeypatch, extra={"timeout": [3, 60]})
    assert make_hook().settings.total_timeout == 3600.0


# --- Item 5: requests that cannot be made are not sent, and say so once --------------------------------


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.InvalidURL("bad"),
        requests.exceptions.InvalidSchema("bad"),
        requests.exceptions.MissingSchema("bad"),
        requests.exceptions.InvalidHeader("bad"),
        requests.exceptions.InvalidProxyURL("bad"),
        LocationParseError("bad"),
    ],
)
def test_an_error_raised_before_sending_is_a_request_error_never_retried(
    fuse_connection, requests_mock, contacts_csv, error
):
    requests_mock.post(BULK_URL, exc=error)
    with pytest.raises(FuseRequestError) as caught:
        make_hook(connect_retries=3).bulk_queue(12, 34, contacts_csv)
    assert nothing_queued(caught.value)
    assert requests_mock.call_count == 1
    assert str(caught.value).count("not sent") == 1


def _timer_thread_cannot_start(monkeypatch: pytest.MonkeyPatch) -> None:
    def start(self: threading.Timer) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Timer, "start", start)


def _body_cannot_be_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    @contextmanager
    def open_csv(csv: object) -> Iterator[None]:
        raise OSError(errno.EMFILE, "Too many open files")
        yield  # pragma: no cover

    monkeypatch.setattr(requests_client, "_open_csv", open_csv)


def _session_cannot_be_built(monkeypatch: pytest.MonkeyPatch) -> None:
    def adapter(watchdog: object) -> None:
        raise OSError(errno.ENOMEM, "Cannot allocate memory")

    monkeypatch.setattr(requests_client, "FuseAdapter", adapter)


@pytest.mark.parametrize(
    "fail",
    [_timer_thread_cannot_start, _body_cannot_be_opened, _session_cannot_be_built],
    ids=lambda f: f.__name__,
)
def test_a_failure_before_the_request_is_made_is_a_request_error_that_queued_nothing(
    fuse_connection, requests_mock, contacts_csv, monkeypatch, fail
):
    requests_mock.post(BULK_URL, json={"calls_queued": 3})
    fail(monkeypatch)
    with pytest.raises(
        FuseRequestError, match=r"not sent: the request could not be made \((Runtime|OS)Error\)"
    ) as caught:
        make_hook(connect_retries=3).bulk_queue(12, 34, contacts_csv)
    assert nothing_queued(caught.value)
    assert not caught.value.retryable
    assert not requests_mock.called


def test_a_failure_before_the_request_is_made_is_not_read_from_the_last_requests_deadline(
    fuse_connection, requests_mock, contacts_csv, monkeypatch
):
    hook = make_hook()
    watchdog = hook._watchdog
    watchdog.expired = watchdog.connected = True  # as the last request, cut after it was sent, left it
    _timer_thread_cannot_start(monkeypatch)
    with pytest.raises(FuseRequestError) as caught:
        hook.bulk_queue(12, 34, contacts_csv)
    assert nothing_queued(caught.value)


def test_an_io_error_while_checking_the_csv_path_is_a_csv_error_before_any_request(
    fuse_connection, requests_mock, contacts_csv, monkeypatch
):
    from airflow_provider_fuse import snapshot

    def open_regular_file(path: object) -> int:
        raise OSError(errno.EIO, "Input/output error")  # as its fstat may, on a failing disk

    monkeypatch.setattr(snapshot, "open_regular_file", open_regular_file)
    with pytest.raises(FuseCsvError, match=r"cannot be read \(OSError\)") as caught:
        make_hook().bulk_queue(12, 34, contacts_csv)
    assert nothing_queued(caught.value)
    assert not requests_mock.called


def test_a_missing_csv_is_a_csv_error_before_any_request(fuse_connection, requests_mock, tmp_path):
    with pytest.raises(FuseCsvError, match="no such file") as caught:
        make_hook().bulk_queue(12, 34, tmp_path / "missing.csv")
    assert nothing_queued(caught.value)
    assert not requests_mock.called


def test_a_directory_is_a_csv_error_before_any_request(fuse_connection, requests_mock, tmp_path):
    with pytest.raises(FuseCsvError, match="directory"):
        make_hook().bulk_queue(12, 34, tmp_path)
    assert not requests_mock.called


def test_a_fifo_is_refused_at_once_without_blocking(fuse_connection, requests_mock, tmp_path):
    fifo = tmp_path / "contacts.csv"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(FuseCsvError, match="not a regular file") as caught:
        make_hook().bulk_queue(12, 34, fifo)
    assert time.monotonic() - started < 2
    assert nothing_queued(caught.value)
    assert not requests_mock.called


@pytest.mark.parametrize("as_object", [False, True])
def test_dev_zero_is_refused_as_a_path_or_a_file_object(fuse_connection, requests_mock, as_object):
    if as_object:
        with open("/dev/zero", "rb") as file, pytest.raises(FuseCsvError, match="not a regular file"):
            make_hook().bulk_queue(12, 34, file)
    else:
        with pytest.raises(FuseCsvError, match="not a regular file"):
            make_hook().bulk_queue(12, 34, "/dev/zero")
    assert not requests_mock.called


def test_an_unreadable_csv_is_a_csv_error(fuse_connection, requests_mock, contacts_csv):
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    contacts_csv.chmod(0)
    with pytest.raises(FuseCsvError, match="cannot be opened"):
        make_hook().bulk_queue(12, 34, contacts_csv)
    assert not requests_mock.called


def test_a_closed_file_object_is_a_csv_error(fuse_connection, requests_mock, contacts_csv):
    file = open(contacts_csv, "rb")  # noqa: SIM115
    file.close()
    with pytest.raises(FuseCsvError):
        make_hook().bulk_queue(12, 34, file)
    assert not requests_mock.called


def test_a_missing_ca_bundle_is_a_request_error_against_a_real_socket(monkeypatch, contacts_csv):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        connection(monkeypatch, host=f"https://127.0.0.1:{port}/api", extra={"verify": "/nonexistent/ca.pem"})
        with pytest.raises(FuseRequestError) as caught:
            make_hook(connect_retries=2).bulk_queue(12, 34, contacts_csv)
        listener.settimeout(0.2)
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing connected
    assert nothing_queued(caught.value)


def test_a_validation_error_through_the_operator_says_nothing_was_sent_once(monkeypatch):
    from airflow_provider_fuse.operators.fuse import task_failure

    error = settings_error(monkeypatch, host="fuse.example.com", port=99999)
    message = str(task_failure(error, unknown_outcome="check Fuse"))
    assert message == "Nothing was sent to Fuse: port: must be a number from 1 to 65535"


def test_a_non_latin1_login_is_sent_as_utf8_matching_the_scrubbed_header(monkeypatch, requests_mock):
    connection(monkeypatch, login="运营@example.com")
    requests_mock.get(STATUS_URL, json={"call_details": {"status": "queued"}})
    hook = make_hook()
    hook.get_call_status(77)
    assert requests_mock.last_request.headers["Authorization"] == hook.settings.authorization


# --- Item 9: answers are sane or they are unknown ----------------------------------------------------

VALID_COUNTS = st.integers(min_value=0, max_value=2**31 - 1)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(count=VALID_COUNTS, as_text=st.booleans())
def test_a_count_from_0_to_2_31_is_taken_as_an_int_or_ascii_digits(
    fuse_connection, requests_mock, contacts_csv, count, as_text
):
    requests_mock.post(BULK_URL, json={"calls_queued": str(count) if as_text else count})
    assert make_hook().bulk_queue(12, 34, contacts_csv) == count


NOT_COUNTS = st.one_of(
    st.integers(max_value=-1),
    st.integers(min_value=2**31),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text().filter(lambda text: not (text.strip(" \t\r\n").isascii() and text.strip(" \t\r\n").isdigit())),
    st.lists(st.integers(), max_size=2),
    st.none(),
)


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=NOT_COUNTS)
def test_anything_else_as_calls_queued_is_an_unknown_outcome(
    fuse_connection, requests_mock, contacts_csv, value
):
    requests_mock.post(BULK_URL, status_code=201, json={"calls_queued": value})
    with pytest.raises(FuseInvalidResponseError) as caught:
        make_hook().bulk_queue(12, 34, contacts_csv)
    assert caught.value.status_code == 201
    assert not nothing_queued(caught.value)


@pytest.mark.parametrize("text", ["-5", "1_000", "١٢", "10" * 15, "4294967296", "+3", "3.0"])
def test_the_counts_int_would_take_are_refused(fuse_connection, requests_mock, contacts_csv, text):
    requests_mock.post(BULK_URL, json={"calls_queued": text})
    with pytest.raises(FuseInvalidResponseError):
        make_hook().bulk_queue(12, 34, contacts_csv)


def test_an_empty_202_reports_its_real_status(fuse_connection, requests_mock, contacts_csv):
    requests_mock.post(BULK_URL, status_code=202, text="")
    with pytest.raises(FuseInvalidResponseError, match="answered 202") as caught:
        make_hook().bulk_queue(12, 34, contacts_csv)
    assert caught.value.status_code == 202


def test_a_queue_answer_without_a_call_id_reports_its_real_status(fuse_connection, requests_mock):
    requests_mock.post(QUEUE_URL, status_code=201, json={})
    with pytest.raises(FuseInvalidResponseError, match="answered 201"):
        make_hook().queue_call(12, 34, "6175551234")


@pytest.mark.parametrize("call_id", ["x" * 300, "a b", "id\n2", DEVELOPER_KEY, f"c-{TOKEN}"])
def test_a_call_id_that_cannot_be_fuses_is_an_unknown_outcome(fuse_connection, requests_mock, call_id):
    requests_mock.post(QUEUE_URL, json={"call_id": call_id})
    with pytest.raises(FuseInvalidResponseError) as caught:
        make_hook().queue_call(12, 34, "6175551234")
    assert DEVELOPER_KEY not in str(caught.value)
    assert not nothing_queued(caught.value)


def test_an_infinite_number_in_call_details_is_an_invalid_answer(fuse_connection, requests_mock):
    requests_mock.get(STATUS_URL, text='{"call_details": {"status": "queued", "attempts": 1e999}}')
    with pytest.raises(FuseInvalidResponseError):
        make_hook(connect_retries=0).get_call_status(77)


# --- Item 10: the provider scrubs credentials itself, masker off -------------------------------------


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
