"""The HTTP app's Prometheus metrics: requests by route, and the time reviewers take to
decide. ``/metrics`` serves them with the orchestrator-independent process metrics."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from waypost.telemetry.metrics import CONTENT_TYPE, SECONDS_BUCKETS, exposition

_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    """Request counts and latencies by route template, and decision waits."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "waypost_http_requests_total",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.seconds = Histogram(
            "waypost_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=_REQUEST_BUCKETS,
            registry=registry,
        )
        self.decisions = Histogram(
            "waypost_escalation_decision_seconds",
            "Time from an escalation opening to a reviewer's decision, by action.",
            ["action"],
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )

    def decided(self, action: str, waited_s: float) -> None:
        """Count a reviewer's decision once it committed (``Reviews.on_decided``)."""
        self.decisions.labels(action).observe(waited_s)


class RequestMetrics:
    """ASGI middleware timing every HTTP request by its route template (never by its
    path, which would make a label per escalation id)."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            template = route_template(scope)
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.seconds.labels(method, template).observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The request's path with its path parameters as ``{name}`` (the matched route's
    template, prefix included); ``unmatched`` when no route matched."""
    path: str = scope["path"]
    if path.startswith("/static/"):
        return "/static"
    if "route" not in scope:
        return "unmatched"
    names = {str(value): name for name, value in scope.get("path_params", {}).items()}
    return "/".join(f"{{{names[part]}}}" if part in names else part for part in path.split("/"))


router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response, include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text exposition."""
    registry: CollectorRegistry = request.app.state.metrics.registry
    return Response(exposition(registry), media_type=CONTENT_TYPE)
