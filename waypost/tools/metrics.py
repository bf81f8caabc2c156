"""Prometheus metrics of MCP tool calls (the registry is passed in, never global)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from waypost.telemetry.metrics import SECONDS_BUCKETS


class ToolMetrics:
    """Tool calls, their failures and latency, by server and tool."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._calls = Counter(
            "waypost_tool_calls_total",
            "MCP tool calls agents asked for, by server, tool and outcome (ok, tool_error: "
            "the tool said it failed, refused: governance or the input schema said no, "
            "awaiting_approval: held for a reviewer, unavailable: timeout, crash or garbage).",
            ["server", "tool", "outcome"],
            registry=registry,
        )
        self._seconds = Histogram(
            "waypost_tool_call_duration_seconds",
            "Time MCP tool calls took at the server (connecting included), by server and tool.",
            ["server", "tool"],
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )

    def call(self, server: str, tool: str, outcome: str, seconds: float | None) -> None:
        """Count one call (``seconds`` None: it never reached the server)."""
        self._calls.labels(server, tool, outcome).inc()
        if seconds is not None:
            self._seconds.labels(server, tool).observe(seconds)
