"""What a person sees: the campaign view, opened from the task in Airflow's UI, in headless Chromium.

The live Airflow (scheduler, triggerer, api-server: ``live_airflow``) runs the deferrable results DAG:
the bulk task queues three calls with the sandbox (which is then reset, so it never dials them nor
calls back), the results sensor defers, and the test posts the calls' outcomes to the api-server's
results receiver itself, with the tokens the run signed: two first (the campaign in progress, one
outcome missing), then the last (finished: the sensor ends). Each time the browser, logged in as
``admin``, opens the task instance's page and follows its "Fuse campaign" link; the numbers on the
page are checked against the results table, read directly, and the page is screenshot
(docs/images/campaign-view-running.png and campaign-view-finished.png, refreshed with
``FUSE_UPDATE_SCREENSHOTS=1``). The user ``outsider``, whom the auth manager refuses this DAG, opens
the same address and gets no number. No destination's digits are anywhere on any page.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from airflow_provider_fuse.links import view_path
from harness import wait_until
from tests.e2e.test_decisions import end_run, numbers_shown
from tests.e2e.test_required_actions_page import CHROMIUM, browser_or_skip
from tests.e2e.test_results_receiver import details

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "docs" / "images"
DAG_ID = "e2e_campaign_results_deferrable"
#: Two destinations that answer and one that never does (the sandbox's rule: a number ending in 9).
DESTINATIONS = ("16175550142", "16175550187", "16175550169")


@pytest.fixture
def contacts(tmp_path: Path) -> Path:
    path = tmp_path / "contacts.csv"
    path.write_text(
        "destination,first_name\n" + "".join(f"{number},Grace\n" for number in DESTINATIONS), encoding="utf-8"
    )
    path.chmod(0o644)
    return path


def table_numbers(live_airflow: Any, run_id: str) -> dict[str, int]:
    """The results table's outcomes of the run's bulk task, by status (read directly)."""
    with sqlite3.connect(live_airflow.home / "fuse_results.db", timeout=10) as db:
        rows = db.execute(
            "SELECT status, COUNT(*) FROM fuse_call_results WHERE dag_id = ? AND run_id = ? "
            "AND task_id = 'queue_calls' GROUP BY status",
            (DAG_ID, run_id),
        ).fetchall()
    return dict(rows)


def post_outcome(live_airflow: Any, call: Any, status: str) -> None:
    """The call's outcome, as Fuse posts it, to the api-server's receiver at the call's own token."""
    token = call.result_url.rpartition("/fuse/results/")[2]
    body = {"call_details": {**details(call.phone_number, status), "call_id": call.call_id}}
    answer = httpx.post(f"{live_airflow.server.url}/fuse/results/{token}", json=body, timeout=30)
    assert answer.status_code == 200, answer.text


def view_numbers(view: Any) -> dict[str, Any]:
    """What the view shows (``view``: its page or its frame in the tab): every count by its element's
    id, the arrivals' bars and their total, each part's row, and whether the page reloads itself."""
    counts = view.locator("[id][data-count]").evaluate_all(
        "found => Object.fromEntries(found.map(e => [e.id, Number(e.dataset.count)]))"
    )
    bars = view.locator("#fuse-arrivals rect.bar").evaluate_all(
        "found => found.map(e => Number(e.dataset.count))"
    )
    parts = view.locator("#fuse-parts tbody tr[data-part]").evaluate_all(
        "found => found.map(e => ({...e.dataset}))"
    )
    return {
        **counts,
        "bars": sum(bars),
        "total": int(view.locator("#fuse-arrivals").get_attribute("data-total")),
        "window": view.locator("#fuse-window").count(),
        "parts": parts,
        "refreshing": view.locator("body").get_attribute("data-refreshing"),
    }


def expected_numbers(counted: dict[str, int], *, refreshing: bool) -> dict[str, Any]:
    """What the view must show for the results table's ``counted`` outcomes of the three calls."""
    received = sum(counted.values())
    return {
        "fuse-rows": 3,
        "fuse-calls-queued": 3,
        "fuse-received": received,
        "fuse-missing": 3 - received,
        "fuse-outcome-completed": counted.get("completed", 0),
        "fuse-outcome-failed": counted.get("failed", 0),
        "fuse-outcome-canceled": 0,
        "fuse-outcome-rejected": 0,
        "bars": received,
        "total": received,
        "window": 1,
        "parts": [
            {
                "mapIndex": "-1",
                "part": "0",
                "rows": "3",
                "received": str(received),
                "missing": str(3 - received),
            }
        ],
        "refreshing": str(refreshing).lower(),
    }


def open_from_the_task(page: Any, base_url: str, run_id: str) -> tuple[Any, str]:
    """Open the bulk task's instance in the UI, follow its "Fuse campaign" link (the Details tab's
    extra links), and come back to its "Fuse" tab: the tab's frame, and the text of every page seen."""
    task = f"{base_url}/dags/{DAG_ID}/runs/{quote(run_id, safe='')}/tasks/queue_calls"
    page.goto(task, timeout=60_000)
    page.locator("a[title='Details']").click(timeout=60_000)
    link = page.get_by_role("link", name="Fuse campaign")
    link.wait_for(timeout=60_000)
    assert link.get_attribute("href").endswith(view_path(DAG_ID, run_id, "queue_calls"))
    if link.get_attribute("target") == "_blank":  # Airflow 3.1 opens every extra link in a new tab
        with page.context.expect_page(timeout=60_000) as opened:
            link.click()
        view = opened.value
    else:  # 3.3 opens a link to its own origin in place
        link.click()
        view = page
    view.wait_for_url(f"**{view_path(DAG_ID, run_id, 'queue_calls')}", timeout=60_000)
    view.locator("#fuse-received").wait_for(timeout=60_000)
    linked = view_numbers(view)
    text = view.content() + view.inner_text("body")
    if view is not page:
        view.close()
    page.goto(task, timeout=60_000)
    page.locator("a[title='Fuse']").click(timeout=60_000)
    frame = page.frame_locator("iframe[title='Fuse']")
    frame.locator("#fuse-received").wait_for(timeout=60_000)
    assert view_numbers(frame) == linked  # the tab shows what the link opens
    text += page.content() + page.inner_text("body") + frame.locator("html").inner_html()
    return frame, text


def screenshot(page: Any, tmp_path: Path, name: str) -> None:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("FUSE_UPDATE_SCREENSHOTS", "") not in ("", "0"):
        shutil.copy(shot, IMAGES / name)


def test_the_campaign_view_opened_from_the_task_shows_the_tables_numbers_to_those_allowed(
    live_airflow, live_sandbox, contacts, tmp_path
):
    browser_or_skip()
    from playwright.sync_api import sync_playwright

    api, alive = live_airflow.api, live_airflow.services.check_alive
    run_id = api.trigger(DAG_ID, {"csv_path": str(contacts)})
    finished = False
    try:
        calls = wait_until(
            "the bulk task's three calls",
            lambda: (found := live_sandbox.calls()) and len(found) == 3 and found,
            180,
            alive=alive,
        )
        live_sandbox.reset()  # it would dial them and post their outcomes itself: the test does
        wait_until(
            "the results sensor to defer",
            lambda: api.task_instances(DAG_ID, run_id)["wait_for_outcomes"]["state"] == "deferred",
            120,
            alive=alive,
        )
        answering = [call for call in calls if not call.phone_number.endswith("9")]
        (never,) = [call for call in calls if call.phone_number.endswith("9")]
        for call in answering:
            post_outcome(live_airflow, call, "completed")
        passwords = json.loads((live_airflow.home / "passwords.json").read_text())
        outsider = httpx.post(
            f"{api.base_url}/auth/token",
            json={"username": "outsider", "password": passwords["outsider"]},
            timeout=30,
        ).json()["access_token"]

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
            try:
                admin = browser.new_context(viewport={"width": 1280, "height": 1080})
                admin.add_cookies([{"name": "_token", "value": api.token, "url": api.base_url}])
                page = admin.new_page()

                frame, running_text = open_from_the_task(page, api.base_url, run_id)
                running = table_numbers(live_airflow, run_id)
                assert running == {"completed": 2}
                assert view_numbers(frame) == expected_numbers(running, refreshing=True)
                screenshot(page, tmp_path, "campaign-view-running.png")

                post_outcome(live_airflow, never, "failed")
                assert api.wait_for_run(DAG_ID, run_id, 120, alive=alive) == "success"
                finished = True
                frame, finished_text = open_from_the_task(page, api.base_url, run_id)
                done = table_numbers(live_airflow, run_id)
                assert done == {"completed": 2, "failed": 1}
                assert view_numbers(frame) == expected_numbers(done, refreshing=False)
                screenshot(page, tmp_path, "campaign-view-finished.png")

                refused = browser.new_context()
                refused.add_cookies([{"name": "_token", "value": outsider, "url": api.base_url}])
                other = refused.new_page()
                answer = other.goto(api.base_url + view_path(DAG_ID, run_id, "queue_calls"), timeout=60_000)
                assert answer is not None
                assert answer.status == 403
                assert other.locator("[data-count]").count() == 0
                refused_text = other.content()
            finally:
                browser.close()
    finally:
        if not finished:
            end_run(live_airflow, DAG_ID, run_id)
    for text in (running_text, finished_text, refused_text):
        assert numbers_shown(text, DESTINATIONS) == []
    assert "completed" not in refused_text
