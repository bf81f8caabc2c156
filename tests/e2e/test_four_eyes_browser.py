"""Four eyes end to end in a real browser: real orchestrator, echo agent and `waypost
serve` processes on the real broker and PostgreSQL, Chromium driven by Playwright. A step
needs two different reviewers: one reviewer's approval is not enough (the page says 1 of
2 and the workflow waits), the same reviewer cannot give the second, and a second
reviewer's approval completes the workflow."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from orchestrator.workflow.state import EscalationStatus, TaskStatus, WorkflowStatus
from tests.e2e.browser import (
    Session,
    add_reviewer,
    browser_session,
    chromium,
    finished,
    module_platform,
    pending_escalation,
    skip_without_chromium,
    start_console,
)
from tests.e2e.conftest import Platform

skip_without_chromium()
pytestmark = [pytest.mark.e2e, pytest.mark.slow]
GOAL_TYPE = "test.four_eyes"  # tests/e2e/playbooks/four_eyes.yaml
FIRST, SECOND = "ann", "bob"


@dataclass
class Console:
    """The module's running processes, console URL and browser."""

    platform: Platform
    base: str
    browser: Browser


@pytest.fixture(scope="module")
def console(
    broker: Any, postgres: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Console]:
    """Orchestrator, echo agent and console, and two reviewers."""
    with module_platform(broker, postgres, tmp_path_factory.mktemp("four-eyes")) as platform:
        base = start_console(platform, workers=True)
        add_reviewer(platform, FIRST)
        add_reviewer(platform, SECOND)
        with chromium() as browser:
            yield Console(platform, base, browser)


def reviewer_session(
    console: Console, name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AbstractContextManager[Session]:
    """A browser context logged in as ``name`` through the login form."""
    return browser_session(
        console.browser, console.base, console.platform, request, tmp_path / name, login=name
    )


def approve(page: Page, path: str) -> None:
    """Click Approve and wait for the console's answer (htmx posts the form in place)."""
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith(f"{path}/decision")
    ):
        page.click("#approve-form button[type=submit]")


def assert_nothing_ran(session: Session) -> None:
    """No dialog, CSP violation, page error or console error, nothing fetched elsewhere.
    (Where a decision redirects to is the review flow's business, not checked here.)"""
    watch = session.watch
    assert watch.dialogs == [], watch.dialogs
    assert watch.csp == [], watch.csp
    assert watch.page_errors == [], watch.page_errors
    assert watch.unexpected_console() == [], watch.unexpected_console()
    foreign = [
        url
        for _, url in watch.requests
        if not url.startswith(watch.origin + "/") and url != "data:,"
    ]
    assert foreign == [], foreign


def test_one_reviewers_approval_is_not_enough_and_the_same_reviewer_cannot_give_the_second(
    console: Console, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    text = f"Four eyes {uuid.uuid4().hex[:8]}"
    workflow_id = console.platform.submit(GOAL_TYPE, {"text": text})
    escalation = pending_escalation(console.platform, workflow_id)
    assert escalation.required_approvals == 2
    path = f"/escalations/{escalation.id}"

    with reviewer_session(console, FIRST, request, tmp_path) as ann:
        page = ann.page
        ann.watch.known_paths.add(path)
        ann.watch.allow_post(f"{path}/decision")
        ann.watch.allow_status(409)  # her second approval, refused
        page.goto(path)
        expect(page.locator("#approvals")).to_contain_text("0 of 2")

        approve(page, path)
        page.goto(path)  # wherever the decision led, back to this escalation

        approvals = page.locator("#approvals")
        expect(approvals).to_contain_text("Approvals: 1 of 2")
        expect(approvals).to_contain_text(f"approved by {FIRST}")
        expect(page.locator("#four-eyes-yours")).to_contain_text(
            "You approved it already: a second reviewer must approve it."
        )
        waiting = console.platform.workflow(workflow_id)
        assert waiting is not None
        assert waiting.tasks["drafted"].status is TaskStatus.AWAITING_REVIEW
        assert waiting.escalations[escalation.id].status is EscalationStatus.PENDING

        page.click("#approve-form button[type=submit]")

        expect(page.locator("#conflict")).to_contain_text(
            "you approved it already; a second reviewer must approve it (1 of 2 approvals given)"
        )
        refused = console.platform.workflow(workflow_id)
        assert refused is not None
        assert [a.reviewer for a in refused.escalations[escalation.id].approvals] == [FIRST]
        assert_nothing_ran(ann)

    with reviewer_session(console, SECOND, request, tmp_path) as bob:
        page = bob.page
        bob.watch.known_paths.add(path)
        bob.watch.allow_post(f"{path}/decision")
        page.goto(path)
        expect(page.locator("#approvals")).to_contain_text(f"1 of 2 — approved by {FIRST}")
        expect(page.locator("#four-eyes-yours")).to_have_count(0)

        approve(page, path)
        assert_nothing_ran(bob)

    state = finished(console.platform, workflow_id)
    assert state.status is WorkflowStatus.COMPLETED, (state.status, state.reason)
    assert state.tasks["drafted"].output == {"text": text, "attempt": 1}
    assert state.tasks["published"].status is TaskStatus.COMPLETED
    decided = state.escalations[escalation.id]
    assert decided.decision is not None
    assert (decided.decision.action, decided.decision.reviewer) == ("approve", SECOND)
    assert [a.reviewer for a in decided.approvals] == [FIRST, SECOND]
