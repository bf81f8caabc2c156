"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.service.outgoing import Outgoing
from review_ui import problems
from review_ui.api import goals, health, workflows
from review_ui.deps import AppState
from waypost.bus.base import Admin
from waypost.events import default_codec
from waypost.settings import HttpSettings
from waypost.topics import Topics


def create_app(
    settings: HttpSettings, *, engine: Engine, admin: Admin, playbooks: PlaybookRegistry
) -> FastAPI:
    """The HTTP app on the given engine and broker admin client."""
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
    )
    problems.install(app)
    app.include_router(goals.router, prefix="/api/v1")
    app.include_router(workflows.router, prefix="/api/v1")
    app.include_router(health.router)
    return app
