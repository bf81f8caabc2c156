"""The ``billing.detect`` capability: charges far above an account's usual amount.

Each charge is scored against the account's other charges: its z-score is
``(amount - mean) / spread``, where mean and sample standard deviation are those of the
other charges. A charge at or above ``Z_THRESHOLD`` is an anomaly. Anomalies leave the
baseline one at a time, the most extreme first, and the rest are scored again, so two
anomalies do not hide each other by inflating the spread (as in the generalised ESD
test). ``score_charges`` is pure; the handler adds the account lookup and the notes.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, Field

from agents.ledger import Account, Charge, load_ledger
from agents.money import Money, cents, format_money
from waypost import AgentContext, AgentEnvironment, AgentResult, NonRetryableError, agent

Z_THRESHOLD = 3.0
"""A charge this many spreads above the mean of the account's other charges is an anomaly.

Three standard deviations: under a normal spread of amounts about one charge in 700 would
pass it by chance, so an account billed monthly sees a false alarm every sixty years or so.
"""

MIN_HISTORY = 4
"""Other charges needed before a charge is judged; with fewer the mean says little."""

MIN_SPREAD_SHARE = 0.05
"""The spread is at least this share of the mean.

A flat plan's charges have a standard deviation of zero, which would make a one-cent
change infinitely unusual. With 5 %, a flat plan's charge must be 15 % above the usual
price (at ``Z_THRESHOLD`` 3) to count: a normal price rise is not an anomaly, a charge of
several times the price is.
"""

MIN_SPREAD = 0.01
"""The spread is never below one cent (an account of zero charges)."""


class DetectRequest(BaseModel):
    """Input of ``billing.detect``: an account of the shipped ledger, or charges to check."""

    account_id: str = Field(min_length=1)
    threshold: float = Field(default=Z_THRESHOLD, gt=0)
    charges: list[Charge] | None = None
    """Check these charges instead of the ledger's (then customer, email and currency
    describe the account)."""
    customer: str | None = None
    email: str | None = None
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")


class Anomaly(BaseModel):
    """A charge far above the account's usual amount."""

    charge_id: str
    date: dt.date
    description: str
    amount: Money
    expected: Money
    """The mean of the account's other charges."""
    z_score: float


class Detection(BaseModel):
    """Output of ``billing.detect``."""

    account_id: str
    customer: str
    email: str
    currency: str
    charges_checked: int
    threshold: float
    anomalous: bool
    anomalies: list[Anomaly]
    overcharge: Money
    """How much the anomalous charges exceed their expected amounts, together."""


@dataclass(frozen=True)
class ChargeScore:
    """One charge against the account's usual charges."""

    charge: Charge
    expected: Decimal
    """The mean of the baseline without this charge."""
    spread: float
    z_score: float | None
    """None when there were fewer than ``MIN_HISTORY`` charges to compare with."""
    anomalous: bool


def score_charges(
    charges: Sequence[Charge], *, threshold: float = Z_THRESHOLD
) -> list[ChargeScore]:
    """Each charge's z-score against the account's usual charges (no I/O).

    The baseline starts as every charge; each is measured against the baseline without
    itself, because a charge inside its own statistics can never score above
    (n - 1) / sqrt(n), 3.2 for a year of monthly bills, however large it is. While the
    highest score reaches ``threshold`` and more than ``MIN_HISTORY`` charges would
    remain, that charge leaves the baseline and all are scored again.
    """
    amounts = [float(charge.amount) for charge in charges]
    baseline = set(range(len(charges)))
    while True:
        z_scores = [_z_score(amounts, i, baseline)[2] for i in range(len(charges))]
        candidates = [i for i in baseline if (z_scores[i] or 0.0) >= threshold]
        if not candidates or len(baseline) - 1 <= MIN_HISTORY:
            break
        baseline.remove(max(candidates, key=lambda i: (z_scores[i], -i)))
    scores = []
    for i, charge in enumerate(charges):
        mean, spread, z_score = _z_score(amounts, i, baseline)
        anomalous = z_score is not None and z_score >= threshold
        scores.append(ChargeScore(charge, cents(Decimal(repr(mean))), spread, z_score, anomalous))
    return scores


def _z_score(amounts: list[float], i: int, baseline: set[int]) -> tuple[float, float, float | None]:
    others = [amounts[j] for j in sorted(baseline) if j != i]
    if len(others) < MIN_HISTORY:
        return 0.0, 0.0, None
    mean = statistics.fmean(others)
    spread = max(statistics.stdev(others), MIN_SPREAD_SHARE * abs(mean), MIN_SPREAD)
    return mean, spread, round((amounts[i] - mean) / spread, 2)


def detect(account: Account, *, threshold: float = Z_THRESHOLD) -> tuple[Detection, float]:
    """The anomalies of an account, and the share of its charges that could be judged."""
    scores = score_charges(account.charges, threshold=threshold)
    anomalies = [
        Anomaly(
            charge_id=s.charge.id,
            date=s.charge.date,
            description=s.charge.description,
            amount=s.charge.amount,
            expected=s.expected,
            z_score=s.z_score,
        )
        for s in scores
        if s.anomalous and s.z_score is not None
    ]
    judged = sum(1 for s in scores if s.z_score is not None)
    detection = Detection(
        account_id=account.id,
        customer=account.customer,
        email=account.email,
        currency=account.currency,
        charges_checked=len(scores),
        threshold=threshold,
        anomalous=bool(anomalies),
        anomalies=anomalies,
        overcharge=cents(sum((a.amount - a.expected for a in anomalies), Decimal(0))),
    )
    return detection, (judged / len(scores) if scores else 0.0)


@dataclass(frozen=True)
class Ledger:
    """The shipped demo accounts, read once per worker."""

    accounts: dict[str, Account]

    def account(self, request: DetectRequest) -> Account:
        """The account to check: the request's own charges, else the ledger's."""
        if request.charges is not None:
            if not (request.customer and request.email and request.currency):
                raise NonRetryableError(
                    "charges given without customer, email and currency; give all four"
                )
            return Account(
                id=request.account_id,
                customer=request.customer,
                email=request.email,
                currency=request.currency,
                charges=request.charges,
            )
        try:
            return self.accounts[request.account_id]
        except KeyError:
            known = ", ".join(sorted(self.accounts))
            raise NonRetryableError(
                f"no account {request.account_id!r} in the ledger (known: {known}); "
                "give the account's charges in the goal instead"
            ) from None


@agent("billing.detect", version="1", description="Charges far above an account's usual.")
def detect_anomalies(request: DetectRequest, ctx: AgentContext) -> AgentResult[Detection]:
    """Score every charge of the account against its other charges."""
    account = ctx.resource(Ledger).account(request)
    detection, judged = detect(account, threshold=request.threshold)
    ctx.note(
        f"{detection.charges_checked} charge(s) of {account.id} scored against the others "
        f"(anomaly at z >= {request.threshold:g})"
    )
    for anomaly in detection.anomalies:
        ctx.note(
            f"{anomaly.charge_id} on {anomaly.date}: "
            f"{format_money(anomaly.amount, account.currency)}, expected about "
            f"{format_money(anomaly.expected, account.currency)} (z {anomaly.z_score:.1f})"
        )
    if judged < 1:
        ctx.note(f"fewer than {MIN_HISTORY + 1} charges: too short a history to judge")
    elif not detection.anomalous:
        ctx.note("nothing unusual")
    return AgentResult(detection, confidence=round(judged, 3))


@detect_anomalies.setup
def read_ledger(env: AgentEnvironment) -> Ledger:
    """Read the shipped demo ledger once per worker."""
    return Ledger(load_ledger())
