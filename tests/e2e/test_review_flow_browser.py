"""The keyboard review flow end to end, in a real browser: real orchestrator, echo agent
and `waypost serve` processes on the real broker and PostgreSQL, Chromium driven by
Playwright. A reviewer starts from a filtered inbox and decides twenty escalations
without a single click: each decision opens the next escalation of that inbox list.
Before that, `a`/`r` and Enter decide ticked rows in bulk; the cursor survives the
inbox's live update, `g i` comes back to the inbox on the row the reviewer was at,
`n`/`p` move along the list, and every workflow goes on as its escalation was decided
(approved, edited or rejected)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from orchestrator.workflow.state import EscalationStatus, TaskStatus, WorkflowStatus
from tests.e2e.browser import (
    E2E_PLAYBOOKS,
    add_reviewer,
    browser_session,
    chromium,
    finished,
    module_platform,
    pending_escalation,
    skip_without_chromium,
    start_console,
)
from tests.e2e.conftest import PLAYBOOKS

skip_without_chromium()
pytestmark = pytest.mark.e2e
# A decision's round trip (POST, the next escalation rendered) can take several seconds
# on a loaded CI machine; Playwright's default of 5 s for an expectation is too short.
DECISION_MS = 15_000
REVIEWER = "rita"
GOAL_TYPE = "test.review_flow"
REVIEW_FLOW = E2E_PLAYBOOKS / "review_flow"
COUNT = 20
INBOX = f"/inbox?goal_type={GOAL_TYPE}"


def plan(index: int) -> str:
    """What the reviewer does with the ``index``-th escalation of the flow."""
    if index == 7:
        return "edit"
    return "reject" if index % 4 == 1 else "approve"


def escalation_of_page(page: Page) -> str:
    """The id of the escalation the page shows (from its URL)."""
    match = re.search(r"/escalations/([^/?#]+)", page.url)
    assert match, page.url
    return match[1]


def cursor_row(page: Page) -> Any:
    return page.locator('tr[data-row][aria-current="true"]')


@pytest.mark.slow  # twenty workflows through real processes and a browser: about a minute
def test_a_reviewer_decides_twenty_escalations_with_the_keyboard_alone(
    broker: Any, postgres: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    with module_platform(broker, postgres, logs) as platform:
        base = start_console(
            platform, workers=True, playbooks=(PLAYBOOKS, E2E_PLAYBOOKS, REVIEW_FLOW)
        )
        add_reviewer(platform, REVIEWER)
        tag = uuid.uuid4().hex[:6]
        # Three decided in bulk first: the oldest, so the top rows of the inbox.
        bulk = [platform.submit(GOAL_TYPE, {"text": f"Bulk {n} {tag}"}) for n in range(3)]
        bulk_rows = [pending_escalation(platform, w).id for w in bulk]
        texts = {
            platform.submit(GOAL_TYPE, {"text": f"Flow {n:02d} {tag}"}): f"Flow {n:02d} {tag}"
            for n in range(COUNT - 1)
        }
        escalations = {pending_escalation(platform, w).id: w for w in texts}

        with (
            chromium() as browser,
            browser_session(browser, base, platform, request, tmp_path, login=REVIEWER) as session,
        ):
            page = session.page
            watch = session.watch
            page.goto(INBOX)
            rows = page.locator("tr[data-row]")
            expect(rows).to_have_count(COUNT - 1 + len(bulk))

            # --- bulk decisions by key: a (or r) gets them ready, Enter confirms ---------
            watch.allow_post("/inbox/bulk")
            outcome = page.locator("section.outcome h2")
            for _ in range(2):
                page.keyboard.press("j")
                page.keyboard.press("x")
            page.keyboard.press("a")
            expect(page.locator("#bulk-hint")).to_have_text(
                "Enter approves 2 selected escalations; Esc cancels."
            )
            expect(page.locator("#bulk-approve")).to_be_focused()
            page.keyboard.press("Enter")
            expect(outcome).to_have_text("Approved 2 of 2")
            expect(rows).to_have_count(COUNT)
            page.keyboard.press("k")  # the cursor stayed where it was: up to the third
            expect(cursor_row(page)).to_have_attribute("data-id", bulk_rows[2])
            page.keyboard.press("r")  # nothing ticked: the row under the cursor
            expect(page.locator("#bulk-reason")).to_be_focused()
            page.keyboard.type("A duplicate")
            page.keyboard.press("Enter")
            expect(outcome).to_have_text("Rejected 1 of 1")
            expect(rows).to_have_count(COUNT - 1)
            page.keyboard.press("Escape")
            # Each row shows the line the step's summary template wrote.
            expect(rows.first.locator(".step-summary")).to_have_text(
                re.compile(rf"^Draft: Flow \d\d {tag} \(attempt 1\)$")
            )

            # --- the cursor survives the live update -----------------------------------
            for _ in range(3):
                page.keyboard.press("j")
            page.keyboard.press("x")
            held = cursor_row(page).get_attribute("data-id")
            assert held in escalations
            workflow_id = platform.submit(GOAL_TYPE, {"text": f"Flow {COUNT - 1:02d} {tag}"})
            texts[workflow_id] = f"Flow {COUNT - 1:02d} {tag}"
            escalations[pending_escalation(platform, workflow_id).id] = workflow_id
            for escalation_id in escalations:
                watch.known_paths.add(f"/escalations/{escalation_id}")
                watch.allow_post(f"/escalations/{escalation_id}/decision")
            expect(page.locator("#updates")).to_contain_text("1 new escalation", timeout=20_000)
            page.keyboard.press("u")  # show them: the list, newest first
            expect(rows).to_have_count(COUNT)
            expect(page).to_have_url(re.compile(r"sort=newest"))
            expect(cursor_row(page)).to_have_attribute("data-id", held or "")
            expect(cursor_row(page).locator("input[name=selected]")).to_be_checked()
            page.keyboard.press("x")  # untick it: this reviewer decides one by one

            # --- g i comes back to the row ----------------------------------------------
            page.keyboard.press("o")
            expect(page).to_have_url(re.compile(f"/escalations/{held}\\?from="))
            page.keyboard.press("g")
            page.keyboard.press("i")
            expect(page).to_have_url(re.compile(f"/inbox\\?.*cursor={held}"))
            expect(cursor_row(page)).to_have_attribute("data-id", held or "")
            for _ in range(COUNT):  # k to the top of the list, then open it
                page.keyboard.press("k")
            expect(rows.first).to_have_attribute("aria-current", "true")
            page.keyboard.press("o")
            expect(page).to_have_url(re.compile(r"/escalations/"))

            # --- twenty decisions, one after the other ----------------------------------
            decided: dict[str, str] = {}
            edited: dict[str, Any] = {}
            reasons: dict[str, str] = {}
            heading = page.locator("article[data-escalation] h1")
            # Without leaving the flow: every decision and every move is an htmx request,
            # not a full page load (which would drop the keys typed while it loads).
            page_loads: list[str] = []
            page.on(
                "request",
                lambda r: (
                    page_loads.append(f"{r.method} {r.url}")
                    if r.is_navigation_request() and r.frame == page.main_frame
                    else None
                ),
            )
            # The worst case, every time: each key comes while htmx still settles the
            # page it just swapped in (20 ms in the console; a second here), when its
            # forms are not wired up yet and carry the classes of the forms they replaced.
            page.evaluate("htmx.config.defaultSettleDelay = 1000")
            for index in range(COUNT):
                escalation_id = escalation_of_page(page)
                assert escalation_id in escalations
                assert escalation_id not in decided
                text = texts[escalations[escalation_id]]
                expect(heading).to_have_text(text, timeout=DECISION_MS)
                if index == 10:  # n and p walk the list without deciding
                    page.keyboard.press("n")
                    expect(heading).not_to_have_text(text)
                    page.keyboard.press("p")
                    expect(heading).to_have_text(text)
                action = plan(index)
                if action == "approve":
                    page.keyboard.press("a")
                elif action == "reject":
                    reasons[escalation_id] = f"Not this one ({index})"
                    page.keyboard.press("r")
                    page.keyboard.type(reasons[escalation_id])
                    page.keyboard.press("Control+Enter")
                else:
                    edited[escalation_id] = {"text": f"{text}, reworded", "attempt": 1}
                    page.keyboard.press("e")
                    page.keyboard.press("Control+a")
                    page.keyboard.type(json.dumps(edited[escalation_id]))
                    page.keyboard.press("Control+Enter")
                decided[escalation_id] = action
                notice = page.locator(".notice")
                verb = {"approve": "Approved", "reject": "Rejected", "edit": "Approved with"}
                expect(notice).to_contain_text(verb[action], timeout=DECISION_MS)
                if index < COUNT - 1:
                    expect(notice).to_contain_text(f"That was “{text}”", timeout=DECISION_MS)
                    expect(page).not_to_have_url(re.compile(f"/escalations/{escalation_id}"))
                else:
                    expect(notice).to_contain_text(
                        "Nothing else waits in your inbox list.", timeout=DECISION_MS
                    )

            # Back in the inbox, nothing of this list is left.
            page.keyboard.press("g")
            page.keyboard.press("i")
            expect(page.locator(".queue .empty")).to_be_visible()
            assert page_loads == []
            watch.assert_quiet()
            # One request per decision, each naming the inbox list it was made in.
            posted = [url for method, url in watch.requests if method == "POST"]
            decisions = [url for url in posted if "/decision" in url]
            assert len(decisions) == COUNT
            assert all(f"goal_type%3D{GOAL_TYPE}" in url for url in decisions)

        assert sorted(decided.values()) == sorted(plan(i) for i in range(COUNT))
        for workflow_id in bulk[:2]:
            assert finished(platform, workflow_id).status is WorkflowStatus.COMPLETED
        refused = finished(platform, bulk[2])
        assert refused.status is WorkflowStatus.FAILED
        assert refused.reason == f"reviewer {REVIEWER} rejected step 'drafted': A duplicate"
        for escalation_id, action in decided.items():
            workflow_id = escalations[escalation_id]
            state = finished(platform, workflow_id)
            escalation = state.escalations[escalation_id]
            assert escalation.status is EscalationStatus.RESOLVED
            assert escalation.decision is not None
            assert (escalation.decision.action, escalation.decision.reviewer) == (action, REVIEWER)
            if action == "reject":
                assert state.status is WorkflowStatus.FAILED
                assert escalation.decision.reason == reasons[escalation_id]
                assert state.tasks["published"].status is not TaskStatus.COMPLETED
                continue
            assert state.status is WorkflowStatus.COMPLETED, (state.status, state.reason)
            output = edited.get(escalation_id, {"text": texts[workflow_id], "attempt": 1})
            assert state.tasks["drafted"].output == output
            assert state.tasks["published"].input == {"text": output["text"]}
