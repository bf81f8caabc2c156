"""A triggered workflow's events carry its cascade depth; other workflows' carry none.
Pure: the state machine's harness, no broker, no database."""

from __future__ import annotations

from orchestrator.cascades.events import DEPTH_HEADER
from orchestrator.cascades.outgoing import CascadeOutgoing
from orchestrator.publishing.records import Outgoing
from tests.orchestrator.workflow.harness import SINGLE, Run, load_playbook
from waypost.events import default_codec
from waypost.topics import Topics

TOPICS = Topics("waypost")  # the harness's namespace
OUTGOING = CascadeOutgoing(TOPICS, default_codec())


def test_the_workflow_events_of_a_triggered_workflow_carry_its_depth() -> None:
    run = Run(load_playbook(SINGLE), {"text": "t", "_trigger": {"event_id": "e", "depth": 3}})
    decision = run.start()

    records = OUTGOING.for_commands(run.state, decision.commands)

    depths = {r.topic: dict(r.headers).get(DEPTH_HEADER) for r in records}
    assert depths == {TOPICS.workflow_events: b"3", TOPICS.tasks("echo"): None}


def test_the_events_of_a_workflow_no_trigger_started_are_as_outgoing_makes_them() -> None:
    run = Run(load_playbook(SINGLE), {"text": "t"})
    decision = run.start()

    records = OUTGOING.for_commands(run.state, decision.commands)
    plain = Outgoing(TOPICS, default_codec()).for_commands(run.state, decision.commands)

    names = [[name for name, _ in r.headers] for r in records]
    assert names == [[name for name, _ in r.headers] for r in plain]
    assert all(DEPTH_HEADER not in found for found in names)
