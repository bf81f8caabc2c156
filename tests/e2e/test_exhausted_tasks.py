"""Exhausted tasks end to end, on the raw broker: real orchestrator and agent processes on
the real broker and PostgreSQL. A task that cannot succeed is dead-lettered as its last
dispatch and its workflow fails pointing to it; the dead letter, fixed and replayed after
its deadline passed, resumes the workflow."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from orchestrator.workflow.state import TaskStatus, WorkflowState, WorkflowStatus
from tests.e2e.conftest import PLAYBOOKS, ROOT, Platform
from tests.waiting import wait_for
from waypost.bus.dead_letters import HEADER_PREFIX, REPLAY_OF_HEADER
from waypost.bus.records import OutgoingRecord, ReceivedRecord

pytestmark = pytest.mark.e2e

E2E_PLAYBOOKS = ROOT / "tests" / "e2e" / "playbooks"


def _status(platform: Platform, workflow_id: str, status: WorkflowStatus) -> WorkflowState:
    def probe() -> WorkflowState | None:
        state = platform.workflow(workflow_id)
        return state if state is not None and state.status is status else None

    return wait_for(probe, timeout=60, what=f"workflow {workflow_id} to be {status}")


def _headers(record: ReceivedRecord) -> dict[str, str]:
    return {name: (value or b"").decode() for name, value in record.headers}


@pytest.mark.slow  # several seconds of broker or browser time: make test-slow
def test_a_dead_lettered_task_replayed_with_a_fixed_input_completes_its_workflow(
    platform: Platform,
) -> None:
    platform.env_overrides["WAYPOST_PLAYBOOK_DIRS"] = f"{PLAYBOOKS},{E2E_PLAYBOOKS}"
    platform.start_orchestrator()
    platform.start_agents()
    tasks_topic = platform.topics.tasks("echo")

    workflow_id = platform.submit("test.exhausted", {"text": "hello", "fail": "permanent"})
    failed = _status(platform, workflow_id, WorkflowStatus.FAILED)

    letter = failed.dead_letter
    task = failed.tasks["echo"]
    assert letter is not None
    assert (letter.topic, letter.task_id, letter.attempt) == (
        f"{tasks_topic}.dlq",
        task.id,
        task.attempt,
    )
    assert failed.reason == (
        f"step 'echo' failed and cannot be retried: NonRetryableError: asked to fail "
        f"permanently; dead-lettered to {letter.topic} as event {letter.event_id}: fix and "
        "replay it to resume"
    )
    (dead,) = platform.read_topic(letter.topic, expect=1)
    (dispatched,) = [
        r
        for r in platform.read_topic(tasks_topic, expect=task.attempt)
        if r.header("ce_id") == letter.event_id.encode()
    ]
    # The dead letter is the dispatch, byte for byte, plus the waypost-dlq-* headers.
    assert (dead.key, dead.value) == (dispatched.key, dispatched.value)
    assert dead.headers[: len(dispatched.headers)] == dispatched.headers
    extra = {
        k.removeprefix(HEADER_PREFIX): v
        for k, v in _headers(dead).items()
        if k.startswith(HEADER_PREFIX)
    }
    assert {
        k: extra[k] for k in ("reason", "source-topic", "source-partition", "source-offset")
    } == {
        "reason": "exhausted",
        "source-topic": tasks_topic,
        "source-partition": "",
        "source-offset": "",
    }
    assert extra["consumer-group"] == platform.topics.agent_group("echo")
    assert (extra["error-class"], extra["error-message"]) == (
        "NonRetryableError",
        "asked to fail permanently",
    )
    assert extra["attempts"] == str(task.attempt)

    # The analyst fixes the input and replays the dead letter once its deadline passed.
    body = json.loads(dead.value or b"")
    deadline = datetime.fromisoformat(body["deadline"])
    body["input"].pop("fail")
    kept = [(k, v) for k, v in dead.headers if not k.startswith(HEADER_PREFIX)]
    wait_for(lambda: datetime.now(UTC) > deadline, timeout=10, what="the deadline to pass")
    platform.publish(
        [
            OutgoingRecord(
                tasks_topic,
                dead.key,
                json.dumps(body).encode(),
                (*kept, (REPLAY_OF_HEADER, b"test")),
            )
        ]
    )

    done = _status(platform, workflow_id, WorkflowStatus.COMPLETED)
    echo = done.tasks["echo"]
    assert (echo.status, echo.attempt) == (TaskStatus.COMPLETED, letter.attempt)
    assert echo.output == {"text": "hello", "attempt": letter.attempt}
    assert (done.reason, done.dead_letter) == (None, None)
    agent_log = (platform.logs / "agents.log").read_text(errors="replace")
    assert "past its deadline: it is a replay of dead letter test" in agent_log
