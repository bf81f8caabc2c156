"""Decision quality as Prometheus gauges, read from PostgreSQL at scrape time over the
drift check's window (``quality_window_s``), at most once per ``max_age_s`` (a scrape in
between gets the last reading: the query scans a window of days).

Registered in the orchestrator's registry next to ``StoreGauges`` (``quality_gauges``);
a scrape while the database is down shows no decision-quality families
(``waypost_store_up`` says why).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from orchestrator.quality import store
from orchestrator.quality.counts import VERDICTS, Counts, Key, Rates
from orchestrator.quality.drift import WATCHED, DriftState, StateKey
from orchestrator.quality.report import window_counts
from waypost.events import utcnow
from waypost.settings import OrchestratorSettings

log = logging.getLogger(__name__)

Reading = tuple[dict[Key, Counts], dict[StateKey, DriftState]]


class QualityGauges(Collector):
    """The decision-quality gauges of every version with escalations in the window."""

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime],
        *,
        window: timedelta,
        max_age_s: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._window = window
        self._max_age_s = max_age_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._reading: Reading | None = None
        self._read_at = 0.0

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """No fixed description: the families are built at collect time."""
        return iter(())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The gauges, from a reading at most ``max_age_s`` old."""
        reading = self._read()
        if reading is not None:
            yield from families(*reading)

    def _read(self) -> Reading | None:
        with self._lock:
            fresh = self._monotonic() - self._read_at < self._max_age_s
            if self._reading is not None and fresh:
                return self._reading
            try:
                with self._engine.connect() as conn:
                    counts = window_counts(conn, now=self._clock(), window=self._window)
                    states = store.drift_states(conn)
            except SQLAlchemyError as exc:
                log.warning("metrics: cannot read decision quality: %s", exc.__class__.__name__)
                return None
            self._reading, self._read_at = (counts, states), self._monotonic()
            return self._reading


def families(
    counts: Mapping[Key, Counts], states: Mapping[StateKey, DriftState]
) -> Iterator[GaugeMetricFamily]:
    """The gauge families of one reading (pure)."""
    labels = ["capability", "version"]
    rate = GaugeMetricFamily(
        "waypost_decision_quality_rate",
        "Share of an agent version's decided escalations (opened in the quality window) "
        "that reviewers approved, edited, rejected or retried.",
        labels=[*labels, "verdict"],
    )
    escalation = GaugeMetricFamily(
        "waypost_decision_quality_escalation_rate",
        "Share of an agent version's results in the quality window that escalated to a reviewer.",
        labels=labels,
    )
    decided = GaugeMetricFamily(
        "waypost_decision_quality_decisions",
        "Escalations of an agent version, opened in the quality window, that a reviewer decided.",
        labels=labels,
    )
    distance = GaugeMetricFamily(
        "waypost_decision_quality_edit_distance",
        "Mean normalised edit distance (0 same, 1 all new) of an agent version's edited "
        "outputs in the quality window.",
        labels=labels,
    )
    agreement = GaugeMetricFamily(
        "waypost_decision_quality_agreement",
        "Share of an agent version's decisions that gave their day's most common verdict, "
        "on days two or more reviewers decided (quality window).",
        labels=labels,
    )
    for (capability, version), each in sorted(counts.items()):
        rates = Rates.of(each)
        decided.add_metric([capability, version], each.decided)
        for verdict in VERDICTS:
            value = rates.verdict(verdict)
            if value is not None:
                rate.add_metric([capability, version, verdict], value)
        for family, value in (
            (escalation, rates.escalation),
            (distance, rates.edit_distance),
            (agreement, rates.agreement),
        ):
            if value is not None:
                family.add_metric([capability, version], value)
    drifted = GaugeMetricFamily(
        "waypost_decision_quality_drifted",
        "1 while an agent version's rejection or edit rate is past its threshold (as the "
        "drift check last found), else 0.",
        labels=[*labels, "verdict"],
    )
    for (capability, version, verdict), state in sorted(states.items()):
        if verdict in WATCHED:
            drifted.add_metric([capability, version, verdict], 1 if state.drifted else 0)
    yield from (rate, escalation, decided, distance, agreement, drifted)


def quality_gauges(settings: OrchestratorSettings, engine: Engine) -> QualityGauges:
    """The gauges over the drift check's window (``quality_window_s``), read at most
    once per ``quality_check_interval_s`` or minute, whichever is shorter."""
    return QualityGauges(
        engine,
        utcnow,
        window=timedelta(seconds=settings.quality_window_s),
        max_age_s=min(60.0, settings.quality_check_interval_s),
    )
