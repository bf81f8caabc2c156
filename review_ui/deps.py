"""Dependencies of the routes, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Connection, Engine

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.publishing.outbox import OutboxPublisher
from orchestrator.publishing.records import Outgoing
from orchestrator.review import Reviews
from review_ui.replays import ReplayRunner
from waypost.bus.base import Admin
from waypost.outages import Outages
from waypost.settings import HttpSettings


@dataclass
class AppState:
    """Everything the app builds once at start-up."""

    settings: HttpSettings
    engine: Engine
    playbooks: PlaybookRegistry
    outgoing: Outgoing
    admin: Admin
    publisher: OutboxPublisher | None
    reviews: Reviews
    replays: ReplayRunner
    outages: Outages = field(default_factory=Outages)


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.waypost
    return state


def _connection(state: Annotated[AppState, Depends(_state)]) -> Iterator[Connection]:
    with state.engine.begin() as connection:
        yield connection


StateDep = Annotated[AppState, Depends(_state)]
ConnectionDep = Annotated[Connection, Depends(_connection)]
