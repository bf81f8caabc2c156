"""A schedule that exists, for tests that need one to point at (an hourly goal of the
test playbooks' ``test.review`` type)."""

from __future__ import annotations

from sqlalchemy import Engine

from orchestrator.schedules import manage
from orchestrator.schedules.files import load_text
from waypost.events import utcnow


def add_schedule(engine: Engine, name: str, *, goal_type: str = "test.review") -> str:
    """Add the API-defined schedule ``name``; its name."""
    text = (
        f"schedules:\n  {name}:\n    every: 1h\n"
        f"    goal: {{type: {goal_type}, input: {{subject: s}}}}\n"
    )
    (found,) = load_text(text)
    with engine.begin() as conn:
        manage.add(conn, schedule=found.schedule, actor="tests", now=utcnow())
    return name
