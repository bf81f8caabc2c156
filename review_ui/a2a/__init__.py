"""The A2A server: an Agent Card whose skills are the goal types, and the A2A JSON-RPC
endpoint mapped onto goals and workflows (docs/a2a.md)."""

from __future__ import annotations

from fastapi import FastAPI

from review_ui.a2a.routes import router


def install(app: FastAPI) -> None:
    """Mount the Agent Card and the A2A endpoint on ``app`` (its ``app.state.waypost``)."""
    app.include_router(router(app.state.waypost))
