"""End to end: real Airflow (SQLite), real HTTP, the Fuse sandbox on loopback.

Each test checks the task's outcome in Airflow's own database and what the sandbox itself recorded.
"""

from __future__ import annotations

import csv
import io
import json
import re
import socket
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import airflow
import pytest

from airflow_provider_fuse.sandbox import FuseSandbox

PHONES = [f"1617555{index:04d}" for index in range(1000)]
EXAMPLE = "example_fuse_bulk_queue"
GUARDED = tuple(int(part) for part in airflow.__version__.split(".")[:2]) >= (3, 3)


@pytest.fixture
def contacts(tmp_path: Path) -> Path:
    """1,000 rows with extra columns, quoting, a comma and a non-ASCII name, CRLF line ends."""
    path = tmp_path / "contacts.csv"
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)  # the csv module's default line end is CRLF
        writer.writerow(["destination", "first_name", "account", "note"])
        for index, phone in enumerate(PHONES):
            writer.writerow([phone, f"Zoë {index}", f"A-{index:05d}", "late, twice" if index % 3 else ""])
    return path


def bulk_uploads(sandbox: FuseSandbox) -> list:
    return [request for request in sandbox.requests() if request.path.endswith("/bulk_queue")]


@dataclass(frozen=True)
class ExampleRun:
    """One run of the bulk example: how it ended, what Fuse received, what is left in the export base."""

    run: object
    states: dict[str, str | None]
    export_uri: object
    uploads: list
    calls: list
    export_base: Path
    left_behind: list[Path]


def export_env(export_base: Path) -> dict[str, str]:
    """Point the example's Variable fuse_example_export_base at a ``file://`` directory."""
    return {"AIRFLOW_VAR_FUSE_EXAMPLE_EXPORT_BASE": export_base.as_uri()}


def files_under(directory: Path) -> list[Path]:
    return sorted(path for path in directory.rglob("*") if path.is_file())


def run_the_example(airflow_env, export_base: Path, **conf) -> ExampleRun:
    export_base.mkdir()
    with FuseSandbox() as sandbox:
        run = airflow_env.dags_test(
            EXAMPLE, connection=sandbox.connection_json(), conf=conf or None, env=export_env(export_base)
        )
        uploads, calls = sandbox.uploads(), sandbox.calls()
    export = airflow_env.last_run(EXAMPLE, "", task_id="export_contacts")
    return ExampleRun(
        run=run,
        states=airflow_env.task_states(EXAMPLE, run.run_id),
        export_uri=export.xcom,
        uploads=uploads,
        calls=calls,
        export_base=export_base,
        left_behind=files_under(export_base),
    )


def run_logical_date(airflow_env, run_id: str) -> str:
    with sqlite3.connect(airflow_env.home / "airflow.db") as db:
        (value,) = db.execute("SELECT logical_date FROM dag_run WHERE run_id = ?", (run_id,)).fetchone()
    return str(value)


@pytest.fixture(scope="module")
def example_run(airflow_env, tmp_path_factory) -> ExampleRun:
    return run_the_example(airflow_env, tmp_path_factory.mktemp("example") / "exports")


@pytest.fixture(scope="module")
def failed_example_run(airflow_env, tmp_path_factory) -> ExampleRun:
    """A run whose upload Fuse rejects: the sandbox knows no deployment 999."""
    return run_the_example(airflow_env, tmp_path_factory.mktemp("example") / "exports", deployment_id=999)


def test_the_example_dag_succeeds_and_xcom_holds_the_count(example_run):
    run = example_run.run
    assert (run.dag_state, run.task_state) == ("success", "success"), run.output[-3000:]
    (upload,) = example_run.uploads
    assert run.xcom == upload.calls_queued == upload.rows == 3
    assert (upload.application_id, upload.deployment_id) == (101, 202)
    assert upload.fields == {"max_attempts": "2", "reattempt_wait": "300"}
    assert len(example_run.calls) == 3


def test_the_examples_list_names_its_run_on_every_row(example_run):
    (upload,) = example_run.uploads
    rows = list(csv.reader(io.StringIO(upload.csv.decode("utf-8"), newline="")))
    run_id = example_run.run.run_id
    assert rows == [
        ["destination", "first_name", "airflow_run_id"],
        ["6175550100", "Ada", run_id],
        ["16175550101", "Grace", run_id],
        ["tel:+16175550102;ani=8005550199", "Alan", run_id],
    ]


def test_the_example_hands_the_csv_over_through_the_export_base_under_a_path_safe_run_id(example_run):
    safe_run_id = re.sub(r"[^A-Za-z0-9._-]", "_", example_run.run.run_id)
    assert ":" in example_run.run.run_id
    expected = f"{example_run.export_base.as_uri()}/{EXAMPLE}/{safe_run_id}/contacts.csv"
    assert example_run.export_uri == expected


def test_the_examples_teardown_removes_the_export_and_its_run_directory(example_run):
    assert example_run.states["remove_export"] == "success"
    assert example_run.left_behind == []
    assert [path.name for path in (example_run.export_base / EXAMPLE).iterdir()] == []


def test_the_examples_teardown_fails_loudly_when_the_export_is_not_there(airflow_env, example_run):
    # The export is gone (the run removed it): as it would be on a worker that never had it.
    result = airflow_env.run(
        "tasks",
        "test",
        EXAMPLE,
        "remove_export",
        example_run.run.run_id,
        connection="{}",
        env=export_env(example_run.export_base),
    )
    output = result.stdout + result.stderr
    states = airflow_env.task_states(EXAMPLE, example_run.run.run_id)
    assert states["remove_export"] == "failed", output[-3000:]
    assert f"No contact export to remove at {example_run.export_uri}" in output


def test_a_failed_upload_fails_the_examples_run(failed_example_run):
    run = failed_example_run.run
    assert failed_example_run.states == {
        "export_contacts": "success",
        "queue_calls": "failed",
        "report": "upstream_failed",
        "remove_export": "success",
    }
    assert (run.dag_state, run.try_number) == ("failed", 1), run.output[-3000:]
    assert "Fuse API answered 404" in run.output
    assert len(failed_example_run.uploads) == 1
    assert failed_example_run.calls == []


def test_a_failed_upload_still_removes_the_export(failed_example_run):
    assert str(failed_example_run.export_uri).startswith(failed_example_run.export_base.as_uri())
    assert failed_example_run.left_behind == []


@pytest.mark.skipif(not GUARDED, reason="the duplicate guard needs Airflow >= 3.3")
def test_clearing_the_examples_successful_upload_sends_nothing_and_removes_the_export_again(
    airflow_env, sandbox, tmp_path
):
    export_base = tmp_path / "exports"
    env = export_env(export_base)
    connection = sandbox.connection_json()
    first = airflow_env.dags_test(EXAMPLE, connection=connection, env=env)
    assert (first.dag_state, first.xcom) == ("success", 3), first.output[-3000:]
    (sent,) = sandbox.uploads()
    run_id = first.run_id
    logical_date = run_logical_date(airflow_env, run_id)

    cleared = airflow_env.run(
        "tasks",
        "clear",
        EXAMPLE,
        "-t",
        "queue_calls",
        "-s",
        logical_date,
        "-e",
        logical_date,
        "-y",
        connection=connection,
        env=env,
    )
    assert cleared.returncode == 0, (cleared.stdout + cleared.stderr)[-3000:]
    # Airflow clears the upload's setup and teardown with it; report keeps its state.
    states = airflow_env.task_states(EXAMPLE, run_id)
    assert states == {
        "export_contacts": None,
        "queue_calls": None,
        "remove_export": None,
        "report": "success",
    }

    # What the scheduler then runs, in order, in the same DAG run.
    def again(task_id: str) -> str:
        result = airflow_env.run("tasks", "test", EXAMPLE, task_id, run_id, connection=connection, env=env)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-3000:]
        return output

    again("export_contacts")
    (export,) = files_under(export_base)
    assert export.read_bytes() == sent.csv  # the export is written again, the same bytes
    output = again("queue_calls")
    assert "Nothing sent: an earlier try of this task instance already queued its list (3 calls" in output
    again("remove_export")
    assert files_under(export_base) == []
    assert len(sandbox.uploads()) == 1
    assert airflow_env.task_states(EXAMPLE, run_id) == {
        "export_contacts": "success",
        "queue_calls": "success",
        "remove_export": "success",
        "report": "success",
    }


def test_a_thousand_row_csv_with_extra_columns_arrives_byte_identical(airflow_env, sandbox, contacts):
    run = airflow_env.dags_test(
        "e2e_bulk_queue", connection=sandbox.connection_json(), conf={"csv_path": str(contacts)}
    )
    assert run.task_state == "success", run.output[-3000:]
    (upload,) = sandbox.uploads()
    assert upload.csv == contacts.read_bytes()
    assert upload.filename == "contacts.csv"
    assert upload.rows == 1000
    assert run.xcom == 1000


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409])
def test_a_rejection_fails_once_in_fuses_words_despite_retries(airflow_env, sandbox, contacts, status):
    message = f"Sandbox says no ({status})."
    sandbox.inject_fault(status=status, message=message, endpoint="bulk_queue", count=5)
    run = airflow_env.dags_test(
        "e2e_bulk_queue", connection=sandbox.connection_json(), conf={"csv_path": str(contacts)}
    )
    assert run.task_state == "failed"
    assert run.try_number == 1
    assert f"Fuse API answered {status}: {message}" in run.output
    assert len(bulk_uploads(sandbox)) == 1
    assert sandbox.calls() == []


def test_a_rejection_from_a_real_unknown_deployment_is_a_404(airflow_env, sandbox, contacts):
    conf = {"csv_path": str(contacts), "deployment_id": 999}
    run = airflow_env.dags_test("e2e_bulk_queue", connection=sandbox.connection_json(), conf=conf)
    assert (run.task_state, run.try_number) == ("failed", 1)
    assert (
        "Fuse API answered 404: No deployment was found by that application id and deployment id."
        in run.output
    )
    assert len(bulk_uploads(sandbox)) == 1


def test_wrong_credentials_are_a_401_rejection(airflow_env, sandbox, contacts):
    connection = json.loads(sandbox.connection_json())
    connection["password"] = "not-the-developer-key"
    run = airflow_env.dags_test(
        "e2e_bulk_queue", connection=json.dumps(connection), conf={"csv_path": str(contacts)}
    )
    assert (run.task_state, run.try_number) == ("failed", 1)
    assert "Fuse API answered 401" in run.output
    assert len(bulk_uploads(sandbox)) == 1


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500},
        {"status": 502, "body": "html"},
        {"drop": True},
        {"drop": True, "after_queue": True},
    ],
    ids=["500", "502-html", "dropped", "queued-then-dropped"],
)
def test_an_unknown_outcome_fails_once_and_says_to_check_fuse(airflow_env, sandbox, contacts, fault):
    sandbox.inject_fault(endpoint="bulk_queue", count=5, **fault)
    run = airflow_env.dags_test(
        "e2e_bulk_queue", connection=sandbox.connection_json(), conf={"csv_path": str(contacts)}
    )
    assert (run.task_state, run.try_number) == ("failed", 1)
    assert "Fuse may have queued some or all of the calls" in run.output
    assert len(bulk_uploads(sandbox)) == 1


def test_on_unknown_outcome_retry_sends_again(airflow_env, sandbox, contacts):
    sandbox.inject_fault(status=502, body="html", endpoint="bulk_queue", count=1)
    run = airflow_env.dags_test(
        "e2e_bulk_queue_retry_unknown", connection=sandbox.connection_json(), conf={"csv_path": str(contacts)}
    )
    assert (run.task_state, run.try_number) == ("success", 2), run.output[-3000:]
    assert len(bulk_uploads(sandbox)) == 2
    assert run.xcom == 1000


@pytest.mark.parametrize("body", ["xml", "json"])
def test_fuses_xml_and_json_error_bodies_are_read(airflow_env, sandbox, contacts, body):
    sandbox.inject_fault(status=400, body=body, message="The CSV file is invalid.", endpoint="bulk_queue")
    run = airflow_env.dags_test(
        "e2e_bulk_queue", connection=sandbox.connection_json(), conf={"csv_path": str(contacts)}
    )
    assert run.task_state == "failed"
    assert "Fuse API answered 400: The CSV file is invalid." in run.output


def test_an_xml_success_answer_is_read(airflow_env, sandbox, contacts):
    xml = b'<?xml version="1.0"?>\n<result>\n  <calls_queued>1000</calls_queued>\n</result>'
    sandbox.inject_fault(
        status=200, body="raw", raw=xml, content_type="application/xml", endpoint="bulk_queue"
    )
    run = airflow_env.dags_test(
        "e2e_bulk_queue", connection=sandbox.connection_json(), conf={"csv_path": str(contacts)}
    )
    assert (run.task_state, run.xcom) == ("success", 1000), run.output[-3000:]


def test_a_refused_connection_is_retried_and_then_succeeds(airflow_env, contacts):
    with socket.socket() as probe:  # a free port, where nothing listens yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sandbox = FuseSandbox(port=port)
    connection = json.dumps(
        {
            "conn_type": "fuse",
            "login": sandbox.email,
            "password": sandbox.developer_key,
            "host": f"http://127.0.0.1:{port}/api",
        }
    )
    process = airflow_env.popen(
        "dags", "test", "e2e_bulk_queue", "-c", json.dumps({"csv_path": str(contacts)}), connection=connection
    )
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if "not sent" in line and not started.is_set():
                sandbox.start()  # Fuse "comes back" during the hook's backoff
                started.set()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        process.wait(timeout=240)
        reader.join(timeout=10)
        assert started.is_set(), "".join(lines)[-3000:]
        run = airflow_env.last_run("e2e_bulk_queue", "".join(lines))
        assert run.task_state == "success", run.output[-3000:]
        assert run.xcom == 1000
        assert len(sandbox.uploads()) == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=10)
        process.stdout.close()  # type: ignore[union-attr]
        sandbox.stop()


def test_the_developer_key_and_phone_numbers_are_not_in_task_logs_with_masking_on(
    airflow_env, sandbox, contacts
):
    """`airflow tasks test` runs with secret masking on; Fuse's answer echoes the key and a number."""
    echoed = f"Account {sandbox.email} with key {sandbox.developer_key} may not call {PHONES[7]}."
    sandbox.inject_fault(status=403, message=echoed, endpoint="bulk_queue")
    failed = airflow_env.run(
        "tasks",
        "test",
        "e2e_bulk_queue",
        "queue_calls",
        "-t",
        json.dumps({"csv_path": str(contacts)}),
        connection=sandbox.connection_json(),
        fresh=True,
    )
    succeeded = airflow_env.run(
        "tasks",
        "test",
        "e2e_bulk_queue",
        "queue_calls",
        "-t",
        json.dumps({"csv_path": str(contacts)}),
        connection=sandbox.connection_json(),
        fresh=True,
    )
    logs = failed.stdout + failed.stderr + succeeded.stdout + succeeded.stderr
    for log_file in (airflow_env.home / "logs").rglob("*"):
        if log_file.is_file():
            logs += log_file.read_text(errors="replace")
    assert "Fuse API answered 403" in logs
    assert "1000 rows sent, 1000 calls queued" in logs
    assert sandbox.developer_key not in logs
    assert not [phone for phone in PHONES if phone in logs]
    assert len(bulk_uploads(sandbox)) == 2
