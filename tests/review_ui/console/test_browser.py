"""The console in a real browser (Chromium via Playwright): htmx, the keyboard, the live
update and the CSP together. Skipped where no Chromium is installed."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Page, expect, sync_playwright
from sqlalchemy import Engine

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.store import escalations as escalation_rows
from review_ui.app import create_app
from tests.review_ui.console.conftest import PASSWORD, Escalations
from tests.waiting import wait_for
from waypost.bus.memory import MemoryBus
from waypost.settings import HttpSettings
from waypost.stack.process import free_port

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no Chromium to drive", allow_module_level=True)


@dataclass
class Server:
    url: str


@pytest.fixture
def server(
    settings: HttpSettings,
    engine: Engine,
    playbooks: PlaybookRegistry,
    users: object,
) -> Iterator[Server]:
    """The app under uvicorn on a free port, in a thread."""
    port = free_port()
    app = create_app(settings, engine=engine, admin=MemoryBus().admin(), playbooks=playbooks)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    wait_for(lambda: running.started, timeout=20, what="uvicorn to start")
    yield Server(f"http://127.0.0.1:{port}")
    running.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page(server: Server, tmp_path: Path) -> Iterator[Page]:
    """A logged-in reviewer's page; fails the test on any console error (CSP included)."""
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(base_url=server.url, viewport={"width": 1400, "height": 900})
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        # The browser logs every 4xx; a refused decision (409/422) is an answer, not a bug.
        expected = ("status of 409", "status of 422")
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto("/inbox")
        page.fill("#name", "rita")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/inbox")
        yield page
        page.screenshot(path=str(tmp_path / "last.png"), full_page=True)  # kept on failure
        browser.close()
        assert [e for e in errors if not any(x in e for x in expected)] == [], errors


@pytest.mark.slow  # several seconds of broker or browser time: make test-slow
def test_keyboard_htmx_and_live_updates(
    page: Page, escalations: Escalations, engine: Engine
) -> None:
    first = escalations.aged(30, "First in line")
    escalations.aged(20, "Second in line")
    page.reload()

    rows = page.locator("tr[data-row]")
    expect(rows).to_have_count(2)
    page.keyboard.press("j")
    expect(rows.nth(0)).to_have_attribute("aria-current", "true")
    page.keyboard.press("j")
    page.keyboard.press("k")
    page.keyboard.press("x")
    expect(rows.nth(0).locator("input[name=selected]")).to_be_checked()

    # A new escalation shows up as a notice; the list, selection and focus stay put.
    escalations.open("Brand new")
    expect(page.locator("#updates")).to_contain_text("1 new escalation", timeout=15_000)
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_have_attribute("aria-current", "true")
    expect(rows.nth(0).locator("input[name=selected]")).to_be_checked()

    page.keyboard.press("?")
    expect(page.locator("#help")).to_be_visible()
    page.keyboard.press("?")
    expect(page.locator("#help")).to_be_hidden()

    page.keyboard.press("o")  # htmx swaps the page in and pushes its URL
    expect(page.locator("h1")).to_have_text("First in line")
    expect(page).to_have_url(re.compile(f"/escalations/{first}$"))

    page.keyboard.press("r")
    expect(page.locator("#reject-reason")).to_be_focused()
    page.keyboard.type("a")  # typing in a field is not a shortcut
    expect(page.locator("#reject-reason")).to_have_value("a")
    page.keyboard.press("Escape")
    page.keyboard.press("a")
    expect(page.locator(".notice")).to_contain_text("Approved")
    with engine.connect() as conn:
        row = escalation_rows.rows_by_id(conn, ids=[first])[first]
    assert row.status == "decided"


def test_an_edit_error_keeps_the_text(page: Page, escalations: Escalations) -> None:
    escalation_id = escalations.open("Edit me")
    page.goto(f"/escalations/{escalation_id}")

    page.keyboard.press("e")
    expect(page.locator("#edit-output")).to_be_focused()
    page.fill("#edit-output", '{"text": ')
    page.click("#edit-form button[type=submit]")

    expect(page.locator("#edit-error")).to_contain_text("not valid JSON")
    expect(page.locator("#edit-output")).to_have_value('{"text": ')
