"""When an agent version's rejection or edit rate crossed its threshold (pure).

The check measures each version over a window (escalations opened in it): a verdict's
rate is its count / decided. A version is judged only once reviewers decided at least
``min_decisions`` of its escalations in the window. It *drifts* when a rate rises past
its threshold (strictly above: a threshold of 1 never fires), and *recovers* only when
the rate falls below ``clear_fraction`` of the threshold, so a rate hovering at the
threshold is announced once, not at every check. Each change is one ``DriftChange``;
the caller stores the new state, audits it and announces drifts
(``decision_quality.drifted``) in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from orchestrator.quality.counts import Counts, Key

CLEAR_FRACTION = 0.8

Watched = Literal["rejected", "edited"]  # the verdicts whose rate can drift
WATCHED: tuple[Watched, ...] = ("rejected", "edited")
StateKey = tuple[str, str, Watched]  # (capability, version, verdict)


@dataclass(frozen=True, slots=True)
class DriftPolicy:
    """What counts as drift: the window, a threshold per watched verdict, the smallest
    sample judged."""

    window: timedelta
    thresholds: Mapping[Watched, float]
    min_decisions: int = 10
    clear_fraction: float = CLEAR_FRACTION


@dataclass(frozen=True, slots=True)
class DriftState:
    """Where a version's verdict rate stood at its last change (stored)."""

    capability: str
    version: str
    verdict: Watched
    drifted: bool
    rate: float
    threshold: float
    count: int
    decided: int
    changed_at: datetime

    @property
    def key(self) -> StateKey:
        """(capability, version, verdict)."""
        return (self.capability, self.version, self.verdict)


@dataclass(frozen=True, slots=True)
class DriftChange:
    """A version's verdict rate crossed its threshold (``drifted``) or fell back."""

    capability: str
    version: str
    verdict: Watched
    drifted: bool
    rate: float
    threshold: float
    count: int
    decided: int

    def state(self, now: datetime) -> DriftState:
        """The state this change leaves."""
        return DriftState(
            self.capability,
            self.version,
            self.verdict,
            self.drifted,
            self.rate,
            self.threshold,
            self.count,
            self.decided,
            now,
        )


def judge(
    window: Mapping[Key, Counts],
    states: Mapping[StateKey, DriftState],
    policy: DriftPolicy,
) -> list[DriftChange]:
    """The changes the window's counts make to the stored states, by capability,
    version and verdict. Versions with too few decisions keep their state."""
    changes: list[DriftChange] = []
    for (capability, version), counts in sorted(window.items()):
        decided = counts.decided
        if decided < policy.min_decisions:
            continue
        for verdict, threshold in policy.thresholds.items():
            count = counts.verdict(verdict)
            rate = count / decided
            before = states.get((capability, version, verdict))
            drifted = before is not None and before.drifted
            if not drifted and rate > threshold:
                now_drifted = True
            elif drifted and rate < threshold * policy.clear_fraction:
                now_drifted = False
            else:
                continue
            changes.append(
                DriftChange(
                    capability, version, verdict, now_drifted, rate, threshold, count, decided
                )
            )
    return changes
