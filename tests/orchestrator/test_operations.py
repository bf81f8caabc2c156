"""Operating workflows by hand on the real PostgreSQL: retrying a failed step and resuming a
failed workflow from a step write the workflow, the dispatches (in the outbox, in one
transaction) and an audit row; an edited input is checked against the input schema a
live agent worker announced; refusals change nothing; and an operation and the
orchestrator's intake never interleave (the workflow row lock serialises them).

Workflows are made the way production makes them: goals and agents' results go through
the intake of ``ReviewHarness`` (tests/orchestrator/test_reviews.py).
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from orchestrator.operations import (
    InvalidOperation,
    OperationConflict,
    OperationError,
    OperationNotFound,
    OperationRequest,
    WorkflowOperations,
)
from orchestrator.playbooks.versions import PlaybookVersions
from orchestrator.publishing.records import Outgoing
from orchestrator.store import breakers as breaker_rows
from orchestrator.store import outbox
from orchestrator.store.tables import audit_events
from orchestrator.workflow.breaker import CircuitState
from orchestrator.workflow.machine import task_id
from orchestrator.workflow.state import TaskStatus, WorkflowState, WorkflowStatus
from tests.orchestrator.test_reviews import LATER, ReviewHarness, write_playbooks
from tests.waiting import wait_for
from waypost.agent_registry import Announcement, Counters, announce
from waypost.bus.loop import Delivery
from waypost.bus.records import ReceivedRecord
from waypost.events import (
    AgentInfo,
    ErrorInfo,
    Event,
    GoalSubmitted,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
)

# Many requests each on a fresh app and schema: `make test-slow` (CI runs it).
pytestmark = [pytest.mark.integration, pytest.mark.slow]

# `first` and `side` run in parallel; `second` waits for both.
OPERATED = """\
type: test.operated
steps:
  - name: first
    capability: echo
    retries: 1
    input: {text: $goal.text}
  - name: side
    capability: triage
    input: {text: $goal.text}
  - name: second
    capability: knowledge
    depends_on: [first, side]
    input: {text: $steps.first.output.text}
output:
  text: $steps.second.output.text
"""
ECHO_INPUT = {
    "type": "object",
    "required": ["text"],
    "properties": {"text": {"type": "string"}},
}


@pytest.fixture
def harness(engine: Engine, namespace: str, tmp_path: Path) -> ReviewHarness:
    directory = write_playbooks(tmp_path / "playbooks")
    (directory / "operated.yaml").write_text(OPERATED)
    return ReviewHarness(engine, namespace, directory)


@pytest.fixture
def operations(harness: ReviewHarness) -> WorkflowOperations:
    return WorkflowOperations(
        PlaybookVersions(harness.playbooks),
        Outgoing(harness.topics, harness.codec, source="waypost/http"),
    )


def start(harness: ReviewHarness, workflow_id: str, goal_input: dict[str, Any]) -> None:
    goal = GoalSubmitted(type="test.operated", input=goal_input)
    harness.deliver(Event(goal, source="tests", id=workflow_id), harness.topics.goals)


def fail(harness: ReviewHarness, workflow_id: str, step: str, *, retryable: bool = False) -> None:
    """The agent reports the step's current attempt failed."""
    task = harness.state(workflow_id).tasks[step]
    result = TaskFailed(
        workflow_id=workflow_id,
        task_id=task.id,
        step=step,
        capability=task.capability,
        attempt=task.attempt,
        error=ErrorInfo(type="ValueError", message="bad input", retryable=retryable),
        agent=AgentInfo(capability=task.capability, version="1", instance="test:1"),
    )
    harness.deliver(Event(result, source="tests/agent"), harness.topics.results)


def completed(workflow_id: str, step: str, capability: str, attempt: int) -> Event:
    result = TaskCompleted(
        workflow_id=workflow_id,
        task_id=task_id(workflow_id, step),
        step=step,
        capability=capability,
        attempt=attempt,
        output={"text": f"{step} done"},
        confidence=0.9,
        agent=AgentInfo(capability=capability, version="1", instance="test:1"),
    )
    return Event(result, source="tests/agent")


def failed_workflow(harness: ReviewHarness, workflow_id: str) -> WorkflowState:
    """`first` failed (bad input) while `side` was running: the workflow failed."""
    start(harness, workflow_id, {"text": "hello"})
    fail(harness, workflow_id, "first")
    state = harness.state(workflow_id)
    assert state.status is WorkflowStatus.FAILED
    assert state.tasks["side"].status is TaskStatus.CANCELLED
    return state


def request(workflow_id: str, step: str, **changes: Any) -> OperationRequest:
    return OperationRequest(workflow_id, step, "olga", changes.pop("reason", "fixed"), **changes)


def queued_dispatches(harness: ReviewHarness) -> list[TaskDispatched]:
    with harness.engine.connect() as conn:
        rows = outbox.claim(conn, limit=1000, created_before=LATER)
    decoded = [harness.codec.decode(r.value, r.headers).payload for _, r in rows]
    return [p for p in decoded if isinstance(p, TaskDispatched)]


def audit_rows(engine: Engine, workflow_id: str) -> list[tuple[Any, ...]]:
    """(actor, action, detail) of the workflow's audit rows, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_events.c.actor, audit_events.c.action, audit_events.c.detail)
            .where(audit_events.c.workflow_id == workflow_id)
            .order_by(audit_events.c.id)
        ).all()
    return [tuple(row) for row in rows]


def announce_echo(engine: Engine, schema: dict[str, Any]) -> None:
    """A live echo worker that announced ``schema`` as its input schema."""
    with engine.begin() as conn:
        announce(
            conn,
            announcement=Announcement(
                "echo", "test:1", "1", "echoes", schema, {}, 1, "host", 1, 5.0
            ),
            counters=Counters(),
        )


def test_retrying_the_failed_step_writes_the_dispatches_and_an_audit_row(
    harness: ReviewHarness, operations: WorkflowOperations
) -> None:
    failed_workflow(harness, "w-retry")
    before = len(queued_dispatches(harness))

    with harness.engine.begin() as conn:
        done = operations.retry(conn, request=request("w-retry", "first"), now=harness.now)

    stored = harness.state("w-retry")
    assert done.state == stored
    assert stored.status is WorkflowStatus.RUNNING
    assert stored.reason is None
    assert stored.dead_letter is None
    first = stored.tasks["first"]
    assert (first.status, first.attempt, first.first_valid_attempt) == (
        TaskStatus.DISPATCHED,
        2,
        2,
    )
    assert first.input == {"text": "hello"}
    dispatched = queued_dispatches(harness)[before:]
    assert [(d.step, d.attempt, d.input) for d in dispatched] == [
        ("first", 2, {"text": "hello"}),
        ("side", 2, {"text": "hello"}),
    ]
    assert [row_id for row_id, _ in done.outbox] == sorted(row_id for row_id, _ in done.outbox)
    assert audit_rows(harness.engine, "w-retry") == [
        ("olga", "retry_step", {"step": "first", "reason": "fixed", "was": "failed"})
    ]


def test_the_retried_workflow_completes_and_a_late_result_of_the_failed_attempt_is_ignored(
    harness: ReviewHarness, operations: WorkflowOperations
) -> None:
    failed_workflow(harness, "w-late")
    with harness.engine.begin() as conn:
        operations.retry(conn, request=request("w-late", "first"), now=harness.now)

    harness.deliver(completed("w-late", "first", "echo", 1), harness.topics.results)
    assert harness.state("w-late").tasks["first"].status is TaskStatus.DISPATCHED
    harness.deliver(completed("w-late", "first", "echo", 2), harness.topics.results)
    harness.deliver(completed("w-late", "side", "triage", 2), harness.topics.results)
    harness.deliver(completed("w-late", "second", "knowledge", 1), harness.topics.results)

    state = harness.state("w-late")
    assert state.status is WorkflowStatus.COMPLETED
    assert state.output == {"text": "second done"}


def test_resuming_with_an_edited_input_checks_it_against_the_announced_schema(
    harness: ReviewHarness, operations: WorkflowOperations
) -> None:
    failed_workflow(harness, "w-edit")
    announce_echo(harness.engine, ECHO_INPUT)

    with pytest.raises(InvalidOperation) as refused, harness.engine.begin() as conn:
        operations.resume(
            conn, request=request("w-edit", "first", input={"text": 5}), now=harness.now
        )
    with harness.engine.begin() as conn:
        done = operations.resume(
            conn, request=request("w-edit", "first", input={"text": "fixed"}), now=harness.now
        )

    assert str(refused.value) == (
        "the edited input breaks the input schema of step 'first': "
        'text: 5 is not of type "string"'
    )
    assert refused.value.status == 422
    assert refused.value.detail == {
        "errors": [{"field": "text", "message": '5 is not of type "string"'}]
    }
    assert done.state.tasks["first"].input == {"text": "fixed"}
    assert [(d.step, d.input) for d in queued_dispatches(harness)[-2:]] == [
        ("first", {"text": "fixed"}),
        ("side", {"text": "hello"}),
    ]
    assert audit_rows(harness.engine, "w-edit")[-1] == (
        "olga",
        "resume",
        {"step": "first", "reason": "fixed", "was": "failed", "input": {"text": "fixed"}},
    )


def test_a_step_whose_circuit_is_open_waits_for_it_instead_of_being_dispatched(
    harness: ReviewHarness, operations: WorkflowOperations
) -> None:
    failed_workflow(harness, "w-circuit")
    with harness.engine.begin() as conn:
        (circuit,) = breaker_rows.lock(conn, capabilities=["echo"], now=harness.now).values()
        opened = replace(
            circuit,
            state=CircuitState.OPEN,
            opened_at=harness.now,
            open_until=harness.now + timedelta(seconds=30),
        )
        breaker_rows.write(conn, circuits=[opened], now=harness.now)
    before = len(queued_dispatches(harness))

    with harness.engine.begin() as conn:
        done = operations.retry(conn, request=request("w-circuit", "first"), now=harness.now)

    first = done.state.tasks["first"]
    assert first.status is TaskStatus.RETRY_WAIT
    assert first.next_attempt_at == harness.now + timedelta(seconds=30)
    assert first.error is not None
    assert first.error.type == "CircuitOpen"
    assert [d.step for d in queued_dispatches(harness)[before:]] == ["side"]
    with harness.engine.connect() as conn:
        assert breaker_rows.read(conn, capabilities=["echo"])["echo"] == opened


@pytest.mark.parametrize(
    ("operation", "workflow", "step", "error", "message"),
    [
        ("retry", "nobody", "first", OperationNotFound, "no workflow with id 'nobody'"),
        ("retry", "w-refused", "third", OperationNotFound, "has no step 'third'"),
        ("resume", "w-refused", "third", InvalidOperation, "has no step 'third'"),
        ("retry", "w-refused", "side", OperationConflict, "step 'side' is cancelled"),
        ("resume", "w-refused", "second", InvalidOperation, "step 'first' failed and resuming"),
        ("retry", "w-running", "first", OperationConflict, "step 'first' is dispatched"),
        ("resume", "w-running", "first", OperationConflict, "only a failed workflow"),
    ],
)
def test_refusals_say_why_and_change_nothing(
    harness: ReviewHarness,
    operations: WorkflowOperations,
    operation: str,
    workflow: str,
    step: str,
    error: type[OperationError],
    message: str,
) -> None:
    failed_workflow(harness, "w-refused")
    start(harness, "w-running", {"text": "still going"})
    states = {w: harness.state(w) for w in ("w-refused", "w-running")}
    queued = len(queued_dispatches(harness))

    with pytest.raises(error, match=message), harness.engine.begin() as conn:
        getattr(operations, operation)(conn, request=request(workflow, step), now=harness.now)

    assert {w: harness.state(w) for w in states} == states
    assert len(queued_dispatches(harness)) == queued
    assert audit_rows(harness.engine, "w-refused") == audit_rows(harness.engine, "w-running") == []


def test_a_reason_or_input_that_cannot_be_stored_is_refused(
    harness: ReviewHarness, operations: WorkflowOperations
) -> None:
    failed_workflow(harness, "w-nul")

    reason = pytest.raises(InvalidOperation, match="the reason cannot be stored")
    with reason, harness.engine.begin() as conn:
        operations.retry(conn, request=request("w-nul", "first", reason="a\x00b"), now=harness.now)
    stored = pytest.raises(InvalidOperation, match="the input cannot be stored")
    with stored, harness.engine.begin() as conn:
        operations.retry(
            conn, request=request("w-nul", "first", input={"t": "\x00"}), now=harness.now
        )


def test_the_intake_waits_for_an_operation_and_then_sees_what_it_did(
    harness: ReviewHarness, operations: WorkflowOperations
) -> None:
    failed_workflow(harness, "w-lock")
    # The result of the attempt the retry dispatches, arriving while the retry's
    # transaction still holds the workflow row.
    early = completed("w-lock", "first", "echo", 2)
    encoded = harness.codec.encode(early)
    record = ReceivedRecord(
        harness.topics.results, 0, 999, encoded.key, encoded.value, encoded.headers
    )
    intake_done = threading.Event()

    def deliver() -> None:
        harness.intake.handle(
            [Delivery(record, harness.codec.decode(record.value, record.headers))]
        )
        intake_done.set()

    with harness.engine.begin() as conn:
        operations.retry(conn, request=request("w-lock", "first"), now=harness.now)
        worker = threading.Thread(target=deliver)
        worker.start()
        wait_for(lambda: _waiting_for_a_lock(harness.engine), timeout=20, what="the intake to wait")
        assert not intake_done.is_set()
    worker.join(timeout=20)

    assert intake_done.is_set()
    state = harness.state("w-lock")
    assert state.tasks["first"].status is TaskStatus.COMPLETED
    assert state.tasks["first"].output == {"text": "first done"}


def _waiting_for_a_lock(engine: Engine) -> bool:
    with engine.connect() as conn:
        waiting = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE '%FOR UPDATE%'"
            )
        ).scalar_one()
    return bool(waiting)
