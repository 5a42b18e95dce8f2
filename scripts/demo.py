"""`make demo`: run the example DAG end to end against a local Fuse sandbox — no account, no real call.

Starts the sandbox on a free loopback port, points ``fuse_default`` at it, migrates a project-local
AIRFLOW_HOME (SQLite, under .demo/), points the example's export base (the Airflow Variable
``fuse_example_export_base``) at .demo/exports, runs ``airflow dags test example_fuse_bulk_queue``,
prints the calls queued (from XCom), what the sandbox received and whether the export was removed,
and stops the sandbox.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

from airflow_provider_fuse.sandbox import FuseSandbox

ROOT = Path(__file__).resolve().parents[1]
# One home per Airflow version: a database migrated by a newer Airflow cannot be used by an older one.
AIRFLOW_HOME = ROOT / ".demo" / f"airflow-home-{version('apache-airflow')}"
# Where the example writes its contact CSV for the upload task, and its teardown deletes it.
EXPORT_BASE = ROOT / ".demo" / "exports"
DAG_ID = "example_fuse_bulk_queue"
AIRFLOW = str(Path(sys.executable).parent / "airflow")


def airflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run an ``airflow`` command, showing its output only when it fails."""
    result = subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stdout.write(result.stdout[-6000:])
        sys.stderr.write(result.stderr[-6000:])
    return result


def latest_run(database: Path) -> tuple[str, int | None]:
    """The state of the newest run of the example DAG, and the ``calls_queued`` its XCom holds."""
    with sqlite3.connect(database) as db:
        run_id, state = db.execute(
            "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (DAG_ID,)
        ).fetchone()
        row = db.execute(
            "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = 'queue_calls' "
            "AND key = 'return_value'",
            (DAG_ID, run_id),
        ).fetchone()
    value = row[0] if row else None
    if isinstance(value, (str, bytes)):  # the JSON column comes back parsed or as text, by version
        value = json.loads(value)
    return state, value if isinstance(value, int) else None


def main() -> int:
    started = time.monotonic()
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    EXPORT_BASE.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_VAR_FUSE_EXAMPLE_EXPORT_BASE": EXPORT_BASE.as_uri(),
    }
    with FuseSandbox(time_scale=60.0) as sandbox:
        env["AIRFLOW_CONN_FUSE_DEFAULT"] = sandbox.connection_json()
        print(f"Fuse sandbox listening on {sandbox.url} (account {sandbox.email})")
        print(f"Migrating the demo's Airflow database in {AIRFLOW_HOME} ...")
        if airflow(env, "db", "migrate").returncode != 0:
            print("airflow db migrate failed")
            return 1
        print(f"Running `airflow dags test {DAG_ID}` ...")
        airflow(env, "dags", "test", DAG_ID)
        state, calls_queued = latest_run(AIRFLOW_HOME / "airflow.db")
        uploads = sandbox.uploads()

    print()
    print("What the Fuse sandbox received:")
    for upload in uploads:
        header = upload.csv.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip()
        fields = ", ".join(f"{name}={value}" for name, value in upload.fields.items()) or "(none)"
        print(
            f"  POST bulk_queue application {upload.application_id} / deployment {upload.deployment_id}: "
            f"{upload.filename} ({len(upload.csv)} bytes, {upload.rows} rows, columns: {header}); "
            f"fields: {fields}; answered {upload.status_code}, calls_queued={upload.calls_queued}"
        )
    if not uploads:
        print("  nothing")
    left_behind = sorted(path for path in EXPORT_BASE.rglob("*") if path.is_file())
    print()
    print(f"Contact exports left in {EXPORT_BASE}: {len(left_behind)}")
    for path in left_behind:
        print(f"  {path.relative_to(EXPORT_BASE)}")
    print()
    elapsed = time.monotonic() - started
    recorded = uploads[-1].calls_queued if uploads else None
    if state == "success" and calls_queued is not None and calls_queued == recorded and not left_behind:
        print(
            f"SUCCESS: the DAG run succeeded; XCom calls_queued = {calls_queued}; the export was removed "
            f"({elapsed:.0f} s)"
        )
        return 0
    print(
        f"FAILED: DAG run state {state!r}, XCom calls_queued = {calls_queued!r}, "
        f"{len(left_behind)} export(s) left behind ({elapsed:.0f} s)"
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
