"""Amounts of money: an exact type for agent models, and reading amounts out of text.

``Money`` is a ``Decimal`` in Python, so sums and comparisons are exact, and a JSON
number in task outputs, so playbook conditions (``gt``, ``lte``) can compare it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import PlainSerializer

Money = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]
"""An exact amount; serialised as a JSON number."""

CENT = Decimal("0.01")

SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP"}
CODES = ("USD", "EUR", "GBP")

_NUMBER = r"(?P<{name}>\d{{1,3}}(?:,\d{{3}})+(?:\.\d{{1,2}})?|\d+(?:\.\d{{1,2}})?)"
_AMOUNT = re.compile(
    r"(?P<symbol>[$€£])\s?" + _NUMBER.format(name="n1") + r"(?!\d)"
    r"|\b(?P<code1>USD|EUR|GBP)\s?" + _NUMBER.format(name="n2") + r"(?!\d)"
    r"|(?<![\d.,])" + _NUMBER.format(name="n3") + r"\s?(?P<code2>USD|EUR|GBP)\b",
)


@dataclass(frozen=True)
class Amount:
    """An amount of money named in a text."""

    value: Decimal
    currency: str
    """ISO code: written out, or read from the symbol (``$`` is taken as USD)."""
    written: str
    """As the text wrote it, e.g. ``$1,249.50``."""


def cents(value: Decimal) -> Decimal:
    """``value`` rounded to whole cents, halves away from zero."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def find_amounts(text: str) -> list[Amount]:
    """Every amount with a currency symbol or code in ``text``, in order of appearance.

    A bare number ("order 55120", "3 days") is not an amount.
    """
    found = []
    for match in _AMOUNT.finditer(text):
        number = match.group("n1") or match.group("n2") or match.group("n3")
        symbol = match.group("symbol")
        currency = SYMBOLS[symbol] if symbol else match.group("code1") or match.group("code2")
        value = cents(Decimal(number.replace(",", "")))
        found.append(Amount(value, currency, match.group(0)))
    return found


def format_money(value: Decimal, currency: str) -> str:
    """``1249.5, "EUR"`` as ``1,249.50 EUR``."""
    return f"{cents(value):,.2f} {currency}"
