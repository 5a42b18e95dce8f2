"""Leak scans: no phone number, developer key, signing key, password or results token anywhere
Airflow keeps text (component and task logs, runs' conf, rendered fields, XCom, the event log, the
whole metadata database), and no contact list left on a worker's private ``/tmp``."""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployment_test.api import quote
from deployment_test.examples import phone_numbers
from deployment_test.scenarios import result_tokens
from deployment_test.topology import postgres_bin

if TYPE_CHECKING:
    from deployment_test.api import Deployment
    from deployment_test.report import Report


def needles(sandbox: Any, deployment: Deployment) -> dict[str, str]:
    """What must not appear anywhere: every phone number dialed or posted, the developer key, the auth
    header, the results signing key, the results role's password and every results token (a token in a
    log is a credential in a log)."""
    env = deployment.env
    basic = base64.b64encode(f"{sandbox.email}:{sandbox.developer_key}".encode()).decode()
    tokens = [*result_tokens(sandbox), *deployment.harness_tokens]
    return {
        **phone_numbers(),
        **deployment.harness_numbers,
        "the developer key": sandbox.developer_key,
        "the Authorization header": basic,
        "the results signing key": env["AIRFLOW__FUSE__RESULTS_SIGNING_KEY"],
        "the results role's password": urllib.parse.urlsplit(
            env["AIRFLOW_CONN_FUSE_RESULTS_DEFAULT"]
        ).password
        or "",
        **{f"results token {index + 1}": token for index, token in enumerate(tokens)},
    }


def scan(text: str, where: str, secrets_: dict[str, str]) -> list[str]:
    return [f"{name} in {where}" for name, value in secrets_.items() if value in text]


def check_nothing_leaked(deployment: Deployment, sandbox: Any, report: Report) -> None:
    secrets_ = needles(sandbox, deployment)
    leaks: list[str] = []
    log_files = sorted((deployment.run / "logs").glob("*.log"))
    task_logs = sorted(p for p in (Path(deployment.env["AIRFLOW_HOME"]) / "logs").rglob("*") if p.is_file())
    for path in [*log_files, *task_logs]:
        leaks += scan(path.read_text(errors="replace"), str(path.relative_to(deployment.run)), secrets_)
    report.check(
        not leaks,
        f"no phone number or key in {len(log_files)} component logs and {len(task_logs)} task logs: {leaks}",
    )

    runs = deployment.call("GET", "/api/v2/dags/~/dagRuns", params={"limit": 100})["dag_runs"]
    leaks = scan(json.dumps([run.get("conf") for run in runs]), "a run's conf", secrets_)
    tis = deployment.call("GET", "/api/v2/dags/~/dagRuns/~/taskInstances", params={"limit": 1000})[
        "task_instances"
    ]
    leaks += scan(json.dumps([ti.get("rendered_fields") for ti in tis]), "rendered fields", secrets_)
    entries = deployment.call(
        "GET", "/api/v2/dags/~/dagRuns/~/taskInstances/~/xcomEntries", params={"limit": 1000}
    )
    values = []
    for entry in entries["xcom_entries"]:
        xcom_path = (
            f"/api/v2/dags/{entry['dag_id']}/dagRuns/{quote(entry['run_id'])}/taskInstances/"
            f"{entry['task_id']}/xcomEntries/{quote(entry['key'])}"
        )
        values.append(
            deployment.call("GET", xcom_path, params={"map_index": entry.get("map_index", -1)})["value"]
        )
    leaks += scan(json.dumps(values, default=str), "XCom", secrets_)
    events = deployment.call("GET", "/api/v2/eventLogs", params={"limit": 1000})["event_logs"]
    leaks += scan(json.dumps(events), "the event log", secrets_)
    report.check(
        not leaks,
        f"no phone number or key in {len(runs)} runs' conf, {len(tis)} task instances' rendered fields, "
        f"{len(values)} XCom values, {len(events)} event-log entries: {leaks}",
    )

    # Beyond the API: the whole metadata database, table by table.
    database = deployment.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    port = urllib.parse.urlsplit(database).port
    dump = subprocess.run(
        [
            str(postgres_bin() / "pg_dump"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "airflow",
            "--data-only",
            "airflow",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    leaks, table = [], "?"
    for line in dump.splitlines():
        if line.startswith("COPY "):
            table = line.split()[1]
        # dag_code is the DAG files' source: the bulk example's stand-in export writes its
        # fictional numbers from literals there. Everything else must be free of them.
        if table != "public.dag_code":
            leaks += scan(line, f"table {table}", secrets_)
    report.check(
        not leaks,
        f"no phone number or key in the metadata database ({len(dump) // 1024} KiB, DAG source aside): "
        f"{sorted(set(leaks))}",
    )


def check_worker_disks(deployment: Deployment, report: Report) -> None:
    secrets_ = phone_numbers()
    left: list[str] = []
    for name, private_tmp in deployment.worker_tmps.items():
        for path in private_tmp.rglob("*"):
            if path.is_file() and not path.is_symlink():
                with contextlib.suppress(OSError):
                    text = path.read_bytes()[: 1 << 20].decode("utf-8", errors="replace")
                    if path.suffix == ".csv" or scan(text, "", secrets_):
                        left.append(f"{name}:/tmp/{path.relative_to(private_tmp)}")
    report.check(not left, f"no contact list left on either worker's private /tmp: {left}")
