"""What the deployment test found: each check that passed, each DAG run and where its tasks ran, and
what it measured; printed as a table at the end (and with the first failed check)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deployment_test.api import Deployment


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Failed(Exception):
    """A check of the deployment failed."""


class ApiError(Failed):
    """Airflow's REST API answered with an error status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class ApiBusy(ApiError):
    """Airflow's REST API answered 5xx: still starting, or busy; a wait asks again."""


@dataclass
class RunRow:
    """One DAG run, for the table: which worker ran which task, and how it ended."""

    scenario: str
    dag_id: str
    run_id: str
    state: str
    tasks: dict[str, tuple[str, str]]  # task_id -> (state, host)


@dataclass
class Report:
    """The checks that passed (a failed one raises :class:`Failed`), the runs, the measurements."""

    rows: list[RunRow] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    measured: list[str] = field(default_factory=list)

    def check(self, condition: bool, what: str) -> None:
        if not condition:
            raise Failed(what)
        self.checks.append(what)
        say(f"ok: {what}")

    def record(self, deployment: Deployment, scenario: str, dag_id: str, run_id: str) -> RunRow:
        tis = deployment.task_instances(dag_id, run_id)
        row = RunRow(
            scenario,
            dag_id,
            run_id,
            deployment.run_state(dag_id, run_id),
            {task: (ti["state"] or "none", ti.get("hostname") or "-") for task, ti in tis.items()},
        )
        self.rows.append(row)
        return row


def print_table(report: Report, started: float) -> None:
    """The runs, the checks that passed, what was measured, and the wall time since ``started``."""
    print()
    print(f"{'scenario':<24} {'dag':<28} {'run':<44} {'state':<8} tasks (state @ worker)")
    for row in report.rows:
        tasks = ", ".join(f"{task}={state}@{host}" for task, (state, host) in sorted(row.tasks.items()))
        print(f"{row.scenario:<24} {row.dag_id:<28} {row.run_id:<44} {row.state:<8} {tasks}")
    print()
    print(f"{len(report.checks)} checks passed:")
    for check in report.checks:
        print(f"  - {check}")
    if report.measured:
        print("\nmeasured:")
        for line in report.measured:
            print(f"  - {line}")
    print(f"\nwall time of the deployment test: {time.monotonic() - started:.0f} s")
