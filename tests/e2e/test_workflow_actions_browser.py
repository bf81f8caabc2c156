"""Operating workflows from the console in a real browser: real orchestrator, echo agent and
`waypost serve` processes on the real broker and PostgreSQL, Chromium driven by
Playwright, an admin logged in through the form.

- A workflow whose first step failed (its input asked the echo agent to fail for good) is
  found in the workflows list filtered by status and type, opened, and resumed from that
  step with an edited input that no longer fails; it completes on that input.
- A running workflow with a step waiting for a reviewer and a step still running is
  found in the list and cancelled from its page: its escalation closes (it leaves the
  inbox), and the result the running step's agent sends afterwards is ignored.

The workflow page (/workflows/{id}) includes the actions partial; its forms have the ids
#cancel-form, #retry-form-<step> and #resume-form. Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from orchestrator.store.tables import audit_events
from orchestrator.workflow.state import (
    EscalationStatus,
    TaskState,
    TaskStatus,
    WorkflowState,
    WorkflowStatus,
)
from review_ui.auth import store as auth_store
from review_ui.auth.roles import Role
from tests.e2e.browser import (
    ARTIFACTS,
    PASSWORD,
    Session,
    assert_png,
    browser_session,
    chromium,
    finished,
    module_platform,
    skip_without_chromium,
    start_console,
)
from tests.e2e.conftest import Platform
from tests.waiting import wait_for
from waypost.bus.records import OutgoingRecord
from waypost.events import AgentInfo, Event, TaskCompleted, default_codec

skip_without_chromium()
pytestmark = pytest.mark.e2e
OPERATOR = "otto"
GOAL_TYPE = "test.operations"


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
    """Orchestrator, echo agent and console for the whole module, and an admin."""
    with module_platform(broker, postgres, tmp_path_factory.mktemp("operations")) as platform:
        base = start_console(platform, workers=True)
        with platform.engine.begin() as conn:
            auth_store.add_user(conn, name=OPERATOR, password=PASSWORD, role=Role.ADMIN)
        with chromium() as browser:
            yield Console(platform, base, browser)


@pytest.fixture
def session(console: Console, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    """A fresh browser context, logged in as the admin through the login form."""
    with browser_session(
        console.browser, console.base, console.platform, request, tmp_path, login=OPERATOR
    ) as opened:
        yield opened


def find_by_filter(session: Session, workflow_id: str, *, status: str) -> Page:
    """The workflow's page, reached from the workflows list filtered by status and type."""
    session.watch.known_paths.update({"/workflows", f"/workflows/{workflow_id}"})
    page = session.page
    page.goto(f"/workflows?status={status}&type={GOAL_TYPE}")
    page.locator(f'a[href="/workflows/{workflow_id}"]').first.click()
    expect(page.locator("#workflow-actions")).to_be_visible()
    return page


def submitted(session: Session, workflow_id: str, action: str, notice: str) -> None:
    """Allow the form's POST, and wait for the page it leads back to."""
    session.watch.allow_post(f"/workflows/{workflow_id}/{action}")
    expect(session.page).to_have_url(re.compile(f"/workflows/{workflow_id}\\?notice={notice}$"))


def audited(console: Console, workflow_id: str) -> list[tuple[str, str]]:
    with console.platform.engine.connect() as conn:
        rows = conn.execute(
            select(audit_events.c.actor, audit_events.c.action)
            .where(audit_events.c.workflow_id == workflow_id)
            .order_by(audit_events.c.id)
        ).all()
    return [(row.actor, row.action) for row in rows]


@pytest.mark.slow  # several seconds of browser and agent time
def test_resume_a_failed_workflow_from_a_step_with_an_edited_input_and_it_completes(
    console: Console, session: Session
) -> None:
    text = f"resume me {uuid.uuid4().hex[:8]}"
    workflow_id = console.platform.submit(GOAL_TYPE, {"text": text, "fail": "permanent"})
    failed = finished(console.platform, workflow_id)
    assert failed.status is WorkflowStatus.FAILED, failed.reason
    assert failed.failed_step == "drafted"

    page = find_by_filter(session, workflow_id, status="failed")
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#workflow-actions").screenshot(
        path=str(ARTIFACTS / "console-workflow-actions.png")
    )
    form = page.locator("#resume-form")
    expect(form.locator("select[name=step]")).to_have_value("drafted")
    shown = json.loads(form.locator("textarea[name=input]").input_value())
    assert shown == {"text": text, "fail": "permanent"}  # its last input
    form.locator("textarea[name=input]").fill(json.dumps({"text": text}))
    form.locator("input[name=reason]").fill("the input asked the agent to fail")
    form.locator("input[name=confirm]").check()
    form.locator("button[type=submit]").click()
    submitted(session, workflow_id, "resume", "resumed")

    done = finished(console.platform, workflow_id)
    assert done.status is WorkflowStatus.COMPLETED, done.reason
    assert done.tasks["drafted"].input == {"text": text}  # exactly the edited input
    assert [a.outcome for a in done.tasks["drafted"].attempts] == ["failed", "completed"]
    assert done.tasks["published"].input == {"text": text}
    assert done.output == {"published": {"text": text, "attempt": 1}}
    assert (OPERATOR, "resume") in audited(console, workflow_id)
    page.reload()
    shot = ARTIFACTS / "console-workflow-resumed.png"
    page.screenshot(path=str(shot), full_page=True)
    assert_png(shot)
    session.watch.assert_quiet()


@pytest.mark.slow  # several seconds of browser and agent time
def test_cancel_a_running_workflow_its_escalation_closes_and_its_late_result_is_ignored(
    console: Console, session: Session
) -> None:
    goal = {"text": f"cancel me {uuid.uuid4().hex[:8]}", "mode": "cancel"}
    workflow_id = console.platform.submit(GOAL_TYPE, goal)
    waiting = wait_for(
        lambda: _waiting_and_running(console.platform, workflow_id),
        timeout=60,
        what="a step waiting for a reviewer and one running",
    )
    (escalation_id,) = [
        e.id for e in waiting.escalations.values() if e.status is EscalationStatus.PENDING
    ]

    page = find_by_filter(session, workflow_id, status="running")
    form = page.locator("#cancel-form")
    form.locator("input[name=reason]").fill("the customer withdrew the request")
    form.locator("input[name=confirm]").check()
    form.locator("button[type=submit]").click()
    submitted(session, workflow_id, "cancel", "cancelled")

    cancelled = console.platform.workflow(workflow_id)
    assert cancelled is not None
    assert cancelled.status is WorkflowStatus.CANCELLED
    assert cancelled.escalations[escalation_id].status is EscalationStatus.RESOLVED
    assert cancelled.tasks["slow"].status is TaskStatus.CANCELLED
    assert (OPERATOR, "cancel") in audited(console, workflow_id)
    # The running step's agent sends its result after all; the orchestrator ignores it.
    _late_result(console.platform, waiting.tasks["slow"], workflow_id)
    log = console.platform.logs / "orchestrator.log"
    wait_for(
        lambda: (
            f"not applied: {workflow_id}: workflow already cancelled"
            in log.read_text(errors="replace")
        ),
        timeout=30,
        what="the orchestrator to ignore the late result",
    )
    assert console.platform.workflow(workflow_id) == cancelled
    session.watch.known_paths.add("/inbox")
    session.page.goto("/inbox")
    mine = session.page.locator(f'input[name=selected][value^="{escalation_id}:"]')
    expect(mine).to_have_count(0)
    session.watch.assert_quiet()


def _late_result(platform: Platform, task: TaskState, workflow_id: str) -> None:
    """The result of the task's attempt, as its agent would send it: to the results topic."""
    result = TaskCompleted(
        workflow_id=workflow_id,
        task_id=task.id,
        step=task.step,
        capability=task.capability,
        attempt=task.attempt,
        output={"text": "finished anyway"},
        confidence=0.9,
        agent=AgentInfo(capability=task.capability, version="test", instance="late:1"),
    )
    encoded = default_codec().encode(Event(result, source="tests/agent"))
    platform.publish(
        [OutgoingRecord(platform.topics.results, encoded.key, encoded.value, encoded.headers)]
    )


def _waiting_and_running(platform: Platform, workflow_id: str) -> WorkflowState | None:
    state = platform.workflow(workflow_id)
    if state is None:
        return None
    reviewed, slow = state.tasks.get("reviewed"), state.tasks.get("slow")
    if (
        reviewed is not None
        and reviewed.status is TaskStatus.AWAITING_REVIEW
        and slow is not None
        and slow.status is TaskStatus.DISPATCHED
    ):
        return state
    return None
