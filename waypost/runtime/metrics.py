"""The agent workers' Prometheus metrics."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from waypost.telemetry.metrics import SECONDS_BUCKETS


class AgentMetrics:
    """Tasks run, how long their handlers took, what they spent, policy decisions."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._tasks = Counter(
            "waypost_agent_tasks_total",
            "Tasks an agent worker ran, by capability and outcome "
            "(completed, failed, approval_required).",
            ["capability", "outcome"],
            registry=registry,
        )
        self._seconds = Histogram(
            "waypost_agent_task_duration_seconds",
            "Time an agent's handler took per task (local retries included).",
            ["capability"],
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self._tokens = Counter(
            "waypost_agent_tokens_total",
            "Tokens agents reported using (input and output).",
            ["capability"],
            registry=registry,
        )
        self._cost = Counter(
            "waypost_agent_cost_usd_total",
            "Money agents reported spending.",
            ["capability"],
            registry=registry,
        )
        self._policy = Counter(
            "waypost_policy_decisions_total",
            "Governance decisions on agents' actions, by agent and outcome "
            "(allow, deny, require_approval).",
            ["agent", "outcome"],
            registry=registry,
        )

    def task(
        self,
        capability: str,
        outcome: str,
        seconds: float,
        *,
        tokens: int,
        cost_usd: float,
        agent: str,
        checks: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        """Count one task."""
        self._tasks.labels(capability, outcome).inc()
        self._seconds.labels(capability).observe(seconds)
        if tokens:
            self._tokens.labels(capability).inc(tokens)
        if cost_usd:
            self._cost.labels(capability).inc(cost_usd)
        for check in checks:
            self._policy.labels(agent, str(check["outcome"])).inc()
