"""The escalation page of an action a governance policy holds for approval: it shows the
proposed action instead of an output, offers approve, retry and reject but no edit."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from orchestrator.store import workflows as workflow_rows
from orchestrator.store.workflows import NewWorkflow
from orchestrator.workflow.messages import ActionApproval, TaskAttemptFailed
from orchestrator.workflow.state import EscalationStatus, TaskError
from tests.review_ui.console.conftest import Escalations, assert_safe_page, elements, section
from tests.review_ui.console.test_escalation import current, decide
from waypost.events import new_id, utcnow

pytestmark = pytest.mark.integration

ATTACK = '<script>alert(1)</script><div hx-get="/logout" hx-trigger="load">x</div>'
DIGEST = "c" * 64
REASON = "'refund' needs a human's approval under policy 'billing' v4 require_approval[0]"


def held_for_approval(
    escalations: Escalations,
    *,
    risk: str = "low",
    approvals: int = 1,
    file: str = "policies/billing.yaml",
) -> str:
    """A `test.review` workflow whose draft step stopped at a refund needing approval
    (of ``risk``, by ``approvals`` different reviewers, under a policy in ``file``)."""
    at = utcnow()
    workflow_id = new_id()
    with escalations.engine.begin() as conn:
        escalations.applier.plan_new(
            conn, goals=[NewWorkflow(workflow_id, "test.review", {"subject": "Refund"}, at)], now=at
        )
    with escalations.engine.begin() as conn:
        states = workflow_rows.lock(conn, ids=[workflow_id])
        task = states[workflow_id].tasks["draft"]
        asked = TaskAttemptFailed(
            task.id,
            task.attempt,
            TaskError("ApprovalRequired", REASON, retryable=False),
            ActionApproval(
                "refund",
                DIGEST,
                48,
                REASON,
                scopes=("billing.invoices",),
                rule={
                    "policy": "billing",
                    "file": file,
                    "version": 4,
                    "digest": "d" * 64,
                    "path": "require_approval[0]",
                    "line": 12,
                },
                risk=risk,
                approvals=approvals,
            ),
            reasoning=(f"refund 120 USD {ATTACK}",),
        )
        applied = escalations.applier.apply(
            conn, states=states, inputs=[(workflow_id, asked)], now=at
        )
        assert applied.applied == 1, applied.notes
        (escalation_id,) = states[workflow_id].escalations
    return escalation_id


def test_the_page_shows_the_proposed_action_and_no_edit_form(
    reviewer: TestClient, escalations: Escalations
) -> None:
    escalation_id = held_for_approval(escalations, file=f"policies/{ATTACK}.yaml")

    html = assert_safe_page(reviewer.get(f"/escalations/{escalation_id}"))

    shown = section(html, '<section class="untrusted"')
    assert "Action waiting for approval" in shown
    assert "<code>refund</code>" in shown
    assert f"48 bytes, SHA-256 <code>{DIGEST}</code>" in shown
    assert "billing.invoices" in shown
    assert "policy billing v4 require_approval[0]" in shown
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    assert elements(html, "div", hx_trigger="load") == []
    assert "policy approval" in html
    assert elements(html, "form", id="approve-form")
    assert elements(html, "form", id="retry-form")
    assert elements(html, "form", id="reject-form")
    assert elements(html, "form", id="edit-form") == []
    assert elements(html, "textarea", id="edit-output") == []


def test_an_edit_is_refused_and_an_approval_accepted(
    reviewer: TestClient, engine: Engine, escalations: Escalations
) -> None:
    escalation_id = held_for_approval(escalations)

    refused = decide(reviewer, engine, escalation_id, "edit", output='{"text": "done"}')

    assert refused.status_code == 422  # the page has no edit form; a forged post is refused
    assert current(engine, escalation_id).status is EscalationStatus.PENDING

    approved = decide(reviewer, engine, escalation_id, "approve")

    assert approved.status_code in (200, 303), approved.text
    decided = current(engine, escalation_id)
    assert decided.status is EscalationStatus.DECIDED
    assert decided.decision is not None
    assert (decided.decision.action, decided.decision.reviewer) == ("approve", "rita")
