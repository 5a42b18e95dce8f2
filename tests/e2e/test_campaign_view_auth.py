"""End to end: the campaign view on a real ``airflow api-server``, for those Airflow lets read the DAG.

A real campaign first (the bulk task queues three calls with the sandbox, a stand-in stores their
outcomes as the receiver would, the deferred sensor counts them: tests/e2e/test_campaign_results.py),
then the api-server with the simple auth manager and four callers: nobody (no token), a user with no
role, a viewer refused this very DAG by the deployment's auth manager (a subclass of the simple one
that keeps one DAG from one user, as a platform's would), and a viewer. Only the last sees a number,
and its numbers are the table's.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import textwrap
from urllib.parse import quote

import httpx
import pytest

from airflow_provider_fuse.links import view_path
from tests.e2e.api_server import ApiServer
from tests.e2e.test_campaign_results import (  # noqa: F401 (fixtures)
    ANSWERS,
    NEVER_ANSWERS,
    contacts,
    results,
    stand_in_receiver,
    still_sandbox,
)

DAG_ID = "e2e_campaign_results_deferrable"

#: The deployment's auth manager: the simple one, but the user "outsider" may not read DAG_ID.
AUTH_MANAGER = textwrap.dedent(
    f"""
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager


    class OneDagRefused(SimpleAuthManager):
        def is_authorized_dag(self, *, method, user, access_entity=None, details=None):
            if user.get_name() == "outsider" and (details is None or details.id == {DAG_ID!r}):
                return False
            return super().is_authorized_dag(
                method=method, user=user, access_entity=access_entity, details=details
            )
    """
)


@pytest.fixture
def campaign(airflow_env, still_sandbox, results, contacts):  # noqa: F811 (fixtures)
    """A finished campaign of three calls: two completed, one failed. Yields its run id."""
    sandbox, key = still_sandbox, results["AIRFLOW__FUSE__RESULTS_SIGNING_KEY"]
    with stand_in_receiver(sandbox, key):
        run = airflow_env.dags_test(
            DAG_ID, connection=sandbox.connection_json(), conf={"csv_path": str(contacts)}, env=results
        )
    waited = airflow_env.last_run(DAG_ID, run.output, task_id="wait_for_outcomes")
    assert (run.dag_state, waited.task_state) == ("success", "success"), run.output[-4000:]
    return waited.run_id


@pytest.fixture
def server(airflow_env, results, tmp_path):  # noqa: F811 (fixtures)
    """The api-server with the provider's plugin, the results connection and four users."""
    passwords = {name: secrets.token_urlsafe(16) for name in ("viewer", "nobody", "outsider")}
    (tmp_path / "passwords.json").write_text(json.dumps(passwords))
    (tmp_path / "one_dag_refused.py").write_text(AUTH_MANAGER)
    env = {
        **airflow_env.env,
        **results,
        "PYTHONPATH": str(tmp_path),
        "AIRFLOW__CORE__AUTH_MANAGER": "one_dag_refused.OneDagRefused",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "viewer:viewer,nobody:,outsider:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(tmp_path / "passwords.json"),
    }
    running = ApiServer(env)
    try:
        running.start()
        tokens = {
            name: httpx.post(
                f"{running.url}/auth/token", json={"username": name, "password": password}, timeout=30
            ).json()["access_token"]
            for name, password in passwords.items()
        }
        yield running, tokens
    finally:
        running.close()  # stops it and removes its captured output


def ask(url: str, token: str | None = None, *, cookie: bool = False) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token and not cookie else {}
    cookies = {"_token": token} if token and cookie else {}
    return httpx.get(url, headers=headers, cookies=cookies, timeout=60)


def table_counts(results: dict[str, str], run_id: str) -> dict[str, int]:  # noqa: F811
    path = results["AIRFLOW_CONN_FUSE_RESULTS_DEFAULT"].removeprefix("sqlite://")
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT status, COUNT(*) FROM fuse_call_results WHERE dag_id = ? AND run_id = ? "
            "AND task_id = 'queue_calls' GROUP BY status",
            (DAG_ID, run_id),
        ).fetchall()
    return dict(rows)


def test_only_a_user_who_may_read_the_dag_sees_the_campaign(campaign, server, results):  # noqa: F811
    running, tokens = server
    run_id = campaign
    page = running.url + view_path(DAG_ID, run_id, "queue_calls")
    numbers = page + "/view.json"
    personal = (*ANSWERS, NEVER_ANSWERS, "Ada")

    for url in (page, numbers):
        assert ask(url).status_code == 401  # nobody: no token, no cookie
        assert ask(url, "not-a-token").status_code in (401, 403)
        for refused in ("nobody", "outsider"):
            answer = ask(url, tokens[refused])
            assert answer.status_code == 403, (refused, answer.text)
            assert "completed" not in answer.text
            assert "calls_queued" not in answer.text

    # The outsider may read another DAG: the view asks about the DAG in the path, not any DAG.
    other = running.url + view_path("e2e_campaign_results_deadline", run_id, "queue_calls")
    assert ask(other, tokens["outsider"]).status_code == 404  # allowed; that DAG has no such run

    shown = ask(numbers, tokens["viewer"])
    assert shown.status_code == 200, shown.text
    counted = table_counts(results, run_id)
    assert counted == {"completed": 2, "failed": 1}
    view = shown.json()
    assert view["calls_queued"] == 3
    assert view["received"] == sum(counted.values())
    assert {name: view["by_outcome"][name] for name in counted} == counted
    assert view["missing"] == 0
    (part,) = view["parts"]
    assert (part["map_index"], part["part"], part["received"], part["missing"]) == (-1, 0, 3, 0)
    # The rows sent: from the duplicate guard's ledger where Airflow keeps one (3.3+, with the calls
    # Fuse queued for the part), else from the bulk task's record (a list sent whole).
    assert (part["rows"], part["calls_queued"]) == (3, 3)
    assert sum(view["arrivals"]["counts"]) == 3

    html = ask(page, tokens["viewer"], cookie=True)  # the UI's cookie, as the tab's frame sends it
    assert html.status_code == 200
    assert "id='fuse-received' data-count='3'" in html.text
    assert "id='fuse-outcome-completed' data-count='2'" in html.text
    for text in (html.text, shown.text):
        assert not any(value in text for value in personal)

    # The sensor's task shows the campaign of the bulk task it waits for.
    sensor = ask(
        running.url + view_path(DAG_ID, run_id, "wait_for_outcomes") + "/view.json", tokens["viewer"]
    )
    assert sensor.json()["received"] == 3
    assert sensor.json()["task_id"] == "queue_calls"


def test_the_task_links_and_the_tab_open_the_view(campaign, server):
    running, tokens = server
    run_id = campaign
    viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
    base = f"{running.url}/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances"
    for task_id in ("queue_calls", "wait_for_outcomes"):
        links = httpx.get(f"{base}/{task_id}/links", headers=viewer, timeout=60)
        assert links.status_code == 200, links.text
        link = links.json()["extra_links"]["Fuse campaign"]
        assert link.endswith(view_path(DAG_ID, run_id, "queue_calls"))
        opened = ask(running.url + link[link.index("/fuse/") :], tokens["viewer"])
        assert opened.status_code == 200
        assert "id='fuse-calls-queued' data-count='3'" in opened.text

    plugins = httpx.get(f"{running.url}/api/v2/plugins", headers=viewer, timeout=60).json()["plugins"]
    (ours,) = [plugin for plugin in plugins if plugin["name"] == "fuse_results"]
    (tab,) = ours["external_views"]
    assert tab["destination"] == "task_instance"
    href = tab["href"].replace("{DAG_ID}", DAG_ID).replace("{RUN_ID}", run_id)
    href = href.replace("{TASK_ID}", "queue_calls")  # {MAP_INDEX} left, as on a task not mapped
    assert ask(running.url + href, tokens["viewer"], cookie=True).status_code == 200
