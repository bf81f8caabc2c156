"""The decision-quality gauges, read from the real PostgreSQL at scrape time (at most
once per max_age_s), and their families (pure)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from orchestrator.quality.counts import Counts
from orchestrator.quality.drift import DriftState, StateKey
from orchestrator.quality.metrics import QualityGauges, families
from tests.orchestrator.quality.scripted import CAPABILITY, T0, Scripted

NOW = T0 + timedelta(hours=1)
LABELS = {"capability": CAPABILITY, "version": "2"}


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, {**LABELS, **labels})


def test_the_families_show_rates_decisions_and_drift() -> None:
    counts = {
        (CAPABILITY, "2"): Counts(results=8, escalated=4, approved=2, edited=1, rejected=1)
        .with_edit(0.25)
        .with_agreement(reviewers=2)
    }
    states: dict[StateKey, DriftState] = {
        (CAPABILITY, "2", "rejected"): DriftState(
            CAPABILITY, "2", "rejected", True, 0.25, 0.2, 1, 4, NOW
        )
    }

    found = {f.name: f for f in families(counts, states)}

    def value(name: str, **labels: str) -> float:
        (match,) = [s.value for s in found[name].samples if s.labels == {**LABELS, **labels}]
        return match

    assert value("waypost_decision_quality_rate", verdict="approved") == 0.5
    assert value("waypost_decision_quality_rate", verdict="retried") == 0.0
    assert value("waypost_decision_quality_escalation_rate") == 0.5
    assert value("waypost_decision_quality_decisions") == 4
    assert value("waypost_decision_quality_edit_distance") == 0.25
    assert value("waypost_decision_quality_agreement") == 0.5
    assert value("waypost_decision_quality_drifted", verdict="rejected") == 1


def test_a_version_without_decisions_has_no_verdict_rates() -> None:
    found = {f.name: f for f in families({(CAPABILITY, "2"): Counts(results=3)}, {})}

    assert found["waypost_decision_quality_rate"].samples == []
    assert [s.value for s in found["waypost_decision_quality_escalation_rate"].samples] == [0.0]


@pytest.mark.integration
def test_a_scrape_reads_the_window_and_keeps_the_reading_for_max_age(
    engine: Engine, namespace: str
) -> None:
    scripted = Scripted(engine, namespace)
    for escalation, action in zip(scripted.escalated("2", 2), ("approve", "reject"), strict=True):
        scripted.decide(escalation, action)
    clock = [0.0]
    registry = CollectorRegistry()
    registry.register(
        QualityGauges(
            engine,
            lambda: NOW,
            window=timedelta(days=1),
            max_age_s=60,
            monotonic=lambda: clock[0],
        )
    )

    first = sample(registry, "waypost_decision_quality_rate", verdict="rejected")
    (more,) = scripted.escalated("2", 1)
    scripted.decide(more, "reject")
    clock[0] = 30.0
    cached = sample(registry, "waypost_decision_quality_rate", verdict="rejected")
    clock[0] = 61.0
    fresh = sample(registry, "waypost_decision_quality_rate", verdict="rejected")

    assert first == cached == 0.5
    assert fresh == pytest.approx(2 / 3)
    assert sample(registry, "waypost_decision_quality_decisions") == 3
