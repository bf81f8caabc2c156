"""The ``billing.summarise`` capability: a detection in a few sentences, and how severe it is.

``summarise`` is pure; the reference wording is a template, so the same detection always
gives the same summary.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel

from agents.anomaly import Detection
from agents.money import format_money
from waypost import AgentContext, agent

Severity = Literal["none", "low", "high"]

HIGH_OVERCHARGE = Decimal("100.00")
"""An overcharge of at least this much, in the account's currency, is of high severity."""


class SummaryRequest(BaseModel):
    """Input of ``billing.summarise``: what ``billing.detect`` found."""

    detection: Detection


class BillingSummary(BaseModel):
    """Output of ``billing.summarise``."""

    account_id: str
    severity: Severity
    headline: str
    text: str


def severity(detection: Detection) -> Severity:
    """``high`` from ``HIGH_OVERCHARGE`` on, ``low`` for smaller anomalies, else ``none``."""
    if not detection.anomalous:
        return "none"
    return "high" if detection.overcharge >= HIGH_OVERCHARGE else "low"


def summarise(detection: Detection) -> BillingSummary:
    """The summary of a detection (no I/O)."""
    d = detection
    level = severity(d)
    if not d.anomalous:
        return BillingSummary(
            account_id=d.account_id,
            severity=level,
            headline=f"{d.customer} ({d.account_id}): no unusual charges",
            text=f"All {d.charges_checked} charges of {d.customer} are within "
            f"{d.threshold:g} spreads of the account's usual amount.",
        )
    currency = d.currency
    items = "; ".join(
        f"{a.date} {a.description or a.charge_id}: {format_money(a.amount, currency)}, "
        f"usually about {format_money(a.expected, currency)} (z {a.z_score:.1f})"
        for a in d.anomalies
    )
    count = len(d.anomalies)
    overcharge = format_money(d.overcharge, currency)
    charges, are = ("charge", "is") if count == 1 else ("charges", "are")
    return BillingSummary(
        account_id=d.account_id,
        severity=level,
        headline=f"{d.customer} ({d.account_id}): {count} unusual {charges}, "
        f"{overcharge} above the usual",
        text=f"{count} of {d.charges_checked} charges of {d.customer} {are} at least "
        f"{d.threshold:g} spreads above the account's usual amount: {items}. "
        f"{'Together they exceed' if count > 1 else 'It exceeds'} the usual by {overcharge}.",
    )


@agent("billing.summarise", version="1", description="A billing detection in a few sentences.")
def summarise_detection(request: SummaryRequest, ctx: AgentContext) -> BillingSummary:
    """Summarise what the detection found."""
    summary = summarise(request.detection)
    ctx.note(f"severity {summary.severity} (high from {HIGH_OVERCHARGE} overcharged)")
    return summary
