"""Event cascades end to end: a real orchestrator (with its cascade consumer) and agent
worker on the real broker and PostgreSQL. cascade.a's completion starts cascade.b, whose
completion starts cascade.c; the same triggering event delivered again starts nothing
more; and two playbooks that trigger each other stop at the depth limit with a dead
letter naming it (docs/triggers.md ("Event cascades"))."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from orchestrator.cascades.events import DEPTH_HEADER
from tests.e2e.conftest import ROOT, Platform
from tests.waiting import wait_for
from waypost.bus.records import OutgoingRecord

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CASCADES = ROOT / "tests" / "e2e" / "playbooks" / "cascades"
CYCLE = ROOT / "tests" / "e2e" / "playbooks" / "cascade_cycle"


def _workflows(platform: Platform) -> list[dict[str, Any]]:
    with platform.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, type, status, input, output FROM workflows ORDER BY accepted_at")
        ).mappings()
        return [dict(row) for row in rows]


def _completed(platform: Platform, count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def done() -> bool:
        found[:] = _workflows(platform)
        return sum(w["status"] == "completed" for w in found) >= count

    wait_for(done, timeout=60, what=f"{count} completed workflows")
    return found


def test_a_chain_of_triggers_runs_each_workflow_once_linked_to_its_trigger(
    platform: Platform,
) -> None:
    platform.env_overrides["WAYPOST_PLAYBOOK_DIRS"] = str(CASCADES)
    platform.start_orchestrator()
    platform.start_agents()

    first = platform.submit("cascade.a", {"text": "hello"})
    workflows = _completed(platform, 3)

    by_type = {w["type"]: w for w in workflows}
    assert [w["type"] for w in workflows] == ["cascade.a", "cascade.b", "cascade.c"]
    a, b, c = by_type["cascade.a"], by_type["cascade.b"], by_type["cascade.c"]
    assert a["id"] == first
    assert "_trigger" not in a["input"]
    assert c["output"] == {"text": "hello -> b -> c"}
    # Each records the event that started it: the workflow.completed of the one before.
    assert b["input"]["after"] == first
    assert b["input"]["_trigger"]["workflow_id"] == first
    assert b["input"]["_trigger"]["event_type"] == "waypost.workflow.completed"
    assert b["input"]["_trigger"]["depth"] == 1
    assert c["input"]["_trigger"]["workflow_id"] == b["id"]
    assert c["input"]["_trigger"]["depth"] == 2
    assert c["input"]["event"] == c["input"]["_trigger"]["event_id"]

    # The events of a triggered workflow carry its depth; the first one's carry none.
    events = platform.read_topic(platform.topics.workflow_events, expect=6)
    completed = {
        (r.header("waypost-workflow-id") or b"").decode(): r
        for r in events
        if r.header("ce_type") == b"waypost.workflow.completed"
    }
    depths = {workflow_id: r.header(DEPTH_HEADER) for workflow_id, r in completed.items()}
    assert depths == {first: None, b["id"]: b"1", c["id"]: b"2"}

    # The same triggering event delivered again (cascade.a's completion): no new workflow.
    again = completed[first]
    platform.publish([OutgoingRecord(again.topic, again.key, again.value, again.headers)])
    marker = platform.submit("cascade.c", {"text": "after the duplicate"})
    wait_for(
        lambda: any(w["id"] == marker and w["status"] == "completed" for w in _workflows(platform)),
        timeout=60,
        what="the marker workflow, behind the duplicate on the broker",
    )
    types = [w["type"] for w in _workflows(platform)]
    assert types.count("cascade.b") == 1, types


def test_a_cycle_of_triggers_stops_at_the_depth_limit_with_a_dead_letter(
    platform: Platform,
) -> None:
    platform.env_overrides["WAYPOST_PLAYBOOK_DIRS"] = str(CYCLE)
    platform.env_overrides["WAYPOST_CASCADE_MAX_DEPTH"] = "2"
    platform.start_orchestrator()
    platform.start_agents()

    platform.submit("cascade.ping", {"text": "go"})

    dlq = platform.topics.dlq(platform.topics.workflow_events)
    (letter,) = platform.read_topic(dlq, expect=1, timeout_s=60)
    message = (letter.header("waypost-dlq-error-message") or b"").decode()
    assert message.startswith("cascade depth 2 reached: "), message
    assert letter.header("waypost-dlq-error-class") == b"CascadeDepthExceeded"
    assert letter.header("ce_type") == b"waypost.workflow.completed"
    assert letter.header(DEPTH_HEADER) == b"2"
    workflows = _workflows(platform)
    assert [(w["type"], w["status"]) for w in workflows] == [
        ("cascade.ping", "completed"),
        ("cascade.pong", "completed"),
        ("cascade.ping", "completed"),
    ]
    assert [w["input"].get("_trigger", {}).get("depth", 0) for w in workflows] == [0, 1, 2]
