"""What a person sees: the Required Actions page of a waiting approval, in headless Chromium.

The browser is Debian's ``chromium`` driven by Playwright (no browser download). It is logged in to
the live api-server as ``admin`` the way the simple auth manager's login does it (the ``_token``
cookie holding a token from ``POST /auth/token``), opens the task's Required Actions page, waits for
the question to render, and saves a screenshot under the test's temporary folder; with
``FUSE_UPDATE_SCREENSHOTS=1`` it also refreshes docs/images/required-actions.png, which the docs show.

Without chromium or Playwright the test skips, saying which is missing; CI sets
``FUSE_TEST_REQUIRE_CHROMIUM=1`` (and installs chromium), where a missing browser fails it instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.e2e.test_decisions import APPROVAL, destinations, end_run, numbers_shown, write_contacts

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("FUSE_TEST_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOT = ROOT / "docs" / "images" / "required-actions.png"


@pytest.fixture
def contacts(tmp_path: Path) -> Path:
    return write_contacts(tmp_path / "contacts.csv")


def browser_or_skip() -> None:
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Playwright is not installed (pip install playwright)")
    if missing:
        if os.environ.get("FUSE_TEST_REQUIRE_CHROMIUM", "") not in ("", "0"):
            pytest.fail("FUSE_TEST_REQUIRE_CHROMIUM is set, but " + "; ".join(missing))
        pytest.skip("; ".join(missing))


def test_the_required_actions_page_shows_the_question_and_no_phone_number(
    live_airflow, live_sandbox, contacts, tmp_path
):
    browser_or_skip()
    from playwright.sync_api import sync_playwright

    api = live_airflow.api
    run_id = api.trigger("e2e_approval", {"csv_path": str(contacts)})
    try:
        question = api.wait_for_question(
            "e2e_approval", "queue_calls", run_id=run_id, subject_starts=APPROVAL
        )
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
            try:
                page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                page.context.add_cookies([{"name": "_token", "value": api.token, "url": api.base_url}])
                page.goto(api.required_actions_url(question), timeout=60_000)
                page.get_by_text(question["subject"], exact=False).first.wait_for(timeout=60_000)
                page.get_by_text("202", exact=False).first.wait_for(
                    timeout=30_000
                )  # the body: its deployment
                page.wait_for_load_state("networkidle", timeout=30_000)
                shot = tmp_path / "required-actions.png"
                page.screenshot(path=str(shot), full_page=True)
                text = page.inner_text("body")
            finally:
                browser.close()
    finally:
        end_run(live_airflow, "e2e_approval", run_id)
    if os.environ.get("FUSE_UPDATE_SCREENSHOTS", "") not in ("", "0"):
        shutil.copy(shot, SCREENSHOT)
    assert question["subject"] in text
    assert "Approve" in text
    assert "Reject" in text
    assert numbers_shown(text, destinations(contacts)) == []
    assert live_sandbox.requests() == []
