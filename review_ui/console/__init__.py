"""The review console: server-rendered pages (Jinja2, autoescaped) enhanced by htmx.

``install(app)`` mounts the pages, the static files and the HTML error handlers.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from review_ui.console import (
    admin,
    agents,
    bulk,
    dead_letter_actions,
    dead_letters,
    decisions,
    errors,
    escalation,
    governance,
    inbox,
    login,
    quality,
    workflow_actions,
    workflows,
)
from review_ui.console.render import STATIC_DIR

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Mount the console on ``app`` (after its JSON problem handlers are installed)."""
    for module in (
        login,
        inbox,
        bulk,
        escalation,
        decisions,
        admin,
        dead_letters,
        dead_letter_actions,
        workflows,
        workflow_actions,
        agents,
        governance,
        quality,
    ):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    errors.install(app)
