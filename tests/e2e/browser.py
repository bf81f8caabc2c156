"""Helpers of the console's real-browser end-to-end tests (test_console_browser.py,
test_console_xss.py and test_dlq_browser.py): one set of `waypost` processes per test
module, Chromium driven by Playwright, a reviewer who logs in through the form, and a
watch on everything the page does that it should not (dialogs, requests, console
errors, CSP violations)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    Request,
    Route,
    sync_playwright,
)
from sqlalchemy import text

from orchestrator.workflow.state import EscalationState, TaskStatus, WorkflowState
from review_ui.auth import store as auth_store
from review_ui.auth.roles import Role
from tests.e2e.conftest import PLAYBOOKS, ROOT, Platform
from tests.waiting import wait_for
from waypost.bus.kafka import KafkaBus
from waypost.db import make_engine
from waypost.migrate import upgrade
from waypost.stack.process import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
E2E_PLAYBOOKS = ROOT / "tests" / "e2e" / "playbooks"
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "correct horse battery staple"
GOAL_TYPE = "test.console"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def skip_without_chromium() -> None:
    """Skip the calling test module where the Debian Chromium is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"no Chromium at {CHROMIUM} to drive (.ci/run installs the Debian package)",
            allow_module_level=True,
        )


# --- the processes ------------------------------------------------------------------------


@contextmanager
def module_platform(broker: Any, postgres: Any, logs: Path) -> Iterator[Platform]:
    """A Platform like the `platform` fixture's, but for a whole module: its own topic
    namespace and freshly migrated schema (dropped afterwards), processes stopped by PID."""
    namespace = f"t{uuid.uuid4().hex[:10]}"
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = make_engine(postgres.url(), schema=schema)
    upgrade(engine, schema)
    running = Platform(broker.bootstrap, postgres.url(), schema, namespace, engine, logs)
    # The topics exist before any process publishes (the console's decisions too, when
    # no orchestrator runs to provision them).
    settings = running.settings()
    KafkaBus(broker.bootstrap, settings).admin().ensure_topics(
        running.topics.specs(["echo"], settings)
    )
    try:
        yield running
    finally:
        running.stop_all()
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


def start_console(
    platform: Platform, *, workers: bool, playbooks: Sequence[Path] = (PLAYBOOKS, E2E_PLAYBOOKS)
) -> str:
    """`waypost serve` (and, with ``workers``, the orchestrator and the echo agent) with
    the console playbooks (or ``playbooks``); returns the console's base URL once it is
    ready."""
    port = free_port()
    platform.env_overrides["WAYPOST_PLAYBOOK_DIRS"] = ",".join(str(p) for p in playbooks)
    platform.env_overrides["WAYPOST_HTTP_PORT"] = str(port)
    if workers:
        platform.start_orchestrator()
        platform.start_agents()
    platform.start("http", "serve")
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(ready, timeout=60, interval=0.2, what="the console to be ready")
    return base


def add_reviewer(platform: Platform, name: str) -> str:
    """A console user with the reviewer role (password PASSWORD)."""
    with platform.engine.begin() as conn:
        auth_store.add_user(conn, name=name, password=PASSWORD, role=Role.REVIEWER)
    return name


def print_logs_if_failed(request: pytest.FixtureRequest, platform: Platform) -> None:
    """Show the processes' logs under a failed test (the module shares them)."""
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for log in sorted(platform.logs.glob("*.log")):
            print(f"\n===== {log.name} =====\n{log.read_text(errors='replace')[-6000:]}")


# --- the workflows ------------------------------------------------------------------------


def pending_escalation(
    platform: Platform, workflow_id: str, timeout: float = 60
) -> EscalationState:
    """The workflow's pending escalation, once its step waits for a reviewer."""

    def probe() -> EscalationState | None:
        state = platform.workflow(workflow_id)
        if state is None or state.tasks["drafted"].status is not TaskStatus.AWAITING_REVIEW:
            return None
        pending = [e for e in state.escalations.values() if e.status.value == "pending"]
        return pending[0] if pending else None

    return wait_for(probe, timeout=timeout, interval=0.1, what=f"an escalation of {workflow_id}")


def finished(platform: Platform, workflow_id: str, timeout: float = 60) -> WorkflowState:
    """The workflow once it completed or failed."""

    def probe() -> WorkflowState | None:
        state = platform.workflow(workflow_id)
        return state if state is not None and state.status.finished else None

    return wait_for(probe, timeout=timeout, interval=0.1, what=f"workflow {workflow_id} to end")


# --- the browser --------------------------------------------------------------------------


@contextmanager
def chromium() -> Iterator[Browser]:
    """The system's Chromium (never a downloaded one), headless, driven by Playwright."""
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Session:
    """A browser page on the console, and what it did."""

    context: BrowserContext
    page: Page
    watch: Watch


@contextmanager
def browser_session(
    browser: Browser,
    base: str,
    platform: Platform,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    *,
    login: str | None = None,
) -> Iterator[Session]:
    """A fresh browser context on the console, watched, logged in through the form as
    ``login`` if given. Afterwards the last page is kept as a screenshot in ``tmp_path``
    and, if the test failed, the processes' logs are printed."""
    context = browser.new_context(base_url=base, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(15_000)
    page = context.new_page()
    watch = Watch(base)
    watch.attach(context, page)
    watch.allow_post("/login")
    if login is not None:
        log_in(page, login)
    yield Session(context, page, watch)
    page.screenshot(path=str(tmp_path / "last.png"), full_page=True, caret="initial")
    context.close()
    print_logs_if_failed(request, platform)


def log_in(page: Page, name: str, password: str = PASSWORD) -> None:
    """Log in through the form the console redirects to, landing on the inbox."""
    page.goto("/inbox")
    page.wait_for_url(re.compile(r"/login(\?.*)?$"))
    page.fill("#name", name)
    page.fill("#password", password)
    page.click(".login button[type=submit]")
    page.wait_for_url(re.compile(r"/inbox$"))


def assert_png(path: Path) -> None:
    """A non-empty PNG file."""
    assert path.is_file(), f"no screenshot at {path}"
    data = path.read_bytes()
    assert len(data) > len(PNG_SIGNATURE), f"{path} is empty"
    assert data.startswith(PNG_SIGNATURE), f"{path} is not a PNG"


@dataclass
class Watch:
    """Everything a page did that a reviewer did not ask for: dialogs, requests that are
    not its own pages and assets, console errors, CSP violations and uncaught errors.

    Requests to other origins are recorded and aborted (nothing leaves the machine).
    A test that posts a form on purpose allows it first with ``allow_post``; a refused
    form (422) logs a console error, allowed with ``allow_status``."""

    origin: str
    known_paths: set[str] = field(default_factory=set)
    allowed_posts: set[str] = field(default_factory=set)
    allowed_statuses: set[int] = field(default_factory=set)
    dialogs: list[str] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    console: list[tuple[str, str]] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)

    def attach(self, context: BrowserContext, page: Page) -> None:
        """Watch this page (and abort anything it asks of another origin)."""
        page.on("dialog", self._dialog)
        page.on("request", self._request)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        context.route("**/*", self._route)
        # The browser's own report of a blocked inline script, style, eval or load.
        page.expose_function("__waypostCspViolation", self._csp_violation)
        page.add_init_script(
            "document.addEventListener('securitypolicyviolation', function (e) {"
            " window.__waypostCspViolation(e.violatedDirective + ' blocked ' + e.blockedURI"
            " + ' in ' + e.sourceFile + ':' + e.lineNumber + ' sample ' + e.sample); });"
        )

    def allow_post(self, path: str) -> None:
        """A POST to ``path`` is the test's own doing."""
        self.allowed_posts.add(path)

    def allow_status(self, status: int) -> None:
        """The console error the browser logs for a response with this status is expected."""
        self.allowed_statuses.add(status)

    def _csp_violation(self, report: str) -> None:
        self.csp.append(report)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _request(self, request: Request) -> None:
        self.requests.append((request.method, request.url))

    def _route(self, route: Route) -> None:
        url = route.request.url
        if url.startswith(self.origin + "/") or url == "data:,":
            route.continue_()
        else:
            route.abort()

    def _console(self, message: ConsoleMessage) -> None:
        self.console.append((message.type, message.text))

    def unexpected_requests(self) -> list[str]:
        """Requests that are neither the pages the test opened nor their assets."""
        return [
            f"{method} {url}" for method, url in self.requests if not self._expected(method, url)
        ]

    def _expected(self, method: str, url: str) -> bool:
        if url == "data:,":  # the page's favicon (<link rel=icon href="data:,">)
            return True
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != self.origin or "logout" in url:
            return False
        if method == "POST":
            return parts.path in self.allowed_posts
        return method == "GET" and (
            parts.path.startswith("/static/")
            or parts.path in ("/inbox", "/inbox/updates", "/login")
            or parts.path in self.known_paths
        )

    def unexpected_console(self) -> list[str]:
        """Console errors (any CSP message whatever its level) the test did not expect."""
        return [f"{kind}: {text}" for kind, text in self.console if not self._harmless(kind, text)]

    def _harmless(self, kind: str, message: str) -> bool:
        if "Content Security Policy" in message or "Content-Security-Policy" in message:
            return False
        return kind != "error" or any(
            f"status of {status}" in message for status in self.allowed_statuses
        )

    def assert_quiet(self) -> None:
        """Nothing ran, nothing was fetched behind the reviewer's back."""
        assert self.dialogs == [], f"a dialog opened: {self.dialogs}"
        assert self.csp == [], f"the CSP blocked something that tried to run: {self.csp}"
        assert self.unexpected_console() == [], self.unexpected_console()
        assert self.page_errors == [], f"uncaught errors: {self.page_errors}"
        assert self.unexpected_requests() == [], self.unexpected_requests()


def assert_still_logged_in(context: BrowserContext, base: str, name: str) -> None:
    """The browser's session cookie still opens the inbox as ``name``."""
    response = context.request.get(f"{base}/inbox", max_redirects=0)
    assert response.status == 200, f"the session ended: {response.status} {response.headers}"
    assert f'<span class="user">{name}</span>' in response.text()
