"""Starting and stopping: free ports, a state file that survives restarts, nothing left running."""

from __future__ import annotations

import logging
import socket
import threading

import pytest
import requests

from airflow_provider_fuse.hooks.connection import is_loopback as _is_loopback_host
from airflow_provider_fuse.sandbox import FuseSandbox


def sandbox_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("fuse-sandbox")]


def test_state_file_survives_a_restart(tmp_path, client_for):
    state = tmp_path / "fuse.sqlite"
    data = b"destination,name\n6175551234,Ann\n"
    with FuseSandbox(state_file=state, time_scale=600) as first:
        client_for(first).bulk_queue(data, max_attempts="1")
        first.wait_for_calls()
        key, clock = first.developer_key, first.now()
    with FuseSandbox(state_file=state, developer_key=key) as second:
        (upload,) = second.uploads()
        assert upload.csv == data
        (call,) = second.calls()
        assert (call.status, call.variables) == ("completed", {"name": "Ann"})
        assert [r.status_code for r in second.requests()] == [200]
        assert second.now() >= clock  # the sandbox clock never runs backwards
        client = client_for(second)
        assert client.outbound(call.call_id).json()["call_details"]["status"] == "completed"
        assert client.queue(phone_number="6175551234").json() == {"call_id": "2"}


def test_unfinished_calls_resume_after_a_restart(tmp_path):
    state = tmp_path / "fuse.sqlite"
    with FuseSandbox(state_file=state, time_scale=1e-6) as first:
        requests.post(
            f"{first.url}/apps/101/202/queue",
            files={"phone_number": (None, "6175551234")},
            auth=(first.email, first.developer_key),
            timeout=5,
        )
        assert first.calls()[0].status == "dialing"
    with FuseSandbox(state_file=state, time_scale=1e-6) as second:
        second.advance(3600)
        assert second.calls()[0].status == "completed"


def test_without_state_file_a_restart_forgets(client_for):
    sandbox = FuseSandbox()
    with sandbox:
        client_for(sandbox).bulk_queue()
        assert len(sandbox.uploads()) == 1
    with sandbox:
        assert sandbox.uploads() == []


def test_stop_leaves_nothing_running():
    before = sandbox_threads()
    sandbox = FuseSandbox().start()
    port = sandbox.port
    assert len(sandbox_threads()) > len(before)
    sandbox.stop()
    assert sandbox_threads() == before
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    sandbox.stop()  # idempotent


def test_start_twice_is_refused():
    with FuseSandbox() as sandbox, pytest.raises(RuntimeError, match="already running"):
        sandbox.start()


def test_explicit_port_is_used_and_busy_port_fails_cleanly():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with FuseSandbox(port=port) as sandbox:
        assert sandbox.url == f"http://127.0.0.1:{port}/api"
        with pytest.raises(OSError, match="in use"):
            FuseSandbox(port=port).start()


def test_developer_key_defaults_to_a_random_token():
    first, second = FuseSandbox(), FuseSandbox()
    assert first.developer_key != second.developer_key
    assert len(first.developer_key) >= 24


def test_non_loopback_host_logs_a_plain_http_warning(monkeypatch, caplog):
    sandbox = FuseSandbox(host="0.0.0.0")
    # Bind loopback anyway: the test checks the warning, not the exposure.
    real_bind = FuseSandbox._bind
    monkeypatch.setattr(sandbox, "_bind", lambda: real_bind(FuseSandbox(host="127.0.0.1")))
    with caplog.at_level(logging.WARNING, logger="airflow_provider_fuse.sandbox.server"), sandbox:
        assert sandbox.url.startswith("http://127.0.0.1:")
    assert "plain http" in caplog.text
    assert "allow_http" in caplog.text


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.5.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False)],
)
def test_loopback_hosts_are_recognised(host, loopback):
    assert _is_loopback_host(host) is loopback


def test_inspection_api_refuses_non_loopback_clients():
    from airflow_provider_fuse.sandbox.app import _is_local

    class Client:
        host = "192.0.2.7"

    class FakeRequest:
        client = Client()

    assert _is_local(FakeRequest()) is False  # type: ignore[arg-type]
