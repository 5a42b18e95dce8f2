"""Where the contact CSV may come from: local paths, object storage URIs and paths, and Assets."""

from __future__ import annotations

import os

import pytest
from airflow.sdk import Asset, ObjectStoragePath

from airflow_provider_fuse._compat import AirflowFailException
from airflow_provider_fuse.operators.fuse import FuseBulkQueueOperator
from tests.helpers import BASE_URL, decode_multipart, memory_storage

BULK_URL = f"{BASE_URL}/apps/12/34/bulk_queue"
CSV = b"destination,first_name\r\n6175551234,Ada\r\n16175551235,Grace\r\n"


@pytest.fixture
def memory_fs():
    """The filesystem of ``memory://``, holding ``contacts-bucket/daily/contacts.csv``."""
    with memory_storage({"/contacts-bucket/daily/contacts.csv": CSV}) as fs:
        yield fs


@pytest.fixture
def memory_csv(memory_fs):
    """``memory://contacts-bucket/daily/contacts.csv``."""
    return "memory://contacts-bucket/daily/contacts.csv"


@pytest.fixture
def uploads(fuse_connection, requests_mock):
    received: list = []

    def answer(request, context):
        received.append(decode_multipart(request)["csv"])
        return {"calls_queued": 2}

    requests_mock.post(BULK_URL, json=answer)
    return received


@pytest.fixture
def spooled(monkeypatch):
    """Every local path the operator spooled a remote object to."""
    from airflow_provider_fuse.operators import contact_list

    paths: list[str] = []
    original = contact_list.spool

    def spy(source, directory, log):
        path = original(source, directory, log)
        paths.append(path)
        return path

    monkeypatch.setattr(contact_list, "spool", spy)
    return paths


def operator(csv_path, **kwargs) -> FuseBulkQueueOperator:
    return FuseBulkQueueOperator(
        task_id="queue_calls", application_id=12, deployment_id=34, csv_path=csv_path, **kwargs
    )


def test_a_file_uri_is_read_in_place(uploads, tmp_path, spooled):
    path = tmp_path / "contacts.csv"
    path.write_bytes(CSV)
    assert operator(f"file://{path}").execute({}) == 2
    assert uploads[0][0] == CSV
    assert spooled == []


def test_an_object_storage_path_of_a_local_file(uploads, tmp_path):
    path = tmp_path / "contacts.csv"
    path.write_bytes(CSV)
    assert operator(ObjectStoragePath(f"file://{path}")).execute({}) == 2
    assert uploads[0][0] == CSV


def test_a_remote_uri_is_read_once_spooled_and_removed(uploads, memory_fs, memory_csv, spooled):
    assert operator(memory_csv).execute({}) == 2
    content, headers = uploads[0]
    assert content == CSV
    assert 'filename="contacts.csv"' in headers["Content-Disposition"]
    assert memory_fs.reads == 1
    assert len(spooled) == 1
    assert not os.path.exists(spooled[0])


def test_a_remote_object_storage_path(uploads, memory_csv):
    assert operator(ObjectStoragePath(memory_csv)).execute({}) == 2
    assert uploads[0][0] == CSV


def test_an_asset_naming_the_csv(uploads, memory_csv):
    assert operator(Asset(memory_csv)).execute({}) == 2
    assert uploads[0][0] == CSV


def test_the_spooled_copy_is_removed_when_the_preflight_fails(
    fuse_connection, requests_mock, spooled, memory_fs
):
    memory_fs.pipe("/contacts-bucket/bad.csv", b"destination\nnot-a-number\n")
    with pytest.raises(AirflowFailException, match="row 2"):
        operator("memory://contacts-bucket/bad.csv").execute({})
    assert len(spooled) == 1
    assert not os.path.exists(spooled[0])
    assert not requests_mock.called


def test_a_missing_object_fails_naming_it(fuse_connection, requests_mock, memory_csv):
    with pytest.raises(
        AirflowFailException, match="no such object: memory:/+contacts-bucket/daily/missing.csv"
    ):
        operator("memory://contacts-bucket/daily/missing.csv").execute({})
    assert not requests_mock.called


def test_the_path_object_is_built_at_execute_time_not_at_parse_time():
    task = operator("memory://not-attached-yet/contacts.csv")
    assert task.csv_path == "memory://not-attached-yet/contacts.csv"


@pytest.mark.parametrize(
    "source",
    [Asset("memory://contacts-bucket/daily/contacts.csv"), "{{ params.uri }}"],
    ids=["asset", "jinja"],
)
def test_templating_keeps_or_renders_the_source(uploads, memory_csv, source):
    task = operator(source)
    context = {"params": {"uri": memory_csv}}
    task.render_template_fields(context)
    assert task.execute(context) == 2


def test_memory_storage_attaches_its_own_filesystem_and_puts_back_what_was_there():
    """Airflow keeps the first filesystem attached as ``memory``: a test that left one behind would
    make a later test read through it, and not through the filesystem that test counts."""
    from airflow.sdk.io import attach

    def read(uri: str) -> bytes:
        with ObjectStoragePath(uri).open("rb") as file:
            return file.read()

    with memory_storage({"/outer/a.csv": b"a"}) as outer:
        with memory_storage({"/inner/b.csv": b"b"}) as inner:
            assert read("memory://inner/b.csv") == b"b"
            assert (inner.reads, outer.reads) == (1, 0)
        assert attach("memory").fs is outer
        assert not outer.exists("/inner/b.csv")
        assert read("memory://outer/a.csv") == b"a"
        assert outer.reads == 1
