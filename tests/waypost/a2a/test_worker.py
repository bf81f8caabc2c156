"""Bridged capabilities in a running agent worker on the real broker and PostgreSQL,
with policies: the delegation is a governed, audited action; a denied one never reaches
the remote agent; the remote task is remembered in the database across attempts, so the
approved re-run of an input-required task sends the approval and returns the result."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.waypost.a2a.remote_agent import TOKEN, RemoteServer, serving_remote
from tests.waypost.runtime.harness import AgentRun, payloads
from waypost.a2a.bridge import BridgeKit, bridge_agent
from waypost.a2a.config import load_text
from waypost.a2a.store import find
from waypost.bus.records import OutgoingRecord
from waypost.events import (
    ApprovalGrant,
    Event,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
    default_codec,
    utcnow,
)
from waypost.governance import repository
from waypost.settings import AgentSettings

pytestmark = pytest.mark.integration

POLICY = """\
name: bridges
version: 1
applies_to: {agents: [refunds, payouts]}
actions:
  allow: [a2a:refund-desk/refund]
  deny:
    - {action: a2a:payout-desk/refund, reason: payouts go through finance}
"""


def bridges_file(remote: RemoteServer) -> str:
    return f"""\
bridges:
  refunds:
    card: {remote.url}
    skill: refund
    agent: refund-desk
    headers: {{Authorization: "Bearer ${{REMOTE_TOKEN}}"}}
    poll_interval: 50ms
  payouts:
    endpoint: {remote.url}/
    skill: refund
    agent: payout-desk
"""


@pytest.fixture
def remote() -> Iterator[RemoteServer]:
    with serving_remote() as server:
        yield server


@pytest.fixture
def run(
    make_settings: Callable[..., Any], tmp_path: Path, remote: RemoteServer
) -> Iterator[AgentRun]:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "bridges.yaml").write_text(POLICY)
    settings = make_settings(AgentSettings, topic_partitions=1, policy_dirs=[policies])
    kit = BridgeKit({"REMOTE_TOKEN": TOKEN})
    agents = [bridge_agent(b, kit) for b in load_text(bridges_file(remote)).values()]
    started = AgentRun(settings, agents)
    started.start()
    yield started
    started.close()


def dispatch(
    run: AgentRun, task_id: str, attempt: int, task_input: dict[str, Any], **more: Any
) -> None:
    """A refunds task, as the orchestrator's relay publishes it (with ``approvals``)."""
    payload = TaskDispatched(
        workflow_id=f"wf-{task_id}",
        task_id=task_id,
        step="refund",
        capability="refunds",
        attempt=attempt,
        goal_type="test.a2a",
        input=task_input,
        deadline=(utcnow() + timedelta(minutes=5)).isoformat(),
        **more,
    )
    encoded = default_codec().encode(Event(payload, source="test"))
    publisher = run.bus.publisher("test-dispatch")
    try:
        record = OutgoingRecord(
            run.topics.tasks("refunds"), encoded.key, encoded.value, encoded.headers
        )
        publisher.send([record]).raise_for_failures()
    finally:
        publisher.close()


def test_bridged_tasks_are_governed_audited_and_remembered_across_attempts(
    run: AgentRun, remote: RemoteServer, engine: Engine
) -> None:
    dispatch(run, "t-echo", 1, {"mode": "echo", "n": 2})
    run.dispatch("payouts", ("t-denied", 1, {"mode": "echo"}))
    dispatch(run, "t-ask", 1, {"mode": "ask", "amount": 30})

    results = run.results(3)
    done = {p.task_id: p for p in payloads(results, TaskCompleted)}
    failed = {p.task_id: p for p in payloads(results, TaskFailed)}

    assert done["t-echo"].output == {"echo": {"mode": "echo", "n": 2}, "count": 3}
    assert done["t-echo"].agent.capability == "refunds"
    assert (failed["t-denied"].error.type, failed["t-denied"].error.retryable) == (
        "ActionForbidden",
        False,
    )
    assert "payouts go through finance" in failed["t-denied"].error.message
    assert len(remote.received.tasks()) == 2  # the denied task never reached the remote agent
    asked = failed["t-ask"]
    assert asked.error.type == "ApprovalRequired"
    assert asked.approval is not None
    assert asked.approval.action == "a2a:refund-desk/refund/input"
    assert (
        asked.approval.reason == "remote agent 'refund-desk' asks for input: May I refund 30 EUR?"
    )
    assert any("the remote agent asks: May I refund 30 EUR?" in line for line in asked.reasoning)
    with engine.connect() as connection:
        audited = repository.decisions(connection=connection)
        row = find(connection, task_id="t-ask")
    assert {(d.agent, d.action, d.outcome) for d in audited} == {
        ("refunds", "a2a:refund-desk/refund", "allow"),
        ("payouts", "a2a:payout-desk/refund", "deny"),
    }
    assert row is not None
    assert row.remote_task_id == remote.received.tasks()[-1]

    # The reviewer approved: the orchestrator dispatches attempt 2 with the approval.
    grant = ApprovalGrant(
        action=asked.approval.action,
        params_digest=asked.approval.params_digest,
        approved_by="rita",
        escalation_id="esc-7",
    )
    dispatch(run, "t-ask", 2, {"mode": "ask", "amount": 30}, approvals=[grant])

    final = payloads(run.results(4), TaskCompleted)[-1]
    assert (final.task_id, final.attempt) == ("t-ask", 2)
    assert final.output == {"refunded": 30, "approved_by": "rita"}
    assert remote.received.of(row.remote_task_id)[1:] == [
        {"decision": "approve", "approved_by": "rita", "escalation_id": "esc-7"}
    ]
    assert len(remote.received.tasks()) == 2  # the same remote task, not a second one
    with engine.connect() as connection:
        answered = find(connection, task_id="t-ask")
    assert answered is not None
    assert (answered.attempt, answered.answered_escalation_id) == (2, "esc-7")
