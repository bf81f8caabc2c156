"""The workflows pages end to end in a real browser: `waypost serve` as a real process on
the real broker and PostgreSQL, Chromium driven by Playwright. Workflows are made the
way the orchestrator makes them (planned, then a step's attempt fails for good); a
reviewer logs in, finds the failed one by filtering the list by status and goal type,
opens it and reads its steps, step graph and timeline. A screenshot of each page goes
to test-artifacts/."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.publishing.records import Outgoing
from orchestrator.service.applier import Applier
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.workflows import NewWorkflow
from orchestrator.workflow.messages import TaskAttemptFailed
from orchestrator.workflow.state import TaskError, WorkflowStatus
from tests.e2e.browser import (
    ARTIFACTS,
    E2E_PLAYBOOKS,
    GOAL_TYPE,
    Session,
    add_reviewer,
    assert_png,
    browser_session,
    chromium,
    module_platform,
    skip_without_chromium,
    start_console,
)
from tests.e2e.conftest import PLAYBOOKS, Platform
from waypost.events import default_codec, utcnow

skip_without_chromium()
pytestmark = pytest.mark.e2e
REVIEWER = "rita"
OTHER_TYPE = "test.exhausted"


@dataclass
class Console:
    """The module's console process, URL and browser."""

    platform: Platform
    base: str
    browser: Browser


@pytest.fixture(scope="module")
def console(
    broker: Any, postgres: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Console]:
    """`waypost serve` alone (the workflows are written as the orchestrator would)."""
    with module_platform(broker, postgres, tmp_path_factory.mktemp("workflows")) as platform:
        base = start_console(platform, workers=False)
        add_reviewer(platform, REVIEWER)
        with chromium() as browser:
            yield Console(platform, base, browser)


@pytest.fixture
def session(console: Console, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    """A fresh browser context, logged in as the reviewer through the login form."""
    with browser_session(
        console.browser, console.base, console.platform, request, tmp_path, login=REVIEWER
    ) as opened:
        yield opened


def make_workflow(platform: Platform, goal_type: str, *, fail: bool) -> str:
    """A planned workflow (running); with ``fail``, its first step's attempt failed with
    an error retrying cannot fix, so the workflow failed. Its id."""
    applier = Applier(
        playbooks=PlaybookRegistry.load([PLAYBOOKS, E2E_PLAYBOOKS]),
        outgoing=Outgoing(platform.topics, default_codec()),
        random=lambda: 0.5,
    )
    workflow_id = f"wf-{uuid.uuid4().hex[:12]}"
    now = utcnow()
    with platform.engine.begin() as conn:
        applier.plan_new(
            conn, goals=[NewWorkflow(workflow_id, goal_type, {"text": "hello"}, now)], now=now
        )
    if fail:
        with platform.engine.begin() as conn:
            states = workflow_rows.lock(conn, ids=[workflow_id])
            (task,) = [t for t in states[workflow_id].tasks.values() if t.attempt]
            error = TaskError("ValueError", "the draft has no greeting", retryable=False)
            failure = TaskAttemptFailed(task.id, task.attempt, error)
            applier.apply(conn, states=states, inputs=[(workflow_id, failure)], now=utcnow())
        state = platform.workflow(workflow_id)
        assert state is not None
        assert state.status is WorkflowStatus.FAILED, state
    return workflow_id


@pytest.mark.slow  # 10-40 s (Chromium and a `waypost serve` process): `make test-slow`
def test_find_a_failed_workflow_by_filter_and_read_its_steps_graph_and_timeline(
    console: Console, session: Session
) -> None:
    platform = console.platform
    wanted = make_workflow(platform, GOAL_TYPE, fail=True)
    other_type = make_workflow(platform, OTHER_TYPE, fail=True)
    running = make_workflow(platform, GOAL_TYPE, fail=False)
    page = session.page
    session.watch.known_paths.update({"/workflows", f"/workflows/{wanted}"})

    page.click("nav >> text=Workflows")
    expect(page).to_have_url(re.compile(r"/workflows$"))
    rows = page.locator("tr.wf-row td.wf-id code")
    expect(rows).to_have_text([running, other_type, wanted])

    page.check("input[name=status][value=failed]")
    expect(rows).to_have_text([other_type, wanted])
    page.select_option("select[name=type]", GOAL_TYPE)
    expect(rows).to_have_text([wanted])
    expect(page).to_have_url(re.compile(r"/workflows\?status=failed&type=test\.console$"))
    expect(page.locator(".wf-counts li.current")).to_have_text("1 failed")
    page.screenshot(path=str(ARTIFACTS / "workflows-list.png"), full_page=True)

    page.click(f"tr.wf-row a:has-text('{wanted}')")
    expect(page).to_have_url(re.compile(f"/workflows/{wanted}$"))
    expect(page.locator(".wf-head h1")).to_contain_text(GOAL_TYPE)
    expect(page.locator(".wf-failure")).to_contain_text("the draft has no greeting")
    expect(page.locator("svg.dag .dag-node")).to_have_count(2)
    expect(page.locator("svg.dag .dag-node.status-failed")).to_have_count(1)
    drafted = page.locator("#step-drafted")
    expect(drafted).to_have_attribute("open", "")  # a failed step starts unfolded
    expect(drafted.locator(".wf-attempts tbody tr")).to_have_count(1)
    expect(drafted.locator(".wf-attempts")).to_contain_text("ValueError")
    kinds = page.locator(".wf-events .wf-event-kind")
    expect(kinds).to_have_text(["accepted", "started", "dispatched", "result", "finished"])
    expect(page.locator(".wf-events")).to_contain_text("Workflow failed")
    path = ARTIFACTS / "workflow-page.png"
    page.screenshot(path=str(path), full_page=True)
    assert_png(path)
    session.watch.assert_quiet()
