"""The numbers of decision quality, their rates and day series (pure)."""

from __future__ import annotations

from datetime import date

import pytest

from orchestrator.quality.counts import (
    Counts,
    Rates,
    by_version,
    days_ending,
    series,
    total,
)

DAY = date(2030, 1, 10)


def test_rates_divide_escalations_by_results_and_verdicts_by_decisions() -> None:
    counts = Counts(results=10, escalated=5, approved=2, edited=1, rejected=1, retried=0)

    rates = Rates.of(counts)

    assert counts.decided == 4
    assert rates.escalation == 0.5
    assert (rates.approved, rates.edited, rates.rejected, rates.retried) == (0.5, 0.25, 0.25, 0.0)
    assert rates.edit_distance is None  # no edit measured
    assert rates.agreement is None  # nobody compared


def test_nothing_to_divide_by_is_no_rate_rather_than_zero() -> None:
    rates = Rates.of(Counts(results=3))

    assert rates.escalation == 0.0
    assert (rates.approved, rates.rejected, rates.edit_distance) == (None, None, None)
    assert Rates.of(Counts()).escalation is None


def test_an_escalation_counts_as_a_result_even_when_its_attempt_was_not_counted() -> None:
    # The escalation rate never passes 100 %.
    assert Rates.of(Counts(results=1, escalated=3)).escalation == 1.0


def test_edit_distances_average_over_measured_edits() -> None:
    counts = Counts(escalated=2, edited=2).with_edit(0.2).with_edit(0.4)

    assert counts.edits_measured == 2
    assert Rates.of(counts).edit_distance == pytest.approx(0.3)


def test_agreement_is_the_share_of_the_days_most_common_verdict() -> None:
    day = Counts(escalated=4, approved=3, rejected=1).with_agreement(reviewers=2)

    assert (day.agreeing, day.compared) == (3, 4)
    assert Rates.of(day).agreement == 0.75


def test_agreement_needs_two_reviewers_and_two_decisions() -> None:
    alone = Counts(escalated=4, approved=3, rejected=1).with_agreement(reviewers=1)
    single = Counts(escalated=1, approved=1).with_agreement(reviewers=2)

    assert Rates.of(alone).agreement is None
    assert Rates.of(single).agreement is None


def test_agreement_over_days_weighs_each_day_by_its_decisions() -> None:
    unanimous = Counts(approved=2).with_agreement(reviewers=2)  # 2 of 2
    split = Counts(approved=3, rejected=3).with_agreement(reviewers=3)  # 3 of 6

    assert Rates.of(unanimous + split).agreement == pytest.approx(5 / 8)


def test_counts_add_field_by_field() -> None:
    one = Counts(results=1, escalated=1, edited=1).with_edit(0.5)
    two = Counts(results=2, approved=1)

    assert total([one, two, Counts()]) == Counts(
        results=3, escalated=1, approved=1, edited=1, edits_measured=1, edit_distance_total=0.5
    )


def test_a_series_lists_every_day_of_the_range_oldest_first() -> None:
    days = days_ending(DAY, 3)
    by_day = {
        ("drafter", "2", date(2030, 1, 9)): Counts(results=4, escalated=1),
        ("drafter", "1", date(2030, 1, 10)): Counts(results=1),
        ("drafter", "1", date(2030, 1, 1)): Counts(results=99),  # before the range
    }

    found = series(by_day, days)

    assert days == [date(2030, 1, 8), date(2030, 1, 9), date(2030, 1, 10)]
    assert [(s.capability, s.version) for s in found] == [("drafter", "1"), ("drafter", "2")]
    assert [d.counts.results for d in found[0].days] == [0, 0, 1]
    assert [d.counts.escalated for d in found[1].days] == [0, 1, 0]
    assert found[1].total == Counts(results=4, escalated=1)
    assert found[1].rates.escalation == 0.25


def test_counts_by_version_sum_the_days() -> None:
    by_day = {
        ("drafter", "1", date(2030, 1, 9)): Counts(results=1, escalated=1, rejected=1),
        ("drafter", "1", date(2030, 1, 10)): Counts(results=2, escalated=1, approved=1),
        ("checker", "1", date(2030, 1, 10)): Counts(results=5),
    }

    assert by_version(by_day) == {
        ("drafter", "1"): Counts(results=3, escalated=2, approved=1, rejected=1),
        ("checker", "1"): Counts(results=5),
    }
