"""When an agent version's rejection or edit rate crossed its threshold (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestrator.quality.counts import Counts
from orchestrator.quality.drift import DriftChange, DriftPolicy, DriftState, StateKey, judge

T0 = datetime(2030, 1, 10, 12, 0, tzinfo=UTC)
POLICY = DriftPolicy(
    window=timedelta(days=7), thresholds={"rejected": 0.2, "edited": 0.5}, min_decisions=5
)


def decided(approved: int = 0, edited: int = 0, rejected: int = 0, retried: int = 0) -> Counts:
    escalated = approved + edited + rejected + retried
    return Counts(
        results=escalated,
        escalated=escalated,
        approved=approved,
        edited=edited,
        rejected=rejected,
        retried=retried,
    )


def stored(changes: list[DriftChange]) -> dict[StateKey, DriftState]:
    return {(c.capability, c.version, c.verdict): c.state(T0) for c in changes}


def test_a_rejection_rate_past_the_threshold_drifts() -> None:
    changes = judge({("drafter", "2"): decided(approved=7, rejected=3)}, {}, POLICY)

    assert changes == [DriftChange("drafter", "2", "rejected", True, 0.3, 0.2, 3, 10)]


def test_at_the_threshold_is_not_past_it() -> None:
    assert judge({("drafter", "2"): decided(approved=8, rejected=2)}, {}, POLICY) == []


def test_an_edit_rate_has_its_own_threshold() -> None:
    changes = judge({("drafter", "2"): decided(approved=4, edited=6)}, {}, POLICY)

    assert [(c.verdict, c.drifted, c.rate) for c in changes] == [("edited", True, 0.6)]


def test_too_few_decisions_are_not_judged() -> None:
    assert judge({("drafter", "2"): decided(rejected=4)}, {}, POLICY) == []


def test_a_drift_is_announced_once_while_the_rate_stays_high() -> None:
    window = {("drafter", "2"): decided(approved=5, rejected=5)}
    first = judge(window, {}, POLICY)

    again = judge(window, stored(first), POLICY)

    assert len(first) == 1
    assert again == []


def test_a_drifted_rate_recovers_only_well_below_the_threshold() -> None:
    drifted = stored(judge({("drafter", "2"): decided(approved=5, rejected=5)}, {}, POLICY))

    # 18 %: below the 20 % threshold but not below 80 % of it (16 %): still drifted.
    hovering = judge({("drafter", "2"): decided(approved=41, rejected=9)}, drifted, POLICY)
    recovered = judge({("drafter", "2"): decided(approved=19, rejected=1)}, drifted, POLICY)

    assert hovering == []
    assert recovered == [DriftChange("drafter", "2", "rejected", False, 0.05, 0.2, 1, 20)]


def test_after_recovering_a_new_crossing_is_announced_again() -> None:
    drifted = stored(judge({("drafter", "2"): decided(approved=5, rejected=5)}, {}, POLICY))
    recovered = stored(judge({("drafter", "2"): decided(approved=20)}, drifted, POLICY))

    again = judge({("drafter", "2"): decided(approved=5, rejected=5)}, recovered, POLICY)

    assert [(c.verdict, c.drifted) for c in again] == [("rejected", True)]


def test_versions_are_judged_apart() -> None:
    window = {
        ("drafter", "1"): decided(approved=10),
        ("drafter", "2"): decided(approved=5, rejected=5),
        ("checker", "2"): decided(approved=5, rejected=5),
    }

    changes = judge(window, {}, POLICY)

    assert [(c.capability, c.version) for c in changes] == [("checker", "2"), ("drafter", "2")]


def test_a_threshold_of_one_never_fires() -> None:
    off = DriftPolicy(window=timedelta(days=7), thresholds={"rejected": 1.0}, min_decisions=1)

    assert judge({("drafter", "2"): decided(rejected=10)}, {}, off) == []
