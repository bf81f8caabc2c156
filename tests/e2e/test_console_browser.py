"""The review console end to end in a real browser: real orchestrator, echo agent and
`waypost serve` processes on the real broker and PostgreSQL, Chromium driven by
Playwright. A reviewer logs in through the form, finds what a running workflow escalated,
and approves, edits, rejects or bulk-approves it; the workflow then completes (or fails)
with what the reviewer decided. After a decision refused because the escalation changed,
the `a` key does not approve what the reviewer has not read. Screenshots of the inbox and
of an escalation go to test-artifacts/."""

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

from orchestrator.workflow.state import (
    EscalationState,
    EscalationStatus,
    TaskStatus,
    WorkflowStatus,
)
from tests.e2e.browser import (
    ARTIFACTS,
    GOAL_TYPE,
    Session,
    add_reviewer,
    assert_png,
    browser_session,
    chromium,
    finished,
    module_platform,
    pending_escalation,
    skip_without_chromium,
    start_console,
)
from tests.e2e.conftest import Platform
from tests.waiting import wait_for

skip_without_chromium()
pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # browser flows of 5-10 s each
REVIEWER = "rita"


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
    """Orchestrator, echo agent and console for the whole module (one namespace and
    schema); each test works on its own workflows, found by id."""
    with module_platform(broker, postgres, tmp_path_factory.mktemp("console")) as platform:
        base = start_console(platform, workers=True)
        add_reviewer(platform, REVIEWER)
        with chromium() as browser:
            yield Console(platform, base, browser)


@pytest.fixture
def session(console: Console, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    """A fresh browser context, logged in as the reviewer through the login form."""
    with browser_session(
        console.browser,
        console.base,
        console.platform,
        request,
        tmp_path,
        login=REVIEWER,
    ) as opened:
        yield opened


def submit(console: Console, label: str) -> tuple[str, str]:
    """A running test.console workflow with a text no other test uses: (id, text)."""
    text = f"{label} {uuid.uuid4().hex[:8]}"
    return console.platform.submit(GOAL_TYPE, {"text": text}), text


def row_of(page: Page, escalation_id: str) -> Any:
    """The inbox row of an escalation (its checkbox carries the id)."""
    return page.locator(f'tr[data-row]:has(input[name=selected][value^="{escalation_id}:"])')


def assert_completed_with(console: Console, workflow_id: str, output: dict[str, Any]) -> None:
    """The workflow resumed with ``output`` as the reviewed step's, and completed."""
    state = finished(console.platform, workflow_id)
    assert state.status is WorkflowStatus.COMPLETED, (state.status, state.reason)
    assert {name: task.status for name, task in state.tasks.items()} == {
        "drafted": TaskStatus.COMPLETED,
        "published": TaskStatus.COMPLETED,
    }
    assert state.tasks["drafted"].output == output
    # The next step ran on the reviewed text, so the workflow really went on from it.
    assert state.tasks["published"].input == {"text": output["text"]}
    assert state.output == {"drafted": output, "published": {"text": output["text"], "attempt": 1}}


def test_log_in_find_the_escalation_open_it_with_the_keyboard_and_approve(
    console: Console, session: Session
) -> None:
    workflow_id, text = submit(console, "Approve with the keyboard")
    escalation = pending_escalation(console.platform, workflow_id)
    page = session.page
    page.reload()

    mine = row_of(page, escalation.id)
    expect(mine.locator("a.open")).to_have_text(text)
    rows = page.locator("tr[data-row]")
    for _ in range(rows.count()):  # walk down the list with j until the row is current
        page.keyboard.press("j")
        if mine.get_attribute("aria-current") == "true":
            break
    expect(mine).to_have_attribute("aria-current", "true")
    session.watch.known_paths.add(f"/escalations/{escalation.id}")
    page.keyboard.press("o")

    expect(page).to_have_url(re.compile(f"/escalations/{escalation.id}$"))
    expect(page.locator("h1")).to_have_text(text)
    # The output's JSON is shown once, in the field a reviewer edits it in, next to the
    # goal input.
    expect(page.locator(".untrusted #edit-output")).to_have_value(
        json.dumps({"text": text, "attempt": 1}, indent=2)
    )
    expect(page.locator(".untrusted .goal-input pre.json")).to_have_text(
        json.dumps({"text": text}, indent=2)
    )
    session.watch.allow_post(f"/escalations/{escalation.id}/decision")
    page.keyboard.press("a")
    expect(page.locator(".notice")).to_contain_text("Approved")

    assert_completed_with(console, workflow_id, {"text": text, "attempt": 1})
    state = console.platform.workflow(workflow_id)
    assert state is not None
    decided = state.escalations[escalation.id]
    assert decided.status is EscalationStatus.RESOLVED
    assert decided.decision is not None
    assert (decided.decision.action, decided.decision.reviewer) == ("approve", REVIEWER)
    session.watch.assert_quiet()


def test_an_edit_is_checked_before_it_is_accepted_and_the_workflow_goes_on_with_it(
    console: Console, session: Session
) -> None:
    workflow_id, text = submit(console, "Edit me")
    escalation = pending_escalation(console.platform, workflow_id)
    page = session.page
    page.goto(f"/escalations/{escalation.id}")
    session.watch.known_paths.add(f"/escalations/{escalation.id}")
    session.watch.allow_post(f"/escalations/{escalation.id}/decision")
    session.watch.allow_status(422)  # the refused edits below
    field = page.locator("#edit-output")
    expect(field).to_have_value(json.dumps({"text": text, "attempt": 1}, indent=2))
    submit_edit = page.locator("#edit-form button[type=submit]")

    page.keyboard.press("e")
    expect(field).to_be_focused()
    not_json = '{"text": "half an object", '
    field.fill(not_json)
    submit_edit.click()
    expect(page.locator("#edit-error")).to_contain_text("not valid JSON")
    expect(field).to_have_value(not_json)  # what the reviewer typed is kept

    off_schema = '{"text": "", "attempt": "first"}'
    field.fill(off_schema)
    submit_edit.click()
    error = page.locator("#edit-error")
    expect(error).to_contain_text("breaks the step's output schema")
    expect(error.locator("li")).to_have_text(
        ['text: "" is shorter than 1 character', 'attempt: "first" is not of type "integer"']
    )
    expect(field).to_have_value(off_schema)
    refused = console.platform.workflow(workflow_id)
    assert refused is not None
    assert refused.escalations[escalation.id].status is EscalationStatus.PENDING
    assert refused.escalations[escalation.id].version == escalation.version

    edited = {"text": f"{text}, as the reviewer wrote it", "attempt": 7}
    field.fill(json.dumps(edited))
    page.fill("#edit-reason", "reworded")
    submit_edit.click()
    expect(page.locator(".notice")).to_contain_text("Approved with your edited output")

    assert_completed_with(console, workflow_id, edited)
    state = console.platform.workflow(workflow_id)
    assert state is not None
    decision = state.escalations[escalation.id].decision
    assert decision is not None
    assert (decision.action, decision.reviewer, decision.output, decision.reason) == (
        "edit",
        REVIEWER,
        edited,
        "reworded",
    )
    session.watch.assert_quiet()


def test_a_rejection_fails_the_workflow_naming_the_reviewer_and_the_reason(
    console: Console, session: Session
) -> None:
    workflow_id, _ = submit(console, "Reject me")
    escalation = pending_escalation(console.platform, workflow_id)
    page = session.page
    page.goto(f"/escalations/{escalation.id}")
    session.watch.known_paths.add(f"/escalations/{escalation.id}")
    session.watch.allow_post(f"/escalations/{escalation.id}/decision")

    page.keyboard.press("r")
    expect(page.locator("#reject-reason")).to_be_focused()
    page.keyboard.type("The tone is wrong for this customer.")
    page.click("#reject-form button[type=submit]")
    expect(page.locator(".notice")).to_contain_text("Rejected")

    state = finished(console.platform, workflow_id)
    assert state.status is WorkflowStatus.FAILED
    assert state.reason == (
        f"reviewer {REVIEWER} rejected step 'drafted': The tone is wrong for this customer."
    )
    assert state.failed_step == "drafted"
    assert state.tasks["published"].status is not TaskStatus.COMPLETED
    assert state.tasks["published"].attempt == 0  # never dispatched
    session.watch.assert_quiet()


def test_after_a_conflict_the_a_key_does_not_approve_the_version_the_reviewer_has_not_read(
    console: Console, session: Session
) -> None:
    # A test.review goal in "sla" mode waits in its `timed` step, whose 1-second SLA moves
    # the escalation to another group, one version up, every second or so.
    workflow_id = console.platform.submit(
        "test.review", {"text": f"Moving {uuid.uuid4().hex[:8]}", "mode": "sla"}
    )
    escalation = _pending(console, workflow_id)
    path = f"/escalations/{escalation.id}"
    page = session.page
    session.watch.known_paths.add(path)
    session.watch.allow_post(f"{path}/decision")
    session.watch.allow_status(409)  # the refused decisions below
    page.goto(path)
    version_field = page.locator("#approve-form input[name=version]")
    seen = int(version_field.get_attribute("value") or "0")
    wait_for(
        lambda: _pending(console, workflow_id).version > seen,
        timeout=30,
        interval=0.1,
        what="the escalation to move on",
    )

    page.keyboard.press("a")  # on the page as it was: refused, and the page shows it anew

    conflict = page.locator("#conflict")
    expect(conflict).to_contain_text(f"you saw version {seen}")
    expect(conflict).to_contain_text("read it again before you decide")
    expect(page.locator("article[data-escalation]")).to_have_attribute("data-conflict", "")
    assert int(version_field.get_attribute("value") or "0") > seen
    page.keyboard.press("a")  # on the new version, unread: it only points at the notice
    expect(conflict).to_be_focused()
    decisions = [
        url for method, url in session.watch.requests if method == "POST" and "/decision" in url
    ]
    assert len(decisions) == 1
    assert _pending(console, workflow_id).decision is None

    # A deliberate click on Approve decides the version the page shows (the SLA may have
    # moved it on meanwhile: then the page shows the newer one, and the reviewer clicks
    # again).
    def approved_by_click() -> bool:
        with page.expect_response(lambda r: r.url.endswith(f"{path}/decision")) as answer:
            page.click("#approve-form button[type=submit]")
        return answer.value.status == 200

    wait_for(approved_by_click, timeout=30, interval=0, what="an approval by click")
    expect(page.locator(".notice")).to_contain_text("Approved")
    assert finished(console.platform, workflow_id).status is WorkflowStatus.COMPLETED
    session.watch.assert_quiet()


def _pending(console: Console, workflow_id: str) -> EscalationState:
    """The workflow's pending escalation, once there is one."""

    def probe() -> EscalationState | None:
        state = console.platform.workflow(workflow_id)
        pending = [
            e
            for e in (state.escalations.values() if state is not None else ())
            if e.status is EscalationStatus.PENDING
        ]
        return pending[0] if pending else None

    return wait_for(probe, timeout=60, interval=0.1, what=f"an escalation of {workflow_id}")


def test_five_escalations_selected_in_the_inbox_are_approved_in_bulk(
    console: Console, session: Session
) -> None:
    submitted = [submit(console, f"Bulk {n}") for n in range(5)]
    escalations = {
        pending_escalation(console.platform, workflow_id).id: (workflow_id, text)
        for workflow_id, text in submitted
    }
    page = session.page
    page.reload()
    session.watch.allow_post("/inbox/bulk")

    rows = page.locator("tr[data-row]")
    expect(rows.locator("input[name=selected]")).to_have_count(rows.count())
    for index in range(rows.count()):  # j to each row; x selects the five of this test
        page.keyboard.press("j")
        value = rows.nth(index).locator("input[name=selected]").get_attribute("value") or ""
        if value.split(":")[0] in escalations:
            page.keyboard.press("x")
    checked = page.locator("input[name=selected]:checked")
    expect(checked).to_have_count(5)
    picked = {(checked.nth(i).get_attribute("value") or "").split(":")[0] for i in range(5)}
    assert picked == set(escalations)
    page.click("#bulk .bulkbar button[value=approve]")

    outcome = page.locator("section.outcome")
    expect(outcome.locator("h2")).to_have_text("Approved 5 of 5")
    expect(outcome.locator("li.accepted")).to_have_count(5)
    for workflow_id, text in escalations.values():
        assert_completed_with(console, workflow_id, {"text": text, "attempt": 1})
    session.watch.assert_quiet()


def test_screenshots_of_the_inbox_and_an_escalation(console: Console, session: Session) -> None:
    workflow_id, text = submit(console, "Screenshot")
    escalation = pending_escalation(console.platform, workflow_id)
    page = session.page
    ARTIFACTS.mkdir(exist_ok=True)
    inbox = ARTIFACTS / "console-inbox.png"
    detail = ARTIFACTS / "console-escalation-detail.png"
    for stale in (inbox, detail):
        stale.unlink(missing_ok=True)

    page.reload()
    expect(row_of(page, escalation.id)).to_be_visible()
    page.screenshot(path=str(inbox), full_page=True, caret="initial")
    session.watch.known_paths.add(f"/escalations/{escalation.id}")
    row_of(page, escalation.id).locator("a.open").click()
    expect(page.locator("h1")).to_have_text(text)
    page.screenshot(path=str(detail), full_page=True, caret="initial")

    assert_png(inbox)
    assert_png(detail)
    # Leave nothing pending for the other tests of the module.
    session.watch.allow_post(f"/escalations/{escalation.id}/decision")
    page.click("#approve-form button[type=submit]")
    expect(page.locator(".notice")).to_contain_text("Approved")
    assert finished(console.platform, workflow_id).status is WorkflowStatus.COMPLETED
    session.watch.assert_quiet()
