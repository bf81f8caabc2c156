"""A tiny ``AgentEnvironment`` for running the agents' setup functions in tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from waypost import AgentContext, TaskInfo
from waypost.embeddings import Embedder, HashingEmbedder


class Environment:
    """What a worker hands to setup functions: an embedder, a name and maybe a database."""

    def __init__(self, embedder: Embedder | None = None, engine: Engine | None = None) -> None:
        self._embedder = embedder or HashingEmbedder()
        self._engine = engine

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    @property
    def instance(self) -> str:
        return "test-worker"

    def database(self) -> Engine:
        if self._engine is None:
            raise AssertionError("this test gave the environment no database")
        return self._engine


def context(capability: str, resources: dict[type, Any] | None = None) -> AgentContext:
    """A task context as the runtime would build it for one attempt."""
    task = TaskInfo(
        workflow_id="wf-1",
        task_id=f"wf-1:{capability}",
        step=capability,
        capability=capability,
        attempt=1,
        goal_type="support.ticket",
        deadline=datetime.now(UTC) + timedelta(seconds=30),
    )
    return AgentContext(task=task, resources=resources or {})
