"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from orchestrator.dead_letters.replay import Replayer
from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.playbooks.versions import PlaybookVersions
from orchestrator.publishing.outbox import OutboxPublisher
from orchestrator.publishing.records import Outgoing
from orchestrator.review import Reviews
from review_ui import a2a, console, hooks, openapi, problems
from review_ui.api import (
    dead_letters,
    escalations,
    goals,
    governance,
    health,
    quality,
    schedules,
    workflow_actions,
    workflows,
)
from review_ui.api.agents import router as agents_router
from review_ui.api.breakers import router as breakers_router
from review_ui.deps import AppState
from review_ui.mcp_server import http as mcp_server
from review_ui.metrics import HttpMetrics, RequestMetrics
from review_ui.metrics import router as metrics_router
from review_ui.replays import ReplayRunner
from review_ui.security import SecurityHeaders
from waypost.bus.base import Admin, Publisher
from waypost.events import default_codec, utcnow
from waypost.settings import HttpSettings
from waypost.telemetry import NO_TRACING, Tracing
from waypost.telemetry.metrics import new_registry
from waypost.topics import Topics


def create_app(
    settings: HttpSettings,
    *,
    engine: Engine,
    admin: Admin,
    playbooks: PlaybookRegistry,
    publisher: Publisher | None = None,
    tracing: Tracing = NO_TRACING,
    registry: CollectorRegistry | None = None,
) -> FastAPI:
    """The HTTP app on the given engine and broker clients.

    With a ``publisher``, accepted goals are sent to the broker at once; without one
    they wait for the orchestrator's outbox relay (so do replayed dead letters).
    Requests are traced with ``tracing`` and counted in ``registry`` (a new one if
    none), which ``/metrics`` serves.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.replays.resume_unfinished()
        async with mcp.running():
            yield
        state.replays.close()

    app = FastAPI(
        lifespan=lifespan,
        title="Waypost",
        version="0.1.0",
        description="Submit goals, follow the workflows they become, and review "
        "escalations, search and replay dead letters. Authenticate with "
        "`Authorization: Bearer <token>` (`waypost token create --role ROLE`) or the "
        "console's session cookie. Every error is an `application/problem+json` document "
        "(RFC 9457) with the status each operation lists; a method a path does not serve "
        "is 405 with `Allow`.",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    metrics = HttpMetrics(registry if registry is not None else new_registry())
    outgoing = Outgoing(
        Topics(settings.namespace), default_codec(), source="waypost/http", tracing=tracing
    )
    outbox = OutboxPublisher(engine, publisher) if publisher is not None else None
    replayer = Replayer(
        engine=engine,
        codec=default_codec(),
        namespace=settings.namespace,
        admin=admin,
        publisher=outbox,
        clock=utcnow,
        max_replays=settings.dlq_max_replays,
        default_partitions=settings.topic_partitions,
        tracing=tracing,
    )
    state = AppState(
        settings=settings,
        engine=engine,
        playbooks=playbooks,
        outgoing=outgoing,
        admin=admin,
        publisher=outbox,
        reviews=Reviews(PlaybookVersions(playbooks), outgoing, on_decided=metrics.decided),
        replays=ReplayRunner(replayer),
    )
    app.state.waypost = state
    app.state.metrics = metrics
    problems.install(app)
    openapi.install(app)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestMetrics, metrics=metrics)
    for router in (
        goals.router,
        workflows.router,
        workflow_actions.router,
        escalations.router,
        dead_letters.router,
        governance.router,
        quality.router,
    ):
        app.include_router(router, prefix="/api/v1")
    app.include_router(agents_router, prefix="/api/v1")
    app.include_router(schedules.router, prefix="/api/v1")
    app.include_router(hooks.router)
    app.include_router(breakers_router, prefix="/api/v1")
    app.include_router(health.router)
    app.include_router(metrics_router)
    console.install(app)
    a2a.install(app)
    mcp = mcp_server.install(app)
    if tracing.provider is not None:
        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=tracing.provider, excluded_urls="healthz,readyz,metrics,static"
        )
    return app
