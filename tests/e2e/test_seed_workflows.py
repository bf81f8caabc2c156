"""The three built-in workflows end to end: real orchestrator, agent and HTTP processes on
the real broker and PostgreSQL, goals submitted and escalations decided over the JSON API
as a client and a reviewer would."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from orchestrator.workflow.state import TaskStatus, WorkflowStatus
from tests.e2e.conftest import Platform
from tests.e2e.reviewing import (
    BUILTIN_AGENTS,
    decide,
    escalation_of,
    finished,
    serving,
    statuses,
    submit,
)
from tests.waiting import wait_for
from waypost.stack.demo import SAMPLE_HIRES, SAMPLE_TICKETS

pytestmark = pytest.mark.e2e


@pytest.fixture
def api(platform: Platform) -> Iterator[httpx.Client]:
    """Orchestrator, the built-in agents in one worker and `waypost serve`; a client
    with an admin token."""
    with serving(platform, BUILTIN_AGENTS) as client:
        yield client


def test_support_ticket_a_refund_above_the_limit_waits_for_approval(
    platform: Platform, api: httpx.Client
) -> None:
    # Dana's ticket asks for 24.99 USD back: within the default limit of 100.00.
    ticket = SAMPLE_TICKETS[0]
    within_id = submit(api, "support.ticket", ticket)
    above_id = submit(api, "support.ticket", {**ticket, "refund_limit": 20})

    within = finished(platform, within_id)
    assert within.status is WorkflowStatus.COMPLETED, within.reason
    assert within.output is not None
    assert within.output["reply"]["refund"] == {
        "amount": 24.99,
        "currency": "USD",
        "limit": 100.0,
        "within_limit": True,
    }

    escalation = escalation_of(api, above_id)
    assert (escalation["step"], escalation["kind"]) == ("reply", "agent_request")
    assert "refund of 24.99 USD, above the policy limit of 20.00 USD" in escalation["reason"]
    assert escalation["content"]["output"]["refund"]["within_limit"] is False
    decide(api, escalation, "approve")

    above = finished(platform, above_id)
    assert above.status is WorkflowStatus.COMPLETED, above.reason
    assert above.output is not None
    assert "refund 24.99 USD to your original payment method" in above.output["reply"]["body"]


def test_billing_anomaly_notifies_in_parallel_and_credits_only_with_approval(
    platform: Platform, api: httpx.Client
) -> None:
    edited_id = submit(api, "billing.anomaly", {"account_id": "acct-1002"})
    rejected_id = submit(api, "billing.anomaly", {"account_id": "acct-1002"})
    clean_id = submit(api, "billing.anomaly", {"account_id": "acct-1003"})

    clean = finished(platform, clean_id)
    assert clean.status is WorkflowStatus.COMPLETED, clean.reason
    assert statuses(clean) == {
        "detect": "completed",
        "summarise": "completed",
        "notify_ops": "skipped",
        "notify_customer": "skipped",
        "issue_credit": "skipped",
    }
    assert clean.output is not None
    assert (clean.output["anomalous"], clean.output["credit"]) == (False, None)
    assert clean.output["summary"]["severity"] == "none"

    escalation = escalation_of(api, edited_id)
    assert (escalation["step"], escalation["kind"]) == ("issue_credit", "approval")
    proposal = escalation["content"]["output"]
    assert (proposal["account_id"], proposal["amount"], proposal["currency"]) == (
        "acct-1002",
        420.09,
        "USD",
    )
    # The notices do not wait for the credit: both went out while it waits.
    waiting = platform.workflow(edited_id)
    assert waiting is not None
    assert waiting.tasks["issue_credit"].status is TaskStatus.AWAITING_REVIEW
    wait_for(
        lambda: (
            (state := platform.workflow(edited_id)) is not None
            and state.tasks["notify_ops"].status is TaskStatus.COMPLETED
            and state.tasks["notify_customer"].status is TaskStatus.COMPLETED
        ),
        timeout=60,
        what="both notices",
    )
    decide(api, escalation, "edit", output={**proposal, "amount": 400.0})
    decide(api, escalation_of(api, rejected_id), "reject", reason="Customer already refunded.")

    edited = finished(platform, edited_id)
    assert edited.status is WorkflowStatus.COMPLETED, edited.reason
    output = edited.output
    assert output is not None
    assert (output["credit"]["amount"], output["credit_status"]) == (400.0, "completed")
    assert [a["charge_id"] for a in output["anomalies"]] == ["ch-1002-202610"]
    assert output["summary"]["severity"] == "high"
    assert output["ops_alert"]["to"] == "#billing-ops"
    assert output["ops_alert"]["priority"] == "high"
    assert output["customer_email"]["to"] == "owner@northwindcafe.example"
    assert "486.00 USD" in output["customer_email"]["body"]

    rejected = finished(platform, rejected_id)
    assert rejected.status is WorkflowStatus.COMPLETED, rejected.reason
    assert rejected.output is not None
    assert (rejected.output["credit"], rejected.output["credit_status"]) == (None, "skipped")
    assert rejected.output["customer_email"] is not None


def test_employee_onboarding_welcomes_only_after_payroll_is_approved(
    platform: Platform, api: httpx.Client
) -> None:
    hire = SAMPLE_HIRES[0]
    approved_id = submit(api, "employee.onboarding", hire)
    rejected_id = submit(
        api,
        "employee.onboarding",
        {**hire, "name": "Bob Overpaid", "personal_email": "bob@example.org", "salary": 150000},
    )
    refused = api.post(
        "/api/v1/goals",
        json={"type": "employee.onboarding", "input": {**hire, "role": "astronaut"}},
    )
    assert refused.status_code == 422
    assert "astronaut" in refused.text

    escalation = escalation_of(api, approved_id)
    assert (escalation["step"], escalation["kind"]) == ("payroll", "approval")
    assert escalation["content"]["output"]["monthly_gross"] == 7000.0
    waiting = platform.workflow(approved_id)
    assert waiting is not None
    assert waiting.tasks["welcome"].status is TaskStatus.PENDING
    decide(api, escalation, "approve")

    # Outside the pay band the agent says why, on top of the approval every record needs.
    over = escalation_of(api, rejected_id)
    assert over["kind"] == "agent_request"
    assert "above the Software Engineer pay band" in over["reason"]
    assert "requires a reviewer's approval" in over["reason"]
    decide(api, over, "reject", reason="Salary not agreed.")

    approved = finished(platform, approved_id)
    assert approved.status is WorkflowStatus.COMPLETED, approved.reason
    output = approved.output
    assert output is not None
    assert statuses(approved) == dict.fromkeys(
        ("it", "payroll", "facilities", "welcome"), "completed"
    )
    assert output["it"]["username"] == "ada.lovelace"
    assert (
        output["employee_id"] == output["it"]["employee_id"] == output["facilities"]["employee_id"]
    )
    welcome = output["welcome"]
    assert welcome["to"] == "ada@example.org"
    assert welcome["subject"] == "Welcome to Lumen Home, Ada!"
    assert output["facilities"]["badge_id"] in welcome["body"]
    assert "first salary is paid on Monday 25 January 2027" in welcome["body"]

    rejected = finished(platform, rejected_id)
    assert rejected.status is WorkflowStatus.FAILED
    assert rejected.reason is not None
    assert "Salary not agreed." in rejected.reason
    assert rejected.tasks["welcome"].status is TaskStatus.CANCELLED
