"""The orchestrator's decision-quality thread: every ``interval_s`` it measures each
agent version over the window and announces a rejection or edit rate that rose past its
threshold.

One check is one transaction holding an advisory lock (so of several orchestrators one
checks at a time): it reads the window's counts and the stored drift states, asks the
pure rules (``drift.judge``) what changed, and writes the new states, an audit row per
change (``quality_drifted`` / ``quality_recovered``, actor ``waypost:quality``) and, for
each drift, a ``decision_quality.drifted`` event in the outbox. The stored state is what
makes a crossing announced once, across restarts; the events are published after commit
(the relay publishes what is left).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine

from orchestrator.publishing.outbox import OutboxPublisher, OutboxRows
from orchestrator.publishing.records import Outgoing
from orchestrator.quality import store
from orchestrator.quality.drift import DriftChange, DriftPolicy, judge
from orchestrator.quality.report import window_counts
from orchestrator.store import audit, outbox
from orchestrator.store.audit import AuditEntry
from waypost.bus.records import OutgoingRecord
from waypost.events import DecisionQualityDrifted, Event, utcnow
from waypost.outages import Outages, retry_in_place
from waypost.settings import OrchestratorSettings

log = logging.getLogger(__name__)

ACTOR = "waypost:quality"  # the actor of the drift check's audit rows
SOURCE = "waypost/quality"


@dataclass
class DriftWatch:
    """Checks decision quality for drift every ``interval_s``."""

    engine: Engine
    outgoing: Outgoing
    publisher: OutboxPublisher | None
    clock: Callable[[], datetime]
    policy: DriftPolicy
    interval_s: float = 300.0
    outages: Outages = field(default_factory=Outages)

    def run(self, stop: threading.Event) -> None:
        """Check until stopped (a database outage is waited out)."""
        while not stop.is_set():
            try:
                retry_in_place(self.check, outages=self.outages, stop=stop)
            except Exception:
                log.exception("decision quality check failed; trying again")
            stop.wait(self.interval_s)

    def check(self) -> list[DriftChange]:
        """One check: the changes it found, stored, audited and (drifts) announced."""
        now = self.clock()
        with self.engine.begin() as conn:
            store.lock(conn)
            window = window_counts(conn, now=now, window=self.policy.window)
            changes = judge(window, store.drift_states(conn), self.policy)
            store.save_drift_states(conn, states=[c.state(now) for c in changes])
            audit.record(conn, entries=[self._entry(c, now) for c in changes])
            records = [self._record(c, now) for c in changes if c.drifted]
            rows: OutboxRows = list(
                zip(outbox.enqueue(conn, records=records), records, strict=True)
            )
        for change in changes:
            log.warning(
                "decision quality: %s %s %s rate %.0f%% (%d of %d decided) %s threshold %.0f%%",
                change.capability,
                change.version,
                change.verdict,
                change.rate * 100,
                change.count,
                change.decided,
                "rose past" if change.drifted else "fell back below",
                change.threshold * 100,
            )
        if rows and self.publisher is not None:
            self.publisher.publish(rows)
        return changes

    def _record(self, change: DriftChange, now: datetime) -> OutgoingRecord:
        payload = DecisionQualityDrifted(
            capability=change.capability,
            version=change.version,
            verdict=change.verdict,
            rate=change.rate,
            threshold=change.threshold,
            count=change.count,
            decided=change.decided,
            window_start=now - self.policy.window,
            window_end=now,
        )
        event = Event(payload, SOURCE, time=now, subject=f"{change.capability}/{change.version}")
        return self.outgoing.record(self.outgoing.topics.workflow_events, event)

    def _entry(self, change: DriftChange, now: datetime) -> AuditEntry:
        return AuditEntry(
            actor=ACTOR,
            action="quality_drifted" if change.drifted else "quality_recovered",
            detail={
                "capability": change.capability,
                "version": change.version,
                "verdict": change.verdict,
                "rate": round(change.rate, 4),
                "threshold": change.threshold,
                "count": change.count,
                "decided": change.decided,
                "window_s": self.policy.window.total_seconds(),
            },
            at=now,
        )


def drift_watch(
    settings: OrchestratorSettings,
    *,
    engine: Engine,
    outgoing: Outgoing,
    publisher: OutboxPublisher | None,
    outages: Outages,
) -> DriftWatch:
    """The drift check as the settings describe it (``quality_*``)."""
    return DriftWatch(
        engine=engine,
        outgoing=outgoing,
        publisher=publisher,
        clock=utcnow,
        policy=policy_of(settings),
        interval_s=settings.quality_check_interval_s,
        outages=outages,
    )


def policy_of(settings: OrchestratorSettings) -> DriftPolicy:
    """The drift rules the settings describe."""
    return DriftPolicy(
        window=timedelta(seconds=settings.quality_window_s),
        thresholds={
            "rejected": settings.quality_reject_threshold,
            "edited": settings.quality_edit_threshold,
        },
        min_decisions=settings.quality_min_decisions,
    )
