"""The reply agent's refund rule: a promised refund above the limit asks for a human."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agents.reply import REFUND_LIMIT, ReplyRequest, compose, refund_promise, reply
from tests.agents.environment import context


def _request(**overrides: object) -> ReplyRequest:
    values: dict[str, object] = {
        "subject": "Refund for my returned thermostat",
        "body": "You confirmed my return. Please refund the $249.00 I paid.",
        "customer": "Noor",
        "category": "refund_request",
        "urgency": "normal",
        "articles": [],
    }
    values.update(overrides)
    return ReplyRequest.model_validate(values)


def test_the_default_limit_is_documented_and_applies_when_the_goal_gives_none() -> None:
    assert str(REFUND_LIMIT) == "100.00"
    assert _request().refund_limit == REFUND_LIMIT
    assert _request(refund_limit=None).refund_limit == REFUND_LIMIT


def test_a_refund_above_the_limit_is_promised_and_escalated_with_amount_and_limit() -> None:
    composition = compose(_request())

    refund = composition.reply.refund
    assert refund is not None
    assert (refund.amount, refund.currency, refund.limit, refund.within_limit) == (
        Decimal("249.00"),
        "USD",
        Decimal("100.00"),
        False,
    )
    assert "refund 249.00 USD to your original payment method" in composition.reply.body
    assert composition.escalate is not None
    assert "249.00 USD" in composition.escalate
    assert "policy limit of 100.00 USD" in composition.escalate


def test_a_refund_within_the_limit_is_promised_without_a_human() -> None:
    composition = compose(_request(body="Please refund the duplicate payment of $24.99."))

    assert composition.reply.refund is not None
    assert composition.reply.refund.within_limit
    assert "refund 24.99 USD" in composition.reply.body
    assert composition.escalate is None


def test_the_limit_itself_is_within_it() -> None:
    assert compose(_request(body="Refund the $100.00 please.")).escalate is None
    assert compose(_request(body="Refund the $100.01 please.")).escalate is not None


def test_the_goal_can_raise_or_lower_the_limit() -> None:
    assert compose(_request(refund_limit=500)).escalate is None
    assert compose(_request(body="Refund my €30.", refund_limit=20)).escalate is not None


def test_the_largest_amount_named_is_the_one_checked() -> None:
    body = "I paid $199 and it is now $149. Please refund the difference."

    promise = refund_promise(_request(body=body))

    assert promise is not None
    assert promise.amount == Decimal("199.00")


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"body": "Please refund my payment."}, "no amount"),
        ({"body": "The $249.00 camera is offline.", "subject": "Offline"}, "no refund asked"),
        ({"category": "shipping"}, "not a billing or refund ticket"),
    ],
)
def test_no_promise_without_an_amount_a_request_or_the_right_category(
    overrides: dict[str, object], why: str
) -> None:
    composition = compose(_request(**overrides))

    assert composition.reply.refund is None, why
    assert composition.escalate is None
    assert "original payment method" not in composition.reply.body, why


def test_the_handler_passes_the_escalation_on() -> None:
    result = reply.run(_request(), context("reply"))

    assert result.escalate is not None
    assert "above the policy limit" in result.escalate
    assert result.output.model_dump(mode="json")["refund"] == {
        "amount": 249.0,
        "currency": "USD",
        "limit": 100.0,
        "within_limit": False,
    }
    assert reply.run(_request(refund_limit=300), context("reply")).escalate is None
