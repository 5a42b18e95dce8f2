"""The deployment as a platform team sees it: Airflow's REST API, and what the test itself sent."""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import requests

from deployment_test.report import ApiBusy, ApiError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from deployment_test.topology import Processes
    from harness import ApiServer

T = TypeVar("T")


@dataclass
class Deployment:
    """The running deployment: its run directory, environment, REST API and processes."""

    run: Path
    env: dict[str, str]
    api: str
    admin_password: str
    worker_tmps: dict[str, Path]
    processes: Processes
    token: str = ""
    api_server: ApiServer | None = None
    api_startup: float = 0.0
    # What the harness itself sent the receiver: tokens and phone numbers that must reach no log.
    harness_tokens: list[str] = field(default_factory=list)
    harness_numbers: dict[str, str] = field(default_factory=dict)

    def wait_for(self, what: str, check: Callable[[], T | None], timeout: float, interval: float = 1.0) -> T:
        """See :meth:`Processes.wait_for`."""
        return self.processes.wait_for(what, check, timeout, interval)

    def login(self) -> None:
        answer = requests.post(
            f"{self.api}/auth/token", json={"username": "admin", "password": self.admin_password}, timeout=30
        )
        answer.raise_for_status()
        self.token = answer.json()["access_token"]

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        answer = requests.request(method, f"{self.api}{path}", headers=headers, timeout=60, **kwargs)
        if answer.status_code >= 500:
            raise ApiBusy(f"{method} {path}: {answer.status_code} {answer.text[:500]}", answer.status_code)
        if answer.status_code >= 400:
            raise ApiError(f"{method} {path}: {answer.status_code} {answer.text[:500]}", answer.status_code)
        return answer.json() if answer.content else None

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        body = {"logical_date": None, "conf": conf or {}}
        return str(self.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}")["state"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        def finished() -> str | None:
            state = self.run_state(dag_id, run_id)
            return state if state in ("success", "failed") else None

        return self.wait_for(f"{dag_id} run {run_id} to finish", finished, timeout, interval=2)

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        answer = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances")
        return {ti["task_id"]: ti for ti in answer["task_instances"]}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}/xcomEntries/{key}"
        return self.call("GET", path, params={"deserialize": "true", "stringify": "false"})["value"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}/logs/{try_number}"
        answer = self.call("GET", path, params={"full_content": "true"})
        return json.dumps(answer)


def quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")
