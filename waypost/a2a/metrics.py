"""Prometheus metrics of A2A delegations (the registry is passed in, never global)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from waypost.telemetry.metrics import SECONDS_BUCKETS


class BridgeMetrics:
    """Delegations to remote agents, by agent, skill and outcome, and their latency."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._calls = Counter(
            "waypost_a2a_delegations_total",
            "Task attempts a bridge delegated to a remote A2A agent, by agent, skill and "
            "outcome (completed, failed: the remote task failed, refused: governance, the "
            "remote agent or the bridge's config said no, input_required: waits for a "
            "reviewer, awaiting_approval: a policy holds it, unavailable: unreachable, "
            "garbage or too slow, cancelled: its workflow was cancelled).",
            ["agent", "skill", "outcome"],
            registry=registry,
        )
        self._seconds = Histogram(
            "waypost_a2a_delegation_duration_seconds",
            "Time an attempt spent with the remote agent (sending and following its task).",
            ["agent", "skill"],
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )

    def delegation(self, agent: str, skill: str, outcome: str, seconds: float | None) -> None:
        """Count one attempt (``seconds`` None: it never reached the remote agent)."""
        self._calls.labels(agent, skill, outcome).inc()
        if seconds is not None:
            self._seconds.labels(agent, skill).observe(seconds)
