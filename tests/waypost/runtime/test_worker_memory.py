"""An agent's handler reaches its long-term memory through ``ctx.memory``: what one task
remembers, a later task of the same agent recalls (real PostgreSQL + pgvector)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from sqlalchemy import Engine

from tests.waypost.runtime.test_worker import _delivery, _results, _task, _worker
from waypost import AgentContext, agent
from waypost.embeddings import HashingEmbedder
from waypost.events import TaskCompleted
from waypost.memory import AgentMemory

pytestmark = pytest.mark.integration


class Note(BaseModel):
    text: str
    recall: bool = False


class Recalled(BaseModel):
    found: list[str]


@agent("echo", version="test")
def notes(task: Note, ctx: AgentContext) -> Recalled:
    """Remembers a note, or recalls the closest ones."""
    assert ctx.memory is not None, "the worker gave the handler no memory"
    if task.recall:
        return Recalled(found=[r.memory.content for r in ctx.memory.recall(task.text, k=2)])
    ctx.memory.remember(task.text, kind="semantic", importance=0.8)
    return Recalled(found=[])


def test_a_later_task_recalls_what_an_earlier_one_remembered(engine: Engine) -> None:
    memory = AgentMemory(engine, HashingEmbedder(), agent="echo")
    worker, bus = _worker(notes, memory=memory)

    worker.handle([_delivery(_task({"text": "the customer prefers email over phone"}))])
    worker.handle([_delivery(_task({"text": "refunds above 100 need approval"}), offset=1)])
    worker.handle(
        [
            _delivery(
                _task(
                    {"text": "how does the customer like to be contacted by email", "recall": True}
                ),
                offset=2,
            )
        ]
    )

    completed = [e.payload for e in _results(bus) if isinstance(e.payload, TaskCompleted)]
    assert completed[-1].output["found"][0] == "the customer prefers email over phone"
    assert memory.count() == 2
