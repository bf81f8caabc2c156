"""The steps after detection: summary, credit proposal and the two notices (all pure)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from agents.anomaly import Anomaly, Detection, detect
from agents.billing_summary import SummaryRequest, summarise, summarise_detection
from agents.credit import CreditRequest, issue_credit, propose_credit
from agents.ledger import load_ledger
from agents.notify import (
    OPS_CHANNEL,
    CustomerNotice,
    OpsAlert,
    customer_notice,
    notify_customer,
    notify_ops,
    ops_alert,
)
from tests.agents.environment import context
from waypost import NonRetryableError


def _detection(account_id: str) -> Detection:
    return detect(load_ledger()[account_id])[0]


def _anomaly(charge_id: str, amount: str, expected: str) -> Anomaly:
    return Anomaly(
        charge_id=charge_id,
        date=dt.date(2026, 10, 3),
        description="Protect Plus, monthly",
        amount=Decimal(amount),
        expected=Decimal(expected),
        z_score=12.5,
    )


def test_an_anomaly_is_summarised_with_amounts_and_severity() -> None:
    summary = summarise(_detection("acct-1002"))

    assert summary.severity == "high"
    assert summary.headline == (
        "Northwind Cafe (acct-1002): 1 unusual charge, 420.09 USD above the usual"
    )
    assert "486.00 USD, usually about 65.91 USD (z 127.5)" in summary.text
    assert "1 of 12 charges of Northwind Cafe is at least 3 spreads above" in summary.text


def test_a_clean_account_is_summarised_as_such() -> None:
    summary = summarise(_detection("acct-1001"))

    assert summary.severity == "none"
    assert summary.headline == "Harbor Dental (acct-1001): no unusual charges"


def test_a_small_overcharge_is_of_low_severity() -> None:
    detection = _detection("acct-1002").model_copy(update={"overcharge": Decimal("99.99")})

    assert summarise(detection).severity == "low"


def test_the_summary_handler() -> None:
    output = summarise_detection.run(
        SummaryRequest(detection=_detection("acct-1002")), context("billing.summarise")
    ).output

    assert output.account_id == "acct-1002"
    assert output.severity == "high"


def test_the_credit_is_the_excess_over_the_usual_amount_with_a_stable_id() -> None:
    request = CreditRequest(
        account_id="acct-1002",
        customer="Northwind Cafe",
        currency="USD",
        anomalies=[_anomaly("ch-b", "486.00", "65.91"), _anomaly("ch-a", "100.00", "65.91")],
    )

    note = propose_credit(request)

    assert note.amount == Decimal("454.18")
    assert note.charges == ["ch-a", "ch-b"]
    assert note.credit_id.startswith("cr-")
    reordered = request.model_copy(update={"anomalies": list(reversed(request.anomalies))})
    assert propose_credit(reordered).credit_id == note.credit_id
    other = request.model_copy(update={"account_id": "acct-1003"})
    assert propose_credit(other).credit_id != note.credit_id
    assert "ch-b (486.00 USD, usually 65.91 USD)" in note.reason


def test_the_credit_handler_and_a_request_with_nothing_to_credit() -> None:
    good = CreditRequest(
        account_id="a", customer="C", currency="EUR", anomalies=[_anomaly("c", "50", "10")]
    )
    result = issue_credit.run(good, context("billing.credit"))
    assert result.output.model_dump(mode="json")["amount"] == 40.0

    below = good.model_copy(update={"anomalies": [_anomaly("c", "10", "50")]})
    with pytest.raises(NonRetryableError, match="not above their expected amounts"):
        issue_credit.run(below, context("billing.credit"))


def test_the_ops_alert_carries_the_summary_and_its_urgency() -> None:
    summary = summarise(_detection("acct-1002"))
    alert = OpsAlert(**summary.model_dump())

    notice = ops_alert(alert)

    assert (notice.channel, notice.to, notice.priority) == ("chat", OPS_CHANNEL, "high")
    assert notice.subject == f"[billing high] {summary.headline}"
    assert notice.body.startswith(summary.text)
    assert "waits for approval" in notice.body
    low = ops_alert(alert.model_copy(update={"severity": "low", "channel": "#finance"}))
    assert (low.priority, low.to) == ("normal", "#finance")
    assert notify_ops.run(alert, context("notify.ops")).output == notice


def test_the_customer_email_lists_the_charges_and_promises_a_review_not_a_credit() -> None:
    request = CustomerNotice(
        customer="Northwind Cafe",
        email="owner@northwindcafe.example",
        currency="USD",
        anomalies=[_anomaly("c1", "486.00", "65.91")],
    )

    notice = customer_notice(request)

    assert (notice.channel, notice.to) == ("email", "owner@northwindcafe.example")
    assert notice.body.startswith("Hello Northwind Cafe,")
    assert "a charge on your account that looks unusually high" in notice.body
    assert "486.00 USD (your usual charge is about 65.91 USD)" in notice.body
    assert "credit" not in notice.body.lower()
    two = customer_notice(
        request.model_copy(update={"anomalies": [*request.anomalies, *request.anomalies]})
    )
    assert "2 charges on your account that look unusually high" in two.body
    assert notify_customer.run(request, context("notify.customer")).output == notice
