"""The cascade consumer on the real database, fed by the in-memory bus (our fake at the
bus interface): a matching event submits its goal once however often it arrives, and an
event at the depth limit is dead-lettered with the depth. The real broker and the whole
orchestrator: tests/e2e/test_cascades.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from orchestrator.cascades import service
from orchestrator.cascades.events import DEPTH_HEADER
from orchestrator.cascades.outgoing import CascadeOutgoing
from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.store import workflows as workflow_rows
from waypost.bus.loop import ConsumerLoop
from waypost.bus.memory import MemoryBus
from waypost.bus.records import OutgoingRecord
from waypost.events import GoalSubmitted, default_codec
from waypost.outages import Outages
from waypost.settings import OrchestratorSettings
from waypost.topics import Topics

pytestmark = pytest.mark.integration

SECOND = """\
type: a.second
triggers:
  - topic: workflow.events
    type: waypost.workflow.completed
    filter: {/type: a.first}
    input: {text: "${/output/text}"}
steps:
  - {name: echo, capability: echo}
"""


@pytest.fixture
def playbooks(tmp_path: Path) -> PlaybookRegistry:
    (tmp_path / "second.yaml").write_text(SECOND)
    return PlaybookRegistry.load([tmp_path])


def _loop(
    make_settings: Callable[..., Any],
    playbooks: PlaybookRegistry,
    bus: MemoryBus,
    engine: Engine,
    namespace: str,
) -> ConsumerLoop[Any]:
    settings = make_settings(OrchestratorSettings, cascade_max_depth=2)
    topics = Topics(namespace)
    # As the orchestrator does at start: its own topics, and the triggers' with their .dlq.
    bus.admin().ensure_topics(
        topics.specs(playbooks.capabilities(), settings)
        + service.topic_specs(playbooks, topics, settings)
    )
    loop = service.consumer_loop(
        settings,
        playbooks=playbooks,
        bus=bus,
        engine=engine,
        outgoing=CascadeOutgoing(Topics(namespace), default_codec()),
        stop=threading.Event(),
        outages=Outages(),
    )
    assert loop is not None
    return loop


def _completed(topic: str, event_id: str, depth: bytes | None = None) -> OutgoingRecord:
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id.encode()),
        ("ce_source", b"waypost/orchestrator"),
        ("ce_type", b"waypost.workflow.completed"),
    ]
    if depth is not None:
        headers.append((DEPTH_HEADER, depth))
    body = {"workflow_id": "wf-1", "type": "a.first", "output": {"text": "hi"}}
    return OutgoingRecord(topic, b"wf-1", json.dumps(body).encode(), tuple(headers))


def test_an_event_delivered_twice_submits_one_goal(
    make_settings: Callable[..., Any],
    playbooks: PlaybookRegistry,
    engine: Engine,
    namespace: str,
) -> None:
    bus = MemoryBus()
    topics = Topics(namespace)
    loop = _loop(make_settings, playbooks, bus, engine, namespace)
    publisher = bus.publisher("test")
    event = _completed(topics.workflow_events, "ev-1", depth=b"1")
    unrelated = OutgoingRecord(topics.workflow_events, None, b"not an event")
    publisher.send([event, unrelated, event]).raise_for_failures()

    assert loop.run_once() == 3
    publisher.send([event]).raise_for_failures()  # and once more, in a later batch
    assert loop.run_once() == 1

    goals = [default_codec().decode(r.value, r.headers) for r in bus.broker.records(topics.goals)]
    assert [g.type for g in goals] == ["goal.submitted"]
    (goal,) = goals
    assert isinstance(goal.payload, GoalSubmitted)
    assert goal.payload.type == "a.second"
    assert goal.payload.input["text"] == "hi"
    assert goal.payload.input["_trigger"]["depth"] == 2
    with engine.connect() as conn:
        stored = workflow_rows.get(conn, workflow_id=goal.id)
    assert stored is not None
    assert stored.input["_trigger"]["event_id"] == "ev-1"
    assert loop.dead_lettered == 0


def test_an_event_at_the_depth_limit_is_dead_lettered_and_starts_nothing(
    make_settings: Callable[..., Any],
    playbooks: PlaybookRegistry,
    engine: Engine,
    namespace: str,
) -> None:
    bus = MemoryBus()
    topics = Topics(namespace)
    loop = _loop(make_settings, playbooks, bus, engine, namespace)
    fine = _completed(topics.workflow_events, "ev-fine", depth=b"1")
    cycling = _completed(topics.workflow_events, "ev-deep", depth=b"2")
    bus.publisher("test").send([fine, cycling]).raise_for_failures()

    loop.run_once()

    (letter,) = bus.broker.records(topics.dlq(topics.workflow_events))
    headers = dict(letter.headers)
    assert headers["ce_id"] == b"ev-deep"
    assert headers["waypost-dlq-error-class"] == b"CascadeDepthExceeded"
    assert headers["waypost-dlq-error-message"].startswith(
        b"cascade depth 2 reached: event ev-deep"
    )
    # The other event of the batch still started its workflow; the deep one none.
    goals = [default_codec().decode(r.value, r.headers) for r in bus.broker.records(topics.goals)]
    assert [g.payload.input["_trigger"]["event_id"] for g in goals] == ["ev-fine"]  # type: ignore[attr-defined]
