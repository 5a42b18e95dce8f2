"""A request that cannot be made is not sent, and says so once: a failure before anything left the
machine (a body that cannot be opened, a session that cannot be built, a CSV that is not a regular
file, a CA bundle that is missing) is a :class:`FuseRequestError` or :class:`FuseCsvError`, never
retried, and what the duplicate guard reads from it (:func:`nothing_queued`) is true."""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from urllib3.exceptions import LocationParseError

from airflow_provider_fuse.exceptions import (
    FuseCsvError,
    FuseRequestError,
    nothing_queued,
)
from airflow_provider_fuse.hooks import requests_client
from tests.hooks.helpers import BULK_URL, STATUS_URL, connection, make_hook, settings_error


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
    from airflow_provider_fuse.operators.task_failures import task_failure

    error = settings_error(monkeypatch, host="fuse.example.com", port=99999)
    message = str(task_failure(error, unknown_outcome="check Fuse"))
    assert message == "Nothing was sent to Fuse: port: must be a number from 1 to 65535"


def test_a_non_latin1_login_is_sent_as_utf8_matching_the_scrubbed_header(monkeypatch, requests_mock):
    connection(monkeypatch, login="运营@example.com")
    requests_mock.get(STATUS_URL, json={"call_details": {"status": "queued"}})
    hook = make_hook()
    hook.get_call_status(77)
    assert requests_mock.last_request.headers["Authorization"] == hook.settings.authorization
