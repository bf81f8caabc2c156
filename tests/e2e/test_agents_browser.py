"""The Agents page in a real browser (Chromium via Playwright): an admin opens a
capability's circuit by hand from the page, confirms, sees it open in the live figures,
and closes it again; htmx, CSRF and the CSP together. The app runs in-process (uvicorn
in a thread) on this test's database: no orchestrator or agent process is needed to
change a circuit. Skipped where no Chromium is installed."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Page, expect, sync_playwright
from sqlalchemy import Engine

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.store import breakers as breaker_rows
from orchestrator.workflow.breaker import CircuitState
from review_ui.app import create_app
from tests.review_ui.console.conftest import PASSWORD
from tests.review_ui.console.conftest import playbooks as playbooks
from tests.review_ui.console.conftest import settings as settings
from tests.review_ui.console.conftest import users as users
from tests.waiting import wait_for
from waypost.bus.memory import MemoryBus
from waypost.settings import HttpSettings
from waypost.stack.process import free_port

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no Chromium to drive", allow_module_level=True)


@pytest.fixture
def url(
    settings: HttpSettings,
    engine: Engine,
    playbooks: PlaybookRegistry,
    users: object,
) -> Iterator[str]:
    """The app under uvicorn on a free port, in a thread."""
    port = free_port()
    app = create_app(settings, engine=engine, admin=MemoryBus().admin(), playbooks=playbooks)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=20, what="uvicorn to start")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page(url: str, tmp_path: Path) -> Iterator[Page]:
    """An admin's page; fails the test on any console error (CSP violations included)."""
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(base_url=url, viewport={"width": 1400, "height": 900})
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto("/inbox")
        page.fill("#name", "ada")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/inbox")
        yield page
        page.screenshot(path=str(tmp_path / "last.png"), full_page=True)  # kept on failure
        browser.close()
        assert errors == [], errors


def state(engine: Engine) -> CircuitState:
    with engine.connect() as conn:
        found = breaker_rows.read(conn, capabilities=["drafter"]).get("drafter")
    return found.state if found is not None else CircuitState.CLOSED


@pytest.mark.slow  # ~25 s: Chromium, the app in a thread and the users' password hashes
def test_an_admin_opens_a_circuit_from_the_page_and_closes_it_again(
    page: Page, engine: Engine
) -> None:
    page.click("nav >> text=Agents")
    row = page.locator('tr[data-capability="drafter"]')
    expect(row.locator(".circuit")).to_have_text("closed")
    row.locator("a").first.click()
    expect(page.locator("h1")).to_have_text("drafter")

    opening = page.locator("form.breaker-open")
    opening.locator("select[name=duration]").select_option("1h")
    opening.locator("input[name=reason]").fill("the vendor's API is down")
    opening.locator("button").click()
    expect(page.locator(".confirm h3")).to_have_text("Open the circuit of drafter?")
    assert state(engine) is CircuitState.CLOSED  # not before it is confirmed
    page.click("[data-confirm-breaker]")

    expect(page.locator("#breaker .notice")).to_contain_text("Circuit opened by hand")
    expect(page.locator("[data-circuit] .circuit")).to_have_text("open")
    expect(page.locator("[data-circuit]")).to_contain_text("by hand (ada)")
    assert state(engine) is CircuitState.OPEN

    closing = page.locator("form.breaker-close")
    closing.locator("input[name=reason]").fill("the vendor fixed it")
    closing.locator("button").click()
    page.click("[data-confirm-breaker]")

    expect(page.locator("#breaker .notice")).to_contain_text("Circuit closed")
    expect(page.locator("[data-circuit] .circuit")).to_have_text("closed")
    assert state(engine) is CircuitState.CLOSED
    # The list agrees, and the audit log has both changes under ada's name.
    page.goto("/governance/audit?actor=ada")
    expect(page.locator("tr.audit-entry code", has_text="circuit_")).to_have_count(2)
