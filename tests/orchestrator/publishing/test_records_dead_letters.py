"""The records of an exhausted task: its dead letter is its last dispatch, byte for byte,
plus ``waypost-dlq-*`` headers; workflow.failed points to it. Pure: no broker, no database."""

from __future__ import annotations

from orchestrator.publishing.records import Outgoing
from orchestrator.workflow.machine import dispatch_id
from orchestrator.workflow.messages import DispatchTask, RetryDue
from tests.orchestrator.workflow.harness import SINGLE, Run, load_playbook
from waypost.bus.dead_letters import message_digest
from waypost.bus.records import OutgoingRecord
from waypost.events import DeadLetterRef, TaskDispatched, WorkflowFailed, default_codec
from waypost.topics import Topics

TRACEPARENT = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"
OUTGOING = Outgoing(Topics("waypost"), default_codec())  # the harness's namespace


def _single_run() -> Run:
    text = SINGLE.replace("timeout: 10s", "timeout: 10s\n    retries: 1")
    run = Run(load_playbook(text), {"text": "bad"}, random=lambda: 1.0)
    run.state = run.state.evolve(traceparent=TRACEPARENT)
    return run


def _headers(record: OutgoingRecord) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers}


def test_a_dispatch_has_the_attempts_stable_id_and_dispatch_time() -> None:
    run = _single_run()
    decision = run.start()

    (_, dispatch) = OUTGOING.for_commands(run.state, decision.commands)

    task = run.task("only")
    headers = _headers(dispatch)
    assert headers["ce_id"] == dispatch_id(task.id, 1)
    assert headers["ce_time"] == "2024-03-01T12:00:00.000000Z"
    assert dispatch.topic == "waypost.tasks.echo"


def test_a_dispatch_built_again_from_stored_state_is_the_same_bytes() -> None:
    text = SINGLE.replace("{text: $goal.text}", "{text: $goal.text, b: 1}")
    run = Run(load_playbook(text), {"text": "t"})
    decision = run.start()
    (_, sent) = OUTGOING.for_commands(run.state, decision.commands)
    (command,) = [c for c in decision.commands if isinstance(c, DispatchTask)]
    task = run.task("only")
    # PostgreSQL's jsonb keeps its own key order, not the one the input was built in.
    stored = task.evolve(input=dict(reversed(list((task.input or {}).items()))))
    assert list(stored.input or {}) != list(task.input or {})

    (again,) = OUTGOING.for_commands(run.state, [DispatchTask(stored, command.deadline)])

    assert (again.key, again.value, again.headers) == (sent.key, sent.value, sent.headers)


def test_the_dead_letter_is_the_last_dispatch_exactly_plus_its_dlq_headers() -> None:
    run = _single_run()
    run.start()
    run.advance(2)
    run.fail("only", message="first")
    run.advance(5)
    decision = run.apply(RetryDue(run.task("only").id))
    (sent,) = OUTGOING.for_commands(run.state, decision.commands)
    run.advance(3)

    decision = run.fail("only", retryable=False, message="text is 'bad'")
    dead, failed = OUTGOING.for_commands(run.state, decision.commands)

    assert dead.topic == "waypost.tasks.echo.dlq"
    assert (dead.key, dead.value) == (sent.key, sent.value)
    assert dead.headers[: len(sent.headers)] == sent.headers
    extra = {
        name.removeprefix("waypost-dlq-"): value
        for name, value in _headers(dead).items()
        if name.startswith("waypost-dlq-")
    }
    assert extra == {
        "reason": "exhausted",
        "source-topic": "waypost.tasks.echo",
        "source-partition": "",
        "source-offset": "",
        "source-timestamp": "",
        "consumer-group": "waypost.agents.echo",
        "error-class": "RuntimeError",
        "error-message": "text is 'bad'",
        "stack-digest": message_digest("RuntimeError", "text is 'bad'"),
        "attempts": "2",
        "first-failure": "2024-03-01T12:00:02.000Z",
        "last-failure": "2024-03-01T12:00:10.000Z",
    }
    body = default_codec().decode(dead.value, dead.headers)
    assert isinstance(body.payload, TaskDispatched)
    assert (body.payload.attempt, body.payload.input) == (2, {"text": "bad"})
    event = default_codec().decode(failed.value, failed.headers)
    assert isinstance(event.payload, WorkflowFailed)
    task = run.task("only")
    assert event.payload.dead_letter == DeadLetterRef(
        topic="waypost.tasks.echo.dlq",
        event_id=_headers(sent)["ce_id"],
        task_id=task.id,
        attempt=2,
    )
    assert event.payload.reason == run.state.reason


def test_a_workflow_failed_for_another_reason_has_no_dead_letter() -> None:
    run = Run(None)
    decision = run.start()

    (failed,) = OUTGOING.for_commands(run.state, decision.commands)

    event = default_codec().decode(failed.value, failed.headers)
    assert isinstance(event.payload, WorkflowFailed)
    assert event.payload.dead_letter is None
    assert b"dead_letter" not in (failed.value or b"")
