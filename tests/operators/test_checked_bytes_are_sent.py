"""The bytes the preflight checked are the bytes sent: a file that changes, is replaced or is not a
regular file sends nothing it did not check.
"""

from __future__ import annotations

import os
import threading

import pytest

from airflow_provider_fuse._compat import AirflowFailException
from airflow_provider_fuse.exceptions import FuseCsvError
from airflow_provider_fuse.snapshot import copy_regular_file
from tests.helpers import decode_multipart
from tests.operators.test_fuse import BULK_URL, numbered_csv, operator


@pytest.fixture(autouse=True)
def _no_connect_backoff(monkeypatch):
    monkeypatch.setattr("airflow_provider_fuse.hooks.fuse.time.sleep", lambda seconds: None)


def test_rows_appended_after_the_check_are_not_sent(fuse_connection, requests_mock, tmp_path):
    path = numbered_csv(tmp_path, 3)
    checked = path.read_bytes()
    sent = []

    def answer(request, context):
        with path.open("a") as artifact:  # the file changes while the upload is under way
            artifact.write("16175550999,late\n")
        sent.append(decode_multipart(request)["csv"][0])
        return {"calls_queued": 3}

    requests_mock.post(BULK_URL, json=answer)
    assert operator(path).execute({}) == 3
    assert sent == [checked]


def test_a_file_replaced_or_deleted_after_the_check_changes_nothing_sent(
    fuse_connection, requests_mock, tmp_path
):
    path = numbered_csv(tmp_path, 4)
    checked = path.read_bytes()
    sent = []

    def answer(request, context):
        os.replace(numbered_csv(tmp_path, 9, name="other.csv"), path)
        sent.append(decode_multipart(request)["csv"][0])
        os.unlink(path)
        return {"calls_queued": 4}

    requests_mock.post(BULK_URL, json=answer)
    assert operator(path, chunk_size=2).execute({}) == 8
    assert b"".join(sent).count(b"\n") == len(checked.splitlines()) + 1  # a header per part


def test_a_file_that_changes_while_it_is_copied_sends_nothing(monkeypatch, tmp_path):
    path = numbered_csv(tmp_path, 3)
    real_fdopen = os.fdopen

    class AppendsWhileRead:
        def __init__(self, file):
            self.file = file
            self.appended = False

        def read(self, size):
            block = self.file.read(size)
            if not self.appended:
                self.appended = True
                with open(path, "a") as writer:
                    writer.write("16175550999,late\n")
            return block

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    def fdopen(fd, mode="r", *args, **kwargs):
        file = real_fdopen(fd, mode, *args, **kwargs)
        return AppendsWhileRead(file) if mode == "rb" else file

    monkeypatch.setattr("airflow_provider_fuse.snapshot._BLOCK", 8)
    monkeypatch.setattr("airflow_provider_fuse.snapshot.os.fdopen", fdopen)
    target = tmp_path / "copy.csv"
    with pytest.raises(FuseCsvError, match="changed while it was being read"):
        copy_regular_file(path, target)
    assert not target.exists()


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_only_regular_files_are_read(fuse_connection, requests_mock, tmp_path, kind):
    if kind == "fifo":
        source = tmp_path / "contacts.csv"
        os.mkfifo(source)  # no writer: a blocking open would hang here
    elif kind == "device":
        source = "/dev/zero"
    else:
        source = tmp_path
    done = threading.Event()
    failure: list[BaseException] = []

    def run():
        try:
            operator(source).execute({})
        except BaseException as error:
            failure.append(error)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(10), "reading the artifact blocked"
    assert isinstance(failure[0], AirflowFailException)
    assert "regular file" in str(failure[0]) or "directory" in str(failure[0])
    assert not requests_mock.called
