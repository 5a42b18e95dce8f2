"""``fuse-results serve``: the receiver on uvicorn, outside Airflow's api-server."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from airflow_provider_fuse.results.cli import DEFAULT_PORT, build_app, build_parser, main
from airflow_provider_fuse.results.tokens import UploadPart, new_campaign, sign
from harness import free_port
from tests.helpers import MASKED_FUSE_PATHS, logged_fuse_paths, run_command

FUSE_RESULTS = str(Path(sys.executable).parent / "fuse-results")
KEY = secrets.token_hex(24)
PHONE = "6175550142"


def token(**fields: object) -> str:
    values: dict[str, object] = {
        "dag_id": "campaign",
        "run_id": "manual__cli",
        "task_id": "queue_calls",
        "map_index": -1,
        "campaign": new_campaign(),
        "part": 0,
        "rows": 10,
        "expires": int(time.time()) + 3600,
    }
    values.update(fields)
    return sign(UploadPart(**values), KEY)  # type: ignore[arg-type]


def callback(number: str = PHONE) -> dict[str, object]:
    return {"call_details": {"status": "completed", "attempts": "1", "phone_number": f"'{number}'"}}


def serve_env(tmp_path: Path, database: Path, **extra: str) -> dict[str, str]:
    base = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    return {
        **base,
        "AIRFLOW_HOME": str(tmp_path / "home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__FUSE__RESULTS_SIGNING_KEY": KEY,
        "AIRFLOW_CONN_FUSE_RESULTS_DEFAULT": f"sqlite://{database}",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


class Served:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.TransportError:
        return False
    return True


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [FUSE_RESULTS, "serve", "--port", str(port)],
            env=serve_env(tmp_path, tmp_path / "results.db"),
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = Served(process, port, log)
    try:
        deadline = time.monotonic() + 60
        while not answers(f"{running.url}/fuse/"):
            assert process.poll() is None, running.output()[-3000:]
            assert time.monotonic() < deadline, running.output()[-3000:]
            time.sleep(0.1)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def test_serve_stores_a_callback_on_loopback_and_logs_no_token(served: Served, tmp_path: Path) -> None:
    tok = token()

    answer = httpx.post(f"{served.url}/fuse/results/{tok}", json=callback(), timeout=30)
    forged = httpx.post(f"{served.url}/fuse/results/{tok[:-2]}", json=callback(), timeout=30)

    assert answer.status_code == 200
    assert answer.json() == {"stored": "stored"}
    assert forged.status_code == 403
    with sqlite3.connect(tmp_path / "results.db") as db:
        assert db.execute("SELECT run_id, status FROM fuse_call_results").fetchall() == [
            ("manual__cli", "completed")
        ]
    served.process.send_signal(signal.SIGINT)
    assert served.process.wait(20) == 0
    output = served.output()
    assert f"http://127.0.0.1:{served.port}/fuse/results/<token>" in output
    # uvicorn's access log names both requests, each with the token hidden (in whatever spelling);
    # the only other path is the banner's placeholder.
    assert logged_fuse_paths(output).count("/fuse/results/***") == 2
    assert set(logged_fuse_paths(output)) <= {*MASKED_FUSE_PATHS, "/fuse/results/<token>"}
    assert tok not in output
    assert tok[:-2] not in output
    assert PHONE not in output


def test_serve_without_a_signing_key_exits_1_naming_the_option(tmp_path: Path) -> None:
    env = serve_env(tmp_path, tmp_path / "results.db")
    del env["AIRFLOW__FUSE__RESULTS_SIGNING_KEY"]

    done = run_command([FUSE_RESULTS, "serve", "--port", str(free_port())], env, tmp_path)

    assert done.returncode == 1
    assert "results_signing_key" in done.stderr


def test_serve_with_a_connection_that_is_not_a_database_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_SIGNING_KEY", KEY)
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_RESULTS_DEFAULT", '{"conn_type": "http", "host": "example.com"}')

    assert main(["serve", "--port", str(free_port())]) == 1
    assert "fuse_results_default" in capsys.readouterr().err


def test_serve_defaults_to_loopback() -> None:
    args = build_parser().parse_args(["serve"])

    assert (args.host, args.port) == ("127.0.0.1", DEFAULT_PORT)


def test_a_certificate_needs_its_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--ssl-certfile", "cert.pem"]) == 2
    assert "--ssl-keyfile" in capsys.readouterr().err


def test_the_standalone_app_mounts_the_receiver_at_fuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_SIGNING_KEY", KEY)
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_RESULTS_DEFAULT", f"sqlite://{tmp_path / 'results.db'}")

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.post(f"/fuse/results/{token()}", json=callback())

    assert asyncio.run(post()).json() == {"stored": "stored"}


def test_serve_with_a_failing_signing_key_command_exits_1_and_prints_none_of_its_output(
    tmp_path: Path,
) -> None:
    printed = "k3y-PRINTED-by-a-failing-command-0123456789"
    command = tmp_path / "signing-key.sh"
    command.write_text(f"#!/bin/sh\necho {printed}\necho 'backend said {printed}' >&2\nexit 1\n")
    command.chmod(0o755)
    env = serve_env(tmp_path, tmp_path / "results.db", AIRFLOW__FUSE__RESULTS_SIGNING_KEY_CMD=str(command))
    del env["AIRFLOW__FUSE__RESULTS_SIGNING_KEY"]

    done = run_command([FUSE_RESULTS, "serve", "--port", str(free_port())], env, tmp_path)

    assert done.returncode == 1
    assert "results_signing_key" in done.stderr
    assert printed not in done.stdout + done.stderr
