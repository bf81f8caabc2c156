"""The LLM planner end to end: a real orchestrator asks a scripted OpenAI-compatible model
(over real HTTP) for plans, a real echo agent runs them, and a reviewer edits a plan in
Chromium before it runs. A valid plan runs; refused plans (unknown capability, a cycle,
an input that breaks the capability's schema) are asked for again with the reasons,
which the API shows with the prompts and answers; a plan needing approval waits in the
console with its picture, a wrong edit is refused with the reasons and the reviewer's
text kept, and the edited plan runs (docs/playbooks.md, "The LLM planner")."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import text

from orchestrator.workflow.state import (
    EscalationState,
    EscalationStatus,
    TaskStatus,
    WorkflowStatus,
)
from tests.e2e.browser import (
    ARTIFACTS,
    Session,
    add_reviewer,
    assert_png,
    browser_session,
    chromium,
    finished,
    module_platform,
    skip_without_chromium,
    start_console,
)
from tests.e2e.conftest import PLAYBOOKS, ROOT, Platform
from tests.support.chat_model import ChatModel, chat_model
from tests.waiting import wait_for

skip_without_chromium()
pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REVIEWER = "petra"
PLANNED = ROOT / "tests" / "e2e" / "playbooks" / "planned"


def echo_step(name: str, text: Any, depends_on: list[str] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "capability": "echo",
        "depends_on": depends_on or [],
        "input": {"text": text},
        "description": f"echo as {name}",
    }


def two_steps() -> dict[str, Any]:
    return {
        "steps": [
            echo_step("first", "$goal.text"),
            echo_step("second", "$steps.first.output.text", ["first"]),
        ],
        "output": {"said": "$steps.second.output.text"},
    }


@dataclass
class Planned:
    """The module's processes, the scripted model, the console and its browser."""

    platform: Platform
    model: ChatModel
    base: str
    browser: Browser

    def token(self) -> str:
        return self.platform.api_token("admin")


@pytest.fixture(scope="module")
def planned(
    broker: Any, postgres: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Planned]:
    with (
        chat_model() as model,
        module_platform(broker, postgres, tmp_path_factory.mktemp("planner")) as platform,
    ):
        platform.env_overrides.update(
            {
                "WAYPOST_LLM_BASE_URL": model.url,
                "WAYPOST_LLM_MODEL": "scripted-model",
                "WAYPOST_PLANNER_POLL_INTERVAL_S": "0.2",
            }
        )
        base = start_console(platform, workers=True, playbooks=(PLAYBOOKS, PLANNED))
        add_reviewer(platform, REVIEWER)
        # The echo worker's input schema is in the catalogue once it announced itself.
        wait_for(lambda: _announced(platform, "echo"), what="the echo worker's announcement")
        with chromium() as browser:
            yield Planned(platform, model, base, browser)


def _announced(platform: Platform, capability: str) -> bool:
    with platform.engine.connect() as conn:
        found = conn.execute(
            text("SELECT count(*) FROM agent_instances WHERE capability = :c"), {"c": capability}
        ).scalar()
    return bool(found)


def _pending_plan(platform: Platform, workflow_id: str) -> EscalationState | None:
    state = platform.workflow(workflow_id)
    pending = [
        e
        for e in (state.escalations.values() if state is not None else ())
        if e.kind == "plan" and e.status is EscalationStatus.PENDING
    ]
    return pending[0] if pending else None


@pytest.fixture
def session(planned: Planned, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    with browser_session(
        planned.browser, planned.base, planned.platform, request, tmp_path, login=REVIEWER
    ) as opened:
        yield opened


def test_a_valid_plan_runs_and_refused_plans_are_asked_for_again(planned: Planned) -> None:
    text = f"plan me {uuid.uuid4().hex[:6]}"
    unknown = {"steps": [{"name": "guess", "capability": "oracle"}]}
    cycle = {"steps": [echo_step("a", "x", ["b"]), echo_step("b", "y", ["a"])]}
    bad_input = {"steps": [echo_step("only", 42)]}
    planned.model.say(
        json.dumps(unknown), json.dumps(cycle), json.dumps(bad_input), json.dumps(two_steps())
    )
    workflow_id = planned.platform.submit("test.planned", {"text": text})

    state = finished(planned.platform, workflow_id)

    # Three refused plans use up planning.attempts (3): the workflow fails with the reasons.
    assert state.status is WorkflowStatus.FAILED, state.reason
    assert state.reason is not None
    assert "planning failed: 3 plan(s)" in state.reason
    assert "text: 42 is not of type" in state.reason
    attempts = httpx.get(
        f"{planned.base}/api/v1/workflows/{workflow_id}/plan-attempts",
        headers={"Authorization": f"Bearer {planned.token()}"},
    ).json()
    assert [a["outcome"] for a in attempts] == ["refused", "refused", "refused"]
    assert "'oracle' is not one this goal type may use" in attempts[0]["problems"][0]
    assert any("cycle" in p for p in attempts[1]["problems"])
    # Each plan after the first was asked for with the reasons of the one before.
    assert "'oracle' is not one this goal type may use" in attempts[1]["prompt"][-1]["content"]
    assert attempts[2]["prompt"][-2] == {"role": "assistant", "content": json.dumps(cycle)}

    # The next goal gets the valid plan (the script's last answer): it runs to the end.
    again = planned.platform.submit("test.planned", {"text": text})
    state = finished(planned.platform, again)
    assert state.status is WorkflowStatus.COMPLETED, state.reason
    assert {n: t.status for n, t in state.tasks.items()} == {
        "first": TaskStatus.COMPLETED,
        "second": TaskStatus.COMPLETED,
    }
    assert state.tasks["second"].input == {"text": text}
    assert state.output == {"said": text}


def test_a_reviewer_edits_a_plan_in_the_browser_and_the_edited_plan_runs(
    planned: Planned, session: Session
) -> None:
    text = f"review my plan {uuid.uuid4().hex[:6]}"
    planned.model.say(json.dumps(two_steps()))
    workflow_id = planned.platform.submit("test.planned.reviewed", {"text": text})
    escalation = wait_for(
        lambda: _pending_plan(planned.platform, workflow_id), what="the plan's escalation"
    )
    waiting = planned.platform.workflow(workflow_id)
    assert waiting is not None
    assert waiting.status is WorkflowStatus.PLANNING

    page = session.page
    url = f"/escalations/{escalation.id}"
    session.watch.known_paths.add(url)
    session.watch.allow_post(f"{url}/decision")
    session.watch.allow_status(422)  # the refused edit below
    page.goto(url)
    expect(page.locator("#output-h")).to_contain_text("Proposed plan")
    picture = page.locator(".plan-picture svg.dag")
    expect(picture.locator("g.dag-node")).to_have_count(2)
    expect(picture).to_contain_text("first")
    expect(picture.locator("path.dag-edge")).to_have_count(1)
    page.locator("details.plan-attempts summary").first.click()
    expect(page.locator("details.plan-attempts")).to_contain_text("Plan 1: accepted")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "plan-escalation.png"
    page.screenshot(path=str(shot), full_page=True, caret="initial")
    assert_png(shot)

    field = page.locator("#edit-output")
    expect(field).to_have_value(re.compile(r'"said": "\$steps.second.output.text"'))
    assert json.loads(field.input_value()) == two_steps()
    submit_edit = page.locator("#edit-form button[type=submit]")
    expect(submit_edit).to_have_text("Approve the edited plan")
    wrong = json.dumps({"steps": [{"name": "x", "capability": "oracle"}]})
    field.fill(wrong)
    submit_edit.click()
    expect(page.locator("#edit-error")).to_contain_text("'oracle' is not one this goal type")
    expect(field).to_have_value(wrong)  # what the reviewer typed is kept
    still = planned.platform.workflow(workflow_id)
    assert still is not None
    assert still.escalations[escalation.id].status is EscalationStatus.PENDING

    edited = {
        "steps": [
            echo_step("shout", "$goal.text"),
            echo_step("whisper", "quietly"),
            echo_step("joined", "$steps.shout.output.text", ["shout", "whisper"]),
        ]
    }
    field.fill(json.dumps(edited))
    page.fill("#edit-reason", "one more step")
    submit_edit.click()
    expect(page.locator(".notice")).to_contain_text("Approved with your edited output")

    state = finished(planned.platform, workflow_id)
    assert state.status is WorkflowStatus.COMPLETED, state.reason
    assert sorted(state.tasks) == ["joined", "shout", "whisper"]
    assert state.tasks["whisper"].input == {"text": "quietly"}
    assert state.tasks["joined"].input == {"text": text}
    decision = state.escalations[escalation.id].decision
    assert decision is not None
    assert (decision.action, decision.reviewer, decision.output) == ("edit", REVIEWER, edited)
    page.goto(url)
    expect(page.locator(".decision")).to_contain_text("edit")
    expect(page).to_have_url(re.compile(f"{url}$"))
    session.watch.assert_quiet()
