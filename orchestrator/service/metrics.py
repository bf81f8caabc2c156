"""The orchestrator's Prometheus metrics: counters of what committed transactions did,
and gauges read off the tables at scrape time."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from orchestrator.service.observations import Observation
from orchestrator.store import gauges
from waypost.telemetry.metrics import SECONDS_BUCKETS

log = logging.getLogger(__name__)

BREAKER_STATES = ("closed", "open", "half_open")


class OrchestratorMetrics:
    """Counts tasks and workflows; implements ``Observer``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def tasks(name: str, text: str) -> Counter:
            return Counter(name, text, ["capability"], registry=registry)

        self._counters = {
            "dispatched": tasks(
                "waypost_tasks_dispatched_total", "Task attempts dispatched to agents."
            ),
            "redispatched": tasks(
                "waypost_reconciler_redispatches_total",
                "Tasks dispatched again by the reconciler because their lease ran out.",
            ),
            "completed": tasks(
                "waypost_tasks_completed_total", "Task results applied as completed."
            ),
            "failed": tasks("waypost_tasks_failed_total", "Failed task attempts applied."),
            "dead_lettered": tasks(
                "waypost_tasks_dead_lettered_total",
                "Tasks whose attempts ran out, dead-lettered by the orchestrator.",
            ),
        }
        self._escalated = Counter(
            "waypost_escalations_opened_total",
            "Escalations opened, by capability and kind.",
            ["capability", "kind"],
            registry=registry,
        )
        self._task_seconds = Histogram(
            "waypost_task_duration_seconds",
            "From a task attempt's dispatch to its result being applied.",
            ["capability", "outcome"],
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self._workflow_seconds = Histogram(
            "waypost_workflow_duration_seconds",
            "From a goal's acceptance to its workflow completing or failing.",
            ["type", "outcome"],
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )

        self._plans = Counter(
            "waypost_planner_plans_total",
            "Plans the LLM planner asked its model for, by goal type and outcome "
            "(accepted, refused, error).",
            ["type", "outcome"],
            registry=registry,
        )
        self._plan_tokens = Counter(
            "waypost_planner_tokens_total",
            "Tokens the LLM planner's model calls used (prompt and completion), by goal type.",
            ["type"],
            registry=registry,
        )

    def observe(self, observations: Sequence[Observation]) -> None:
        """Count what a committed transaction did."""
        for seen in observations:
            counter = self._counters.get(seen.what)
            if counter is not None:
                counter.labels(seen.label).inc()
            if seen.what in ("completed", "failed") and seen.seconds is not None:
                self._task_seconds.labels(seen.label, seen.what).observe(seen.seconds)
            elif seen.what == "escalated":
                self._escalated.labels(seen.label, seen.detail or "").inc()
            elif seen.what == "plan_asked":
                self._plans.labels(seen.label, seen.detail or "").inc()
                self._plan_tokens.labels(seen.label).inc(seen.tokens)
            elif seen.what.startswith("workflow_") and seen.seconds is not None:
                outcome = seen.what.removeprefix("workflow_")
                self._workflow_seconds.labels(seen.label, outcome).observe(seen.seconds)


class StoreGauges(Collector):
    """Gauges read from PostgreSQL when Prometheus scrapes (nothing when it is down:
    the scrape still answers, with ``waypost_store_up 0``)."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._clock = clock

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """No fixed description: the families are built at collect time."""
        return iter(())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One read of the tables, as gauges."""
        up = GaugeMetricFamily(
            "waypost_store_up", "1 when the last scrape could read PostgreSQL, else 0."
        )
        try:
            with self._engine.connect() as conn:
                snap = gauges.snapshot(conn, now=self._clock())
        except SQLAlchemyError as exc:
            log.warning("metrics: cannot read the database: %s", exc.__class__.__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _families(snap)


def _families(snap: gauges.Snapshot) -> Iterator[GaugeMetricFamily]:
    outbox = GaugeMetricFamily(
        "waypost_outbox_backlog_records",
        "Outbox rows not yet deleted (unpublished, or published moments ago).",
    )
    outbox.add_metric([], snap.outbox_backlog)
    yield outbox
    backlog = GaugeMetricFamily(
        "waypost_capability_backlog_tasks",
        "Tasks dispatched and waiting for a result, or waiting to be retried, by capability.",
        labels=["capability", "status"],
    )
    for (capability, status), count in sorted(snap.task_backlog.items()):
        backlog.add_metric([capability, status], count)
    yield backlog
    pending = GaugeMetricFamily(
        "waypost_escalations_pending",
        "Escalations waiting for a reviewer, by capability and age.",
        labels=["capability", "age_bucket"],
    )
    for (capability, bucket), count in sorted(snap.escalations_pending.items()):
        pending.add_metric([capability, bucket], count)
    yield pending
    breakers = GaugeMetricFamily(
        "waypost_circuit_breaker_state",
        "1 for the state each capability's circuit breaker is in, 0 for the others.",
        labels=["capability", "state"],
    )
    for capability, state in sorted(snap.breakers.items()):
        for known in BREAKER_STATES:
            breakers.add_metric([capability, known], 1 if state == known else 0)
    yield breakers
    tokens = GaugeMetricFamily(
        "waypost_budget_spent_tokens",
        "Tokens each agent has spent today (UTC), as governance counts them.",
        labels=["agent"],
    )
    dollars = GaugeMetricFamily(
        "waypost_budget_spent_usd",
        "Money each agent has spent today (UTC), as governance counts it.",
        labels=["agent"],
    )
    for agent, (used_tokens, used_usd) in sorted(snap.spend_today.items()):
        tokens.add_metric([agent], used_tokens)
        dollars.add_metric([agent], used_usd)
    yield tokens
    yield dollars
    dead = GaugeMetricFamily(
        "waypost_dead_letters",
        "Indexed dead letters by dead-letter topic, error class and status.",
        labels=["topic", "error_class", "status"],
    )
    for (topic, error_class, status), count in sorted(snap.dead_letters.items()):
        dead.add_metric([topic, error_class, status], count)
    yield dead
