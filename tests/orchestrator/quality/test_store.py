"""Decision quality read off the real PostgreSQL: results and escalations of scripted
agent versions, decided through ``Reviews``, bucketed by UTC day; the agent's reasoning
next to each verdict."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import Engine

from orchestrator.quality import store
from orchestrator.quality.counts import Counts
from orchestrator.quality.distance import edit_distance
from orchestrator.quality.report import quality_report, window_counts
from orchestrator.quality.store import Scope
from tests.orchestrator.quality.scripted import CAPABILITY, T0, Scripted

pytestmark = pytest.mark.integration

YESTERDAY = T0 - timedelta(days=1)
NOW = T0 + timedelta(hours=1)
PROPOSED = "Dear customer, your refund is on its way."
EDITED = "Dear customer, your refund of 40 EUR is on its way."


@pytest.fixture
def scripted(engine: Engine, namespace: str) -> Scripted:
    """Version 1 yesterday: 4 results, 2 escalated, approved by rita and rejected by rob.
    Version 2 today: 4 results, 3 escalated: edited, retried (both by rita), pending."""
    scripted = Scripted(engine, namespace)
    for _ in range(2):
        assert scripted.result("1", at=YESTERDAY, confidence=0.95) is None
    approved, rejected = scripted.escalated("1", 2, at=YESTERDAY)
    scripted.decide(approved, "approve", reviewer="rita", at=YESTERDAY)
    scripted.decide(rejected, "reject", reviewer="rob", at=YESTERDAY)
    assert scripted.result("2", at=T0, confidence=0.9) is None
    for minutes, action in enumerate(("edit", "retry", None)):
        at = T0 + timedelta(minutes=minutes)
        (escalation,) = scripted.escalated("2", 1, at=at)
        if action is not None:
            output = {"text": EDITED} if action == "edit" else None
            scripted.decide(escalation, action, reviewer="rita", at=at, output=output)
    return scripted


def test_every_version_is_counted_per_day(engine: Engine, scripted: Scripted) -> None:
    with engine.connect() as conn:
        found = store.day_counts(conn, scope=Scope(YESTERDAY - timedelta(hours=9), NOW))

    assert found == {
        (CAPABILITY, "1", date(2030, 1, 9)): Counts(
            results=4, escalated=2, approved=1, rejected=1, agreeing=1, compared=2
        ),
        (CAPABILITY, "2", date(2030, 1, 10)): Counts(
            results=4,
            escalated=3,
            edited=1,
            retried=1,
            edits_measured=1,
            edit_distance_total=edit_distance({"text": PROPOSED}, {"text": EDITED}),
        ),
    }


def test_the_report_has_the_rates_of_each_version_over_the_days(
    engine: Engine, scripted: Scripted
) -> None:
    with engine.connect() as conn:
        report = quality_report(conn, now=NOW, days=2)

    assert report.days == (date(2030, 1, 9), date(2030, 1, 10))
    first, second = report.versions
    assert (first.capability, first.version, second.version) == (CAPABILITY, "1", "2")
    assert [day.counts.escalated for day in first.series.days] == [2, 0]
    assert [day.counts.escalated for day in second.series.days] == [0, 3]
    one, two = first.series.rates, second.series.rates
    assert (one.escalation, one.approved, one.rejected, one.agreement) == (0.5, 0.5, 0.5, 0.5)
    assert (two.escalation, two.edited, two.retried, two.approved) == (0.75, 0.5, 0.5, 0.0)
    assert two.edit_distance == edit_distance({"text": PROPOSED}, {"text": EDITED}) > 0
    assert two.agreement is None  # one reviewer decided version 2
    assert first.drifts == second.drifts == ()


def test_the_report_filters_by_capability_version_and_days(
    engine: Engine, scripted: Scripted
) -> None:
    with engine.connect() as conn:
        only_two = quality_report(conn, now=NOW, days=2, version="2")
        today = quality_report(conn, now=NOW, days=1)
        other = quality_report(conn, now=NOW, days=2, capability="checker")

    assert [v.version for v in only_two.versions] == ["2"]
    assert [v.version for v in today.versions] == ["2"]
    assert other.versions == ()


def test_days_out_of_range_are_refused(engine: Engine) -> None:
    with engine.connect() as conn, pytest.raises(ValueError, match="between 1 and 90"):
        quality_report(conn, now=NOW, days=91)


def test_the_window_counts_sum_the_versions(engine: Engine, scripted: Scripted) -> None:
    with engine.connect() as conn:
        window = window_counts(conn, now=NOW, window=timedelta(hours=2))

    assert set(window) == {(CAPABILITY, "2")}  # yesterday is out of the window
    assert window[(CAPABILITY, "2")].decided == 2


def test_each_verdict_sits_next_to_the_agents_reasoning(engine: Engine, scripted: Scripted) -> None:
    with engine.connect() as conn:
        found = store.judged(conn, scope=Scope(YESTERDAY, NOW, capability=CAPABILITY, version="2"))

    assert [j.verdict for j in found] == [None, "retried", "edited"]  # newest first
    edited = found[-1]
    assert edited.reasoning == ["the order was paid twice"]
    assert edited.confidence == 0.5
    assert edited.proposed == {"text": PROPOSED}
    assert edited.edited == {"text": EDITED}
    assert edited.reviewer == "rita"
    assert edited.edit_distance == edit_distance({"text": PROPOSED}, {"text": EDITED})
    assert found[0].status == "pending"
    assert found[0].reviewer is None


def test_a_rejection_shows_the_reviewers_reason(engine: Engine, scripted: Scripted) -> None:
    with engine.connect() as conn:
        found = store.judged(conn, scope=Scope(YESTERDAY, NOW, version="1"))

    rejected = [j for j in found if j.verdict == "rejected"]
    assert [(j.reviewer, j.reason) for j in rejected] == [("rob", "wrong amount")]
