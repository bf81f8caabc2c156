"""A governed agent used by docs/governance.md: ``refunds`` asks before each action.

Run it with the stack, its playbook and its policy:

    PYTHONPATH=docs/examples waypost up --agents refunds \\
        --playbooks docs/examples/governance/playbooks \\
        --policies docs/examples/governance/policies
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, Field

from waypost import AgentContext, AgentResult, agent


class RefundRequest(BaseModel):
    """Input of ``refunds``."""

    customer: str = Field(min_length=3)
    invoice: str = Field(min_length=1)
    amount_usd: float = Field(gt=0)


class RefundDone(BaseModel):
    """Output of ``refunds``."""

    refund_id: str
    emailed: bool


@agent("refunds", version="1")
def refunds(request: RefundRequest, ctx: AgentContext) -> AgentResult[RefundDone]:
    """Refund an invoice and tell the customer; governance decides both actions."""
    refund = {"invoice": request.invoice, "amount_usd": request.amount_usd}
    ctx.note(f"refund {request.amount_usd:.2f} USD on invoice {request.invoice}")
    # Refunds wait for a reviewer: the first attempt stops here (ApprovalRequired); once
    # a reviewer approves, the step runs again and this same call is allowed.
    ctx.act("refund", refund, scopes=["billing.invoices"])
    refund_id = issue_refund(refund)
    ctx.act(
        "send_email",
        {"to": request.customer, "template": "refund-issued", "refund": refund_id},
        scopes=["crm.contacts"],
        tokens=800,  # drafting the email with a model, estimated
        cost_usd=0.002,
    )
    ctx.add_usage(input_tokens=650, output_tokens=120, cost_usd=0.0016)  # what it really took
    return AgentResult(RefundDone(refund_id=refund_id, emailed=True), reasoning=["refunded"])


def issue_refund(refund: dict[str, object]) -> str:
    """Stands in for the billing system: the same refund gets the same id."""
    return "rf-" + hashlib.sha256(repr(sorted(refund.items())).encode()).hexdigest()[:10]
