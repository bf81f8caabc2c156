"""Four eyes on the console's escalation page and in bulk: the page says how many
approvals the escalation has and needs and who gave them, tells the reviewer who
approved that a second one must, refuses their second approval, shows the edited output
awaiting approval (escaped) and a policy's risk level; a bulk approval counts as one
approval too."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.workflows import NewWorkflow
from orchestrator.workflow.messages import TaskSucceeded
from orchestrator.workflow.state import EscalationStatus
from tests.review_ui.console.conftest import (
    PLAYBOOKS,
    Escalations,
    assert_safe_page,
    csrf_token,
    elements,
)
from tests.review_ui.console.test_escalation import current, decide
from tests.review_ui.console.test_policy_approval import held_for_approval
from waypost.events import new_id, utcnow

# Many requests each on a fresh app and schema: `make test-slow` (CI runs it).
pytestmark = [pytest.mark.integration, pytest.mark.slow]

GOAL_TYPE = "test.four_eyes"
ATTACK = "<script>alert(1)</script>"


@pytest.fixture
def playbooks(tmp_path: Path) -> PlaybookRegistry:
    """The console tests' playbooks and the review playbook asking for two reviewers."""
    text = (PLAYBOOKS / "review.yaml").read_text()
    four_eyes = text.replace("type: test.review", f"type: {GOAL_TYPE}").replace(
        "      warn_before: 15m\n", "      warn_before: 15m\n      approvals: 2\n"
    )
    assert "approvals: 2" in four_eyes
    (tmp_path / "four_eyes.yaml").write_text(four_eyes)
    return PlaybookRegistry.load([PLAYBOOKS, tmp_path])


def open_four_eyes(escalations: Escalations, subject: str = "Refund for order 42") -> str:
    """A pending escalation of the draft step that needs two reviewers; its id."""
    at = utcnow()
    workflow_id = new_id()
    with escalations.engine.begin() as conn:
        escalations.applier.plan_new(
            conn, goals=[NewWorkflow(workflow_id, GOAL_TYPE, {"subject": subject}, at)], now=at
        )
    with escalations.engine.begin() as conn:
        states = workflow_rows.lock(conn, ids=[workflow_id])
        task = states[workflow_id].tasks["draft"]
        result = TaskSucceeded(task.id, task.attempt, {"text": f"Dear customer: {subject}"}, 0.9)
        applied = escalations.applier.apply(
            conn, states=states, inputs=[(workflow_id, result)], now=at
        )
        assert applied.applied == 1, applied.notes
        (escalation_id,) = states[workflow_id].escalations
    return escalation_id


def four_eyes_box(client: TestClient, escalation_id: str) -> str:
    """The four-eyes part of the escalation page, as ``client``'s user sees it."""
    html = assert_safe_page(client.get(f"/escalations/{escalation_id}"))
    begin = html.index('<div id="four-eyes"')
    return html[begin : html.index('<div class="decide-grid">', begin)]


def test_the_page_counts_approvals_and_tells_the_first_approver_to_wait_for_a_second(
    reviewer: TestClient,
    make_client: Callable[..., TestClient],
    engine: Engine,
    escalations: Escalations,
) -> None:
    escalation_id = open_four_eyes(escalations)
    rob = make_client("rob")
    assert "Approvals: <strong>0 of 2</strong> — 2 different reviewers must approve it" in (
        four_eyes_box(reviewer, escalation_id)
    )

    approved = decide(reviewer, engine, escalation_id, "approve")

    assert approved.status_code == 303, approved.text
    mine = four_eyes_box(reviewer, escalation_id)
    assert "Approvals: <strong>1 of 2</strong> — approved by <strong>rita</strong> at <time" in mine
    assert "You approved it already: a second reviewer must approve it." in mine
    theirs = four_eyes_box(rob, escalation_id)
    assert "approved by <strong>rita</strong>" in theirs
    assert "You approved it already" not in theirs
    assert "Your approval would be 2 of 2." in theirs

    again = decide(reviewer, engine, escalation_id, "approve")

    assert again.status_code == 409
    assert "you approved it already; a second reviewer must approve it" in again.text
    assert current(engine, escalation_id).status is EscalationStatus.PENDING

    assert decide(rob, engine, escalation_id, "approve").status_code == 303
    decided = current(engine, escalation_id)
    assert decided.status is EscalationStatus.DECIDED
    assert [a.reviewer for a in decided.approvals] == ["rita", "rob"]


def test_the_second_reviewer_sees_the_edited_output_awaiting_approval_escaped(
    reviewer: TestClient,
    make_client: Callable[..., TestClient],
    engine: Engine,
    escalations: Escalations,
) -> None:
    escalation_id = open_four_eyes(escalations)
    rob = make_client("rob")

    edited = decide(reviewer, engine, escalation_id, "edit", output=f'{{"text": "{ATTACK}"}}')

    assert edited.status_code == 303, edited.text
    box = four_eyes_box(rob, escalation_id)
    assert "edited by <strong>rita</strong>" in box
    assert "Output awaiting approval, as rita edited it" in box
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in box
    assert ATTACK not in box
    assert "Your edit counts as your approval" in four_eyes_box(reviewer, escalation_id)


def test_an_ordinary_escalation_shows_no_four_eyes_box(
    reviewer: TestClient, escalations: Escalations
) -> None:
    html = reviewer.get(f"/escalations/{escalations.open()}").text

    assert 'id="four-eyes"' not in html


def test_a_policy_approval_shows_the_actions_risk_and_two_reviewers(
    reviewer: TestClient, escalations: Escalations
) -> None:
    escalation_id = held_for_approval(escalations, risk="critical", approvals=2)

    html = assert_safe_page(reviewer.get(f"/escalations/{escalation_id}"))

    (risk,) = elements(html, "p", id="risk")
    assert risk["class"] == "risk risk-critical"
    assert "Risk: <strong>critical</strong>: a person must approve this action" in html
    assert "Approvals: <strong>0 of 2</strong>" in html


def test_a_bulk_approval_is_one_approval(
    reviewer: TestClient, engine: Engine, escalations: Escalations
) -> None:
    escalation_id = open_four_eyes(escalations)

    def bulk_approve() -> str:
        escalation = current(engine, escalation_id)
        selected = f"{escalation_id}:{escalation.version}:{escalation.digest}"
        response = reviewer.post(
            "/inbox/bulk",
            data={"csrf_token": csrf_token(reviewer), "op": "approve", "selected": [selected]},
        )
        assert response.status_code == 200, response.text
        return response.text

    bulk_approve()
    after_first = current(engine, escalation_id)
    refused = bulk_approve()

    assert after_first.status is EscalationStatus.PENDING
    assert [a.reviewer for a in after_first.approvals] == ["rita"]
    assert "409: you approved it already; a second reviewer must approve it" in refused
    assert current(engine, escalation_id) == after_first
