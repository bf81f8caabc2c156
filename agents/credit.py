"""The ``billing.credit`` capability: the credit note that would undo anomalous charges.

The agent proposes; it issues nothing. The ``billing.anomaly`` playbook sends every
proposal to a reviewer (``requires_approval``), who approves it, edits the amount, or
rejects it (the step is then skipped). ``propose_credit`` is pure.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

from pydantic import BaseModel, Field

from agents.anomaly import Anomaly
from agents.money import Money, cents, format_money
from waypost import AgentContext, AgentResult, NonRetryableError, agent


class CreditRequest(BaseModel):
    """Input of ``billing.credit``: the account and its anomalous charges."""

    account_id: str
    customer: str
    currency: str
    anomalies: list[Anomaly] = Field(min_length=1)


class CreditNote(BaseModel):
    """Output of ``billing.credit``: the credit a reviewer approves or edits."""

    credit_id: str
    """The same for the same account and charges: the key that makes issuing it once safe."""
    account_id: str
    amount: Money
    currency: str
    charges: list[str]
    reason: str


def propose_credit(request: CreditRequest) -> CreditNote:
    """Credit what each anomalous charge exceeds its expected amount by (no I/O)."""
    charges = sorted(a.charge_id for a in request.anomalies)
    excess = (max(a.amount - a.expected, Decimal(0)) for a in request.anomalies)
    amount = cents(sum(excess, Decimal(0)))
    if amount <= 0:
        raise NonRetryableError("the anomalous charges are not above their expected amounts")
    key = "\n".join([request.account_id, *charges]).encode()
    listed = ", ".join(
        f"{a.charge_id} ({format_money(a.amount, request.currency)}, usually "
        f"{format_money(a.expected, request.currency)})"
        for a in request.anomalies
    )
    return CreditNote(
        credit_id="cr-" + hashlib.sha256(key).hexdigest()[:12],
        account_id=request.account_id,
        amount=amount,
        currency=request.currency,
        charges=charges,
        reason=f"Charges above {request.customer}'s usual amount: {listed}.",
    )


@agent("billing.credit", version="1", description="The credit that would undo unusual charges.")
def issue_credit(request: CreditRequest, ctx: AgentContext) -> AgentResult[CreditNote]:
    """Propose a credit of the excess over the usual amount; a reviewer decides."""
    note = propose_credit(request)
    ctx.note(
        f"credit {format_money(note.amount, note.currency)}: the excess of "
        f"{len(note.charges)} charge(s) over the account's usual amount"
    )
    return AgentResult(note)
