"""Fallbacks and circuit breakers end to end: real orchestrator, two agent processes (echo
and its fallback echo-backup) and the HTTP app on the real broker and PostgreSQL, watched
through `waypost breakers ls` as an operator would.

echo fails on request: three failures open its circuit (each failed task goes on to
echo-backup); while it is open, new work goes straight to echo-backup; after the cool-down
one probe goes to echo, and its success closes the circuit.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from orchestrator.store import breakers as breaker_rows
from orchestrator.store.tables import audit_events
from orchestrator.workflow.breaker import Circuit, CircuitState
from orchestrator.workflow.state import TaskState, TaskStatus, WorkflowStatus
from tests.e2e.conftest import PLAYBOOKS, ROOT, Platform
from tests.e2e.test_dead_letters import Console
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

E2E_PLAYBOOKS = ROOT / "tests" / "e2e" / "playbooks"
THRESHOLD = 3
OPEN_S = 10.0


def _circuit(platform: Platform) -> Circuit:
    with platform.engine.connect() as conn:
        return breaker_rows.read(conn, capabilities=["echo"]).get("echo") or Circuit("echo")


def _completed(platform: Platform, ids: list[str]) -> dict[str, TaskState]:
    wait_for(
        lambda: platform.statuses(ids) == {"completed": len(ids)},
        timeout=60,
        what=f"{len(ids)} workflow(s) to complete",
    )
    tasks = {}
    for workflow_id in ids:
        state = platform.workflow(workflow_id)
        assert state is not None
        assert state.status is WorkflowStatus.COMPLETED
        tasks[workflow_id] = state.tasks["echo"]
    return tasks


def _breakers(console: Console) -> dict[str, dict[str, Any]]:
    listed = json.loads(console.cli("breakers", "ls", "--json").stdout)
    return {item["capability"]: item for item in listed["items"]}


def _circuit_events(platform: Platform) -> list[tuple[str, dict[str, Any]]]:
    with platform.engine.connect() as conn:
        rows = conn.execute(
            select(audit_events.c.action, audit_events.c.detail)
            .where(audit_events.c.actor == "waypost:breaker")
            .order_by(audit_events.c.id)
        ).all()
    return [(row.action, row.detail) for row in rows]


@pytest.mark.slow  # 15-20 s: `make test-slow` (CI runs it)
def test_the_circuit_opens_work_goes_to_the_fallback_and_a_probe_closes_it(
    platform: Platform,
) -> None:
    platform.env_overrides.update(
        {
            "WAYPOST_PLAYBOOK_DIRS": f"{PLAYBOOKS},{E2E_PLAYBOOKS}",
            "WAYPOST_BREAKER_FAILURE_THRESHOLD": str(THRESHOLD),
            "WAYPOST_BREAKER_WINDOW_S": "60",
            "WAYPOST_BREAKER_OPEN_S": str(OPEN_S),
        }
    )
    console = Console(platform)
    platform.start_orchestrator()
    platform.start_agents()
    platform.start_agents("backup", module="tests.support.backup_agents")
    console.start()
    assert _breakers(console)["echo"]["state"] == "closed"
    assert _breakers(console)["echo-backup"]["state"] == "closed"

    # 1. echo fails three times: its circuit opens; each failed task went on to the backup.
    failing = [
        platform.submit("test.resilient", {"text": f"fail {n}", "fail": "retryable"})
        for n in range(THRESHOLD)
    ]
    opened = wait_for(
        lambda: (c := _circuit(platform)).state is CircuitState.OPEN and c,
        timeout=60,
        what="the circuit of echo to open",
    )
    # 2. While it is open, new work goes straight to the backup: echo is not tried.
    during = platform.submit("test.resilient", {"text": "while open"})

    for workflow_id, task in _completed(platform, failing).items():
        assert [(a.capability, a.outcome) for a in task.attempts] == [
            (None, "failed"),
            ("echo-backup", "completed"),
        ], workflow_id
        assert task.capability == "echo-backup"
        assert task.output is not None
        assert task.output["by"] == "echo-backup"
    assert len(opened.failures) == THRESHOLD
    assert opened.last_error is not None
    assert opened.last_error.startswith("RuntimeError: asked to fail")
    (task,) = _completed(platform, [during]).values()
    assert [(a.number, a.capability) for a in task.attempts] == [(1, "echo-backup")]
    assert task.output == {"text": "while open", "attempt": 1, "by": "echo-backup"}

    shown = _breakers(console)["echo"]
    assert (shown["state"], shown["failures"]) == ("open", THRESHOLD)
    assert shown["open_until"] is not None
    table = console.cli("breakers", "ls").stdout
    assert any(line.split()[:2] == ["echo", "open"] for line in table.splitlines()), table

    # 3. After the cool-down, the next task is the probe; echo works again and closes it.
    assert opened.open_until is not None
    open_until = opened.open_until
    wait_for(lambda: datetime.now(UTC) > open_until, timeout=OPEN_S + 5, what="the cool-down")
    probe = platform.submit("test.resilient", {"text": "probe"})

    (task,) = _completed(platform, [probe]).values()
    assert [(a.number, a.capability, a.outcome) for a in task.attempts] == [(1, None, "completed")]
    assert task.status is TaskStatus.COMPLETED
    assert task.output == {"text": "probe", "attempt": 1}
    closed = wait_for(
        lambda: (c := _circuit(platform)).state is CircuitState.CLOSED and c,
        timeout=30,
        what="the circuit of echo to close",
    )
    assert (closed.failures, closed.probe_task_id) == ((), None)
    assert _breakers(console)["echo"]["state"] == "closed"
    events = _circuit_events(platform)
    assert [action for action, _ in events] == [
        "circuit_opened",
        "circuit_half_opened",
        "circuit_closed",
    ]
    assert {detail["task_id"] for action, detail in events[1:]} == {task.id}
    assert {detail["capability"] for _, detail in events} == {"echo"}
    orchestrator_log = (platform.logs / "orchestrator.log").read_text(errors="replace")
    assert "circuit of capability 'echo' opened" in orchestrator_log
