"""The decision quality page in a real browser (Chromium) over real processes: after
scripted decisions through the JSON API (two approvals, an edit, a rejection), the page
shows the echo agent's rates and the drift the orchestrator's check found (and announced
on the workflow events topic), and its decisions page shows each verdict next to the
agent's reasoning."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from orchestrator.workflow.state import WorkflowStatus
from tests.e2e.browser import (
    ARTIFACTS,
    GOAL_TYPE,
    add_reviewer,
    assert_png,
    browser_session,
    chromium,
    finished,
    module_platform,
    skip_without_chromium,
    start_console,
)
from tests.e2e.conftest import Platform
from tests.e2e.reviewing import decide, escalation_of
from tests.waiting import wait_for
from waypost.events import DecisionQualityDrifted, default_codec

skip_without_chromium()
pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REVIEWER = "quinn"
EDITED = {"text": "Edited by a person", "attempt": 1}
DRIFT_CHECK = {
    "WAYPOST_QUALITY_CHECK_INTERVAL_S": "0.5",
    "WAYPOST_QUALITY_MIN_DECISIONS": "2",
    "WAYPOST_QUALITY_REJECT_THRESHOLD": "0.2",
}


@pytest.mark.timeout(300)
def test_the_quality_page_shows_the_rates_after_scripted_decisions(
    broker: Any,
    postgres: Any,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    with module_platform(broker, postgres, tmp_path_factory.mktemp("quality")) as platform:
        # One rejection in four decisions (25 %) is past a 20 % threshold.
        platform.env_overrides.update(DRIFT_CHECK)
        base = start_console(platform, workers=True)
        add_reviewer(platform, REVIEWER)
        token = platform.api_token("reviewer")
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as api:
            workflows = script_decisions(platform, api)
        for workflow_id, wanted in workflows.items():
            assert finished(platform, workflow_id).status is wanted
        (drift,) = announced(platform)
        assert (drift.capability, drift.version, drift.verdict) == ("echo", "test", "rejected")
        assert (drift.count, drift.decided) == (1, 4)

        with (
            chromium() as browser,
            browser_session(browser, base, platform, request, tmp_path, login=REVIEWER) as session,
        ):
            page, watch = session.page, session.watch
            watch.known_paths.update({"/quality", "/quality/decisions"})
            page.click("nav >> text=Quality")

            expect(page).to_have_url(re.compile(r"/quality$"))
            row = page.locator('tr[data-version="echo/test"]')
            # 4 drafts escalated of 7 echo results (the 3 drafts that went on were published).
            for rate, text in {
                "escalated": "57 %",
                "approved": "50 %",
                "edited": "25 %",
                "rejected": "25 %",
                "retried": "0 %",
            }.items():
                expect(row.locator(f'td[data-rate="{rate}"] .rate-value')).to_have_text(text)
            expect(row.locator('td[data-rate="rejected"] svg polyline')).to_have_count(1)
            expect(row.locator(".drift-mark")).to_have_text("rejected 25 % > 20 %")
            distance = row.locator('td[data-rate="distance"] .rate-value').inner_text()
            assert 0 < float(distance) < 1
            shot(page, "quality.png")

            row.locator("text=Decisions").click()
            expect(page).to_have_url(re.compile(r"/quality/decisions\?"))
            expect(page.locator("article.judged")).to_have_count(4)
            rejected = page.locator("article.judged:has(.verdict-rejected)")
            expect(rejected.locator(".reason")).to_have_text("the tone is wrong")
            expect(rejected.locator(".agent-side pre.json")).to_contain_text('"attempt": 1')
            shot(page, "quality-decisions.png")
            watch.assert_quiet()


def announced(platform: Platform) -> list[DecisionQualityDrifted]:
    """The drift events on the workflow events topic, once the check published one."""
    codec = default_codec()
    found: list[DecisionQualityDrifted] = []

    def published() -> bool:
        records = platform.read_topic(platform.topics.workflow_events, expect=1)
        found[:] = [
            payload
            for record in records
            if isinstance(
                payload := codec.decode(record.value, record.headers).payload,
                DecisionQualityDrifted,
            )
        ]
        return bool(found)

    wait_for(published, timeout=60, interval=0.5, what="a decision_quality.drifted event")
    return found


def shot(page: Page, name: str) -> None:
    """A screenshot of the page for the docs (test-artifacts/)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    path.unlink(missing_ok=True)
    page.screenshot(path=str(path), full_page=True, caret="initial")
    assert_png(path)


def script_decisions(platform: Platform, api: httpx.Client) -> dict[str, WorkflowStatus]:
    """Four console workflows whose drafts are approved (2), edited and rejected through
    the API; each workflow id with the status it ends in."""
    plan = [
        ("approve", {}, WorkflowStatus.COMPLETED),
        ("approve", {}, WorkflowStatus.COMPLETED),
        (
            "edit",
            {"output": {"text": "Edited by a person", "attempt": 1}},
            WorkflowStatus.COMPLETED,
        ),
        ("reject", {"reason": "the tone is wrong"}, WorkflowStatus.FAILED),
    ]
    ids = [platform.submit(GOAL_TYPE, {"text": f"quality {uuid.uuid4().hex[:8]}"}) for _ in plan]
    outcome = {}
    for workflow_id, (action, fields, status) in zip(ids, plan, strict=True):
        decide(api, escalation_of(api, workflow_id), action, **fields)
        outcome[workflow_id] = status
    return outcome
