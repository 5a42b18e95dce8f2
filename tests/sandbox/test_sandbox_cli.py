"""The fuse-sandbox command: starts, writes the ready file, serves, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from airflow_provider_fuse.sandbox.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def wait_for_file(path: Path, process: subprocess.Popen[str], timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"fuse-sandbox exited early: {process.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError("the ready file never appeared")
        time.sleep(0.02)
    return path.read_text()


def test_cli_serves_writes_the_ready_file_and_stops_on_sigterm(tmp_path):
    ready = tmp_path / "ready.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "airflow_provider_fuse.sandbox",
        "--port",
        "0",
        "--ready-file",
        str(ready),
        "--deployment",
        "7:8",
        "--bad-rows",
        "skip",
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        connection = json.loads(wait_for_file(ready, process))
        assert connection["conn_type"] == "fuse"
        response = requests.post(
            f"{connection['host']}/apps/7/8/bulk_queue",
            files={"csv": ("c.csv", b"destination\n6175551234\nbad\n")},
            auth=(connection["login"], connection["password"]),
            timeout=5,
        )
        assert response.json() == {"calls_queued": 1}
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert not ready.exists()
    assert stdout.count(connection["password"]) == 2  # the key line and the connection line
    conn_line = next(line for line in stdout.splitlines() if line.startswith("AIRFLOW_CONN_FUSE_DEFAULT="))
    assert json.loads(conn_line.split("=", 1)[1].strip("'")) == connection


def test_cli_fails_cleanly_when_the_port_is_taken(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert main(["--port", str(busy.getsockname()[1])]) == 1
    assert "cannot start" in capsys.readouterr().err


def test_a_port_in_use_says_how_to_pick_another(capsys):
    # The default 8123 is a shared-machine trap; the error named only the OS's reason (newcomer run 19).
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is already in use" in err
    assert "--port N" in err
    assert "--port 0" in err
    assert "--ready-file" in err


def test_cli_offers_every_assumption_switch():
    args = build_parser().parse_args(["--bom", "reject", "--queue-response", "link_only", "--max-rows", "5"])
    assert (args.bom, args.queue_response, args.max_rows, args.bad_rows) == (
        "reject",
        "link_only",
        5,
        "reject",
    )


def test_cli_takes_the_upload_cap():
    assert build_parser().parse_args(["--max-upload-bytes", "1024"]).max_upload_bytes == 1024


def test_cli_upload_cap_defaults_to_256_mib():
    assert build_parser().parse_args([]).max_upload_bytes == 256 * 1024 * 1024


@pytest.mark.parametrize(
    "argv",
    [
        ["--deployment", "101"],
        ["--time-scale", "0"],
        ["--bom", "maybe"],
        ["--max-upload-bytes", "0"],
        ["--max-upload-bytes", "1k"],
    ],
)
def test_cli_rejects_bad_arguments(argv):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2


#: A fresh interpreter where the sandbox extra's packages cannot be imported, as on a worker
#: that installed only the provider; then fuse-sandbox's own entry point.
WITHOUT_THE_EXTRA = """
import sys
for name in ("fastapi", "uvicorn", "python_multipart", "multipart", "starlette"):
    sys.modules[name] = None
from airflow_provider_fuse.sandbox.cli import main
sys.exit(main(["--port", "0"]))
"""


def test_cli_without_the_sandbox_extra_says_what_to_install():
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_THE_EXTRA],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "fuse-sandbox: The Fuse sandbox needs fastapi, uvicorn, python-multipart, which the provider"
        " does not install on its own: pip install 'airflow-provider-fuse[sandbox]'"
    )
    assert result.stdout == ""


def test_cli_names_only_what_is_missing(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main(["--port", "0"]) == 1
    err = capsys.readouterr().err
    assert "needs uvicorn, which" in err
    assert "pip install 'airflow-provider-fuse[sandbox]'" in err
