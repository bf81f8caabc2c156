"""Anomaly detection: leave-one-out z-scores, the shipped ledger, then the handler."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from agents.anomaly import (
    MIN_HISTORY,
    Z_THRESHOLD,
    DetectRequest,
    Ledger,
    detect,
    detect_anomalies,
    read_ledger,
    score_charges,
)
from agents.ledger import Account, Charge, load_ledger
from tests.agents.environment import Environment, context
from waypost import NonRetryableError


def _charges(*amounts: float) -> list[Charge]:
    return [
        Charge(id=f"ch-{i}", date=dt.date(2026, 1, 1) + dt.timedelta(days=30 * i), amount=a)
        for i, a in enumerate(amounts)
    ]


def _account(*amounts: float) -> Account:
    return Account(
        id="acct-x",
        customer="X Ltd",
        email="x@example.org",
        currency="EUR",
        charges=_charges(*amounts),
    )


def test_a_charge_is_scored_against_the_other_charges_only() -> None:
    scores = score_charges(_charges(10, 12, 10, 12, 30))

    last = scores[-1]
    # Mean 11 and sample standard deviation 1.1547 of the four others.
    assert last.expected == Decimal("11.00")
    assert last.spread == pytest.approx(1.1547, abs=1e-4)
    assert last.z_score == pytest.approx((30 - 11) / 1.1547, abs=0.01)


def test_leaving_the_charge_out_lets_a_single_outlier_reach_the_threshold() -> None:
    # With the charge inside its own statistics, 12 charges cap z at 11 / sqrt(12) = 3.18.
    detection, _ = detect(_account(*[50, 52] * 5, 51, 5000))

    assert [a.charge_id for a in detection.anomalies] == ["ch-11"]
    assert detection.anomalies[0].z_score > 100


def test_a_flat_plan_tolerates_a_price_rise_but_not_a_multiple() -> None:
    rise, _ = detect(_account(*[249] * 8, *[259] * 4))
    multiple, _ = detect(_account(*[249] * 11, 498))

    assert not rise.anomalous
    assert [a.charge_id for a in multiple.anomalies] == ["ch-11"]


def test_only_charges_above_the_usual_are_anomalies() -> None:
    detection, _ = detect(_account(100, 101, 99, 100, 102, 98, 1))

    assert not detection.anomalous


def test_the_threshold_decides() -> None:
    charges = (100, 104, 96, 100, 104, 96, 112)
    z = score_charges(_charges(*charges))[-1].z_score
    assert z is not None

    assert detect(_account(*charges), threshold=z)[0].anomalous
    assert not detect(_account(*charges), threshold=z + 0.01)[0].anomalous


def test_the_shortest_history_judged_still_finds_an_outlier() -> None:
    detection, judged = detect(_account(*[40] * MIN_HISTORY, 400))

    assert [a.charge_id for a in detection.anomalies] == [f"ch-{MIN_HISTORY}"]
    assert judged == 1.0


def test_too_short_a_history_judges_nothing() -> None:
    detection, judged = detect(_account(*[10] * MIN_HISTORY))

    assert all(s.z_score is None for s in score_charges(_charges(*[10] * MIN_HISTORY)))
    assert (detection.anomalous, judged) == (False, 0.0)
    assert detect(_account(*[10] * (MIN_HISTORY + 1)))[1] == 1.0


def test_the_overcharge_adds_up_the_excess_of_every_anomaly() -> None:
    detection, _ = detect(_account(*[20] * 10, 200, 220))

    # The larger leaves the baseline first, so its spread does not hide the other.
    assert len(detection.anomalies) == 2
    expected = sum(a.amount - a.expected for a in detection.anomalies)
    assert detection.overcharge == expected.quantize(Decimal("0.01"))


def test_the_shipped_ledger_has_one_obvious_anomaly() -> None:
    found = {
        account_id: [a.charge_id for a in detect(account)[0].anomalies]
        for account_id, account in load_ledger().items()
    }

    assert found == {"acct-1001": [], "acct-1002": ["ch-1002-202610"], "acct-1003": []}


def test_the_handler_checks_a_ledger_account_and_explains() -> None:
    ctx = context("billing.detect", {Ledger: read_ledger(Environment())})

    result = detect_anomalies.run(DetectRequest(account_id="acct-1002"), ctx)

    assert result.confidence == 1.0
    detection = result.output
    assert (detection.customer, detection.currency, detection.threshold) == (
        "Northwind Cafe",
        "USD",
        Z_THRESHOLD,
    )
    assert detection.anomalous
    assert detection.model_dump(mode="json")["anomalies"][0]["amount"] == 486.0
    assert any("486.00 USD, expected about 65.91 USD" in note for note in ctx.notes)


def test_the_handler_checks_charges_given_in_the_goal() -> None:
    ctx = context("billing.detect", {Ledger: Ledger({})})
    request = DetectRequest.model_validate(
        {
            "account_id": "acct-new",
            "customer": "New Co",
            "email": "ap@new.example",
            "currency": "GBP",
            "charges": [
                {"id": f"c{i}", "date": f"2026-0{i + 1}-01", "amount": a}
                for i, a in enumerate([30, 31, 29, 30])
            ],
        }
    )

    result = detect_anomalies.run(request, ctx)

    assert (result.output.account_id, result.output.anomalous, result.confidence) == (
        "acct-new",
        False,
        0.0,
    )
    assert any("too short a history" in note for note in ctx.notes)


@pytest.mark.parametrize(
    ("request_input", "message"),
    [
        ({"account_id": "acct-9999"}, "no account 'acct-9999' in the ledger (known: acct-1001"),
        (
            {"account_id": "a", "charges": [{"id": "c", "date": "2026-01-01", "amount": 1}]},
            "give all four",
        ),
    ],
)
def test_what_cannot_succeed_is_not_retried(request_input: dict[str, object], message: str) -> None:
    ctx = context("billing.detect", {Ledger: read_ledger(Environment())})

    with pytest.raises(NonRetryableError, match=message.replace("(", r"\(")):
        detect_anomalies.run(DetectRequest.model_validate(request_input), ctx)
