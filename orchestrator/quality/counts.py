"""The numbers of decision quality and the rates read off them (pure: no I/O).

A *result* is an agent attempt that returned an output. It *escalated* when it waited
for a reviewer (kinds ``RESULT_KINDS``: the agent asked, its confidence was low, or the
step requires approval); escalations of other kinds (every attempt failed, an action a
policy holds, a plan) judge no output and are not counted. A *decided* escalation got a
verdict: approved, edited, rejected or retried.

Rates: the escalation rate is escalated / results; each verdict's rate is its count /
decided. The edit distance is the mean over edited escalations (``distance``).
Agreement is the share of decisions that gave the most common verdict of their day,
counted only on days when at least two different reviewers decided that version's
escalations (one reviewer agreeing with themselves says nothing about agreement).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, timedelta
from typing import Literal

Verdict = Literal["approved", "edited", "rejected", "retried"]
VERDICTS: tuple[Verdict, ...] = ("approved", "edited", "rejected", "retried")
# A reviewer's action (orchestrator/workflow/review.py) and the verdict it counts as.
VERDICT_OF_ACTION: Mapping[str, Verdict] = {
    "approve": "approved",
    "edit": "edited",
    "reject": "rejected",
    "retry": "retried",
}
# Escalation kinds that hold an agent's output for a reviewer.
RESULT_KINDS = ("agent_request", "low_confidence", "approval")
UNKNOWN_VERSION = "unknown"  # a result whose agent did not say its version

Key = tuple[str, str]  # (capability, version)
DayKey = tuple[str, str, date]  # (capability, version, UTC day)


@dataclass(frozen=True, slots=True)
class Counts:
    """What happened to one version's results (over a day, or any span of days)."""

    results: int = 0
    escalated: int = 0
    approved: int = 0
    edited: int = 0
    rejected: int = 0
    retried: int = 0
    edits_measured: int = 0  # edits whose distance is known
    edit_distance_total: float = 0.0
    agreeing: int = 0  # decisions that gave their day's most common verdict...
    compared: int = 0  # ...out of the decisions of days two or more reviewers decided

    @property
    def decided(self) -> int:
        """Escalations a reviewer gave a verdict."""
        return self.approved + self.edited + self.rejected + self.retried

    def verdict(self, verdict: Verdict) -> int:
        """How many decisions gave ``verdict``."""
        count: int = getattr(self, verdict)
        return count

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(Counts)))

    def with_agreement(self, reviewers: int) -> Counts:
        """One day's counts with its agreement filled in, given how many different
        reviewers decided that day."""
        if reviewers < 2 or self.decided < 2:
            return self
        top = max(self.verdict(v) for v in VERDICTS)
        return replace(self, agreeing=top, compared=self.decided)

    def with_edit(self, distance: float) -> Counts:
        """These counts with one more measured edit."""
        return replace(
            self,
            edits_measured=self.edits_measured + 1,
            edit_distance_total=self.edit_distance_total + distance,
        )


@dataclass(frozen=True, slots=True)
class Rates:
    """Shares in [0, 1]; None where nothing was there to divide by."""

    escalation: float | None
    approved: float | None
    edited: float | None
    rejected: float | None
    retried: float | None
    edit_distance: float | None
    agreement: float | None

    @classmethod
    def of(cls, counts: Counts) -> Rates:
        """The rates of some counts."""
        # An escalation is a result even if its attempt's record was not found.
        results = max(counts.results, counts.escalated)
        decided = counts.decided
        return cls(
            escalation=_share(counts.escalated, results),
            approved=_share(counts.approved, decided),
            edited=_share(counts.edited, decided),
            rejected=_share(counts.rejected, decided),
            retried=_share(counts.retried, decided),
            edit_distance=_share(counts.edit_distance_total, counts.edits_measured),
            agreement=_share(counts.agreeing, counts.compared),
        )

    def verdict(self, verdict: Verdict) -> float | None:
        """The rate of one verdict."""
        rate: float | None = getattr(self, verdict)
        return rate


@dataclass(frozen=True, slots=True)
class Day:
    """One UTC day of one version."""

    day: date
    counts: Counts

    @property
    def rates(self) -> Rates:
        """That day's rates."""
        return Rates.of(self.counts)


@dataclass(frozen=True, slots=True)
class VersionSeries:
    """One capability and agent version, day by day (every day of the range, oldest
    first, days without results included)."""

    capability: str
    version: str
    days: tuple[Day, ...]

    @property
    def total(self) -> Counts:
        """The whole range's counts."""
        return total(day.counts for day in self.days)

    @property
    def rates(self) -> Rates:
        """The whole range's rates."""
        return Rates.of(self.total)


def total(counts: Iterable[Counts]) -> Counts:
    """The sum of some counts."""
    summed = Counts()
    for each in counts:
        summed += each
    return summed


def days_ending(last: date, count: int) -> list[date]:
    """``count`` consecutive days up to and including ``last``, oldest first."""
    return [last - timedelta(days=back) for back in range(count - 1, -1, -1)]


def series(by_day: Mapping[DayKey, Counts], days: Sequence[date]) -> list[VersionSeries]:
    """Every version found in ``by_day`` as a series over ``days``, by capability and
    version; counts of days outside ``days`` are left out."""
    keys = sorted({(capability, version) for capability, version, _ in by_day})
    return [
        VersionSeries(
            capability,
            version,
            tuple(Day(day, by_day.get((capability, version, day), Counts())) for day in days),
        )
        for capability, version in keys
    ]


def by_version(by_day: Mapping[DayKey, Counts]) -> dict[Key, Counts]:
    """Day counts summed per (capability, version)."""
    summed: dict[Key, Counts] = {}
    for (capability, version, _), counts in by_day.items():
        summed[(capability, version)] = summed.get((capability, version), Counts()) + counts
    return summed


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None
