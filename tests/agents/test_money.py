"""Amounts of money in text, and the Money type's JSON form."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import BaseModel

from agents.money import Money, cents, find_amounts, format_money


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Please refund the $249.00 I paid.", [("249.00", "USD", "$249.00")]),
        ("It cost €40 and £12.5.", [("40.00", "EUR", "€40"), ("12.50", "GBP", "£12.5")]),
        ("A bundle of $1,249.50 in total", [("1249.50", "USD", "$1,249.50")]),
        (
            "charged 59.99 EUR and USD 10",
            [("59.99", "EUR", "59.99 EUR"), ("10.00", "USD", "USD 10")],
        ),
        ("Order #55120, 3 days late, 2 cameras", []),
        ("version 1.2.3 and 10.5% off", []),
    ],
)
def test_find_amounts(text: str, expected: list[tuple[str, str, str]]) -> None:
    found = [(str(a.value), a.currency, a.written) for a in find_amounts(text)]

    assert found == expected


def test_cents_round_half_away_from_zero() -> None:
    assert cents(Decimal("0.125")) == Decimal("0.13")
    assert cents(Decimal("7000")) == Decimal("7000.00")


def test_format_money() -> None:
    assert format_money(Decimal("1249.5"), "EUR") == "1,249.50 EUR"


def test_money_is_exact_in_python_and_a_number_in_json() -> None:
    class Bill(BaseModel):
        total: Money

    bill = Bill.model_validate({"total": 0.1})

    assert bill.total + Decimal("0.2") == Decimal("0.3")
    assert bill.model_dump(mode="json") == {"total": 0.1}
    assert Bill.model_validate_json(bill.model_dump_json()) == bill
