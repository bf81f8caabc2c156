"""The demo ledger: accounts and their charge histories, shipped as
``agents/data/billing_ledger.json`` for the ``billing.anomaly`` workflow.

``acct-1001`` has usage-based charges that vary a little, ``acct-1002`` a steady monthly
plan with one charge of several times the usual amount (the anomaly), ``acct-1003`` a flat
plan whose price rose by 4 % (not an anomaly).
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field, TypeAdapter

from agents.data import read_text
from agents.money import Money


class Charge(BaseModel):
    """One charge on an account."""

    id: str = Field(min_length=1)
    date: dt.date
    description: str = ""
    amount: Money = Field(ge=0)


class Account(BaseModel):
    """A billing account with its charges, oldest first."""

    id: str
    customer: str
    email: str
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    charges: list[Charge]


def load_ledger() -> dict[str, Account]:
    """The shipped demo accounts by id."""
    accounts = TypeAdapter(list[Account]).validate_json(read_text("billing_ledger.json"))
    return {account.id: account for account in accounts}
