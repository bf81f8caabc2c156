"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.service.outgoing import Outgoing
from orchestrator.service.publishing import OutboxPublisher
from review_ui import problems
from review_ui.api import goals, health, workflows
from review_ui.deps import AppState
from waypost.bus.base import Admin, Publisher
from waypost.events import default_codec
from waypost.settings import HttpSettings
from waypost.topics import Topics


def create_app(
    settings: HttpSettings,
    *,
    engine: Engine,
    admin: Admin,
    playbooks: PlaybookRegistry,
    publisher: Publisher | None = None,
) -> FastAPI:
    """The HTTP app on the given engine and broker clients.

    With a ``publisher``, accepted goals are sent to the broker at once; without one
    they wait for the orchestrator's outbox relay.
    """
    app = FastAPI(
        title="Waypost",
        version="0.1.0",
        description="Submit goals and follow the workflows they become.",
    )
    app.state.waypost = AppState(
        settings=settings,
        engine=engine,
        playbooks=playbooks,
        outgoing=Outgoing(Topics(settings.namespace), default_codec(), source="waypost/http"),
        admin=admin,
        publisher=OutboxPublisher(engine, publisher) if publisher is not None else None,
    )
    problems.install(app)
    app.include_router(goals.router, prefix="/api/v1")
    app.include_router(workflows.router, prefix="/api/v1")
    app.include_router(health.router)
    return app
