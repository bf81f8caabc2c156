"""The ``notify.ops`` and ``notify.customer`` capabilities: the messages a finding sends.

The reference agents write the message and return it; they send nothing (no network),
so a workflow's output shows exactly what would go out. An installation replaces them
with agents of the same capabilities that also deliver the message, keyed by
``ctx.task.task_id`` so a retried task does not send twice.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from agents.anomaly import Anomaly
from agents.billing_summary import Severity
from agents.money import format_money
from waypost import agent

OPS_CHANNEL = "#billing-ops"
SIGNATURE = "Best regards,\nLumen Home Billing"


class Notice(BaseModel):
    """A message as it would be sent."""

    channel: Literal["chat", "email"]
    to: str
    priority: Literal["high", "normal"]
    subject: str
    body: str


class OpsAlert(BaseModel):
    """Input of ``notify.ops``: the summary of a finding."""

    account_id: str
    severity: Severity
    headline: str
    text: str
    channel: str = OPS_CHANNEL


class CustomerNotice(BaseModel):
    """Input of ``notify.customer``: who to tell, and about which charges."""

    customer: str
    email: str = Field(min_length=3)
    currency: str
    anomalies: list[Anomaly] = Field(min_length=1)


def ops_alert(alert: OpsAlert) -> Notice:
    """The operations team's alert: the summary, urgent when the severity is high."""
    return Notice(
        channel="chat",
        to=alert.channel,
        priority="high" if alert.severity == "high" else "normal",
        subject=f"[billing {alert.severity}] {alert.headline}",
        body=alert.text
        if alert.severity == "none"
        else f"{alert.text}\nA credit for the account waits for approval in the review inbox.",
    )


def customer_notice(notice: CustomerNotice) -> Notice:
    """The customer's e-mail: what looks wrong, and that nothing is needed from them.

    It promises a review, not a credit: the credit waits for a person's approval.
    """
    items = "\n".join(
        f"- {a.date}: {a.description or a.charge_id}, {format_money(a.amount, notice.currency)} "
        f"(your usual charge is about {format_money(a.expected, notice.currency)})"
        for a in notice.anomalies
    )
    found = (
        "a charge on your account that looks"
        if len(notice.anomalies) == 1
        else f"{len(notice.anomalies)} charges on your account that look"
    )
    body = "\n\n".join(
        [
            f"Hello {notice.customer},",
            f"Our checks found {found} unusually high:\n{items}",
            "Our billing team is reviewing this now and will contact you with the outcome, "
            "including any correction to your bill. You don't need to do anything.",
            SIGNATURE,
        ]
    )
    return Notice(
        channel="email",
        to=notice.email,
        priority="normal",
        subject="We're reviewing an unusual charge on your account",
        body=body,
    )


@agent("notify.ops", version="1", description="The operations team's alert about a finding.")
def notify_ops(alert: OpsAlert) -> Notice:
    """Write the alert for the operations channel."""
    return ops_alert(alert)


@agent("notify.customer", version="1", description="The customer's e-mail about a finding.")
def notify_customer(notice: CustomerNotice) -> Notice:
    """Write the e-mail to the account's billing contact."""
    return customer_notice(notice)
