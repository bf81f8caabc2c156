"""Waypost as an A2A agent, end to end: the official a2a-sdk client over real HTTP
against `waypost serve`, with a real orchestrator and agent worker on the real broker
and PostgreSQL. The card's skills are the goal types; a goal sent with message/send
completes with its outputs as artifacts; a step waiting for a reviewer is
input-required until a decision through the JSON API (as the console makes it)
completes it; tasks/cancel cancels; a message sent twice makes one workflow; no token
is 401."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from a2a.client import A2ACardResolver, Client, ClientConfig, ClientFactory
from a2a.client.client import ClientCallContext
from a2a.helpers import get_data_parts, get_message_text, new_data_part
from a2a.types.a2a_pb2 import (
    AgentCard,
    CancelTaskRequest,
    GetTaskRequest,
    Message,
    Role,
    SendMessageRequest,
    Task,
    TaskState,
)
from google.protobuf.json_format import ParseDict
from google.protobuf.struct_pb2 import Struct

from tests.e2e.conftest import PLAYBOOKS, ROOT, Platform
from tests.e2e.reviewing import decide, escalation_of, serving

pytestmark = pytest.mark.e2e

REVIEW_PLAYBOOKS = ROOT / "tests" / "e2e" / "playbooks"
TIMEOUT_S = 60.0
FINAL = {TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_CANCELED}


@pytest.fixture
def api(platform: Platform) -> Iterator[httpx.Client]:
    """Orchestrator, echo agent and `waypost serve`; a JSON API client with an admin token."""
    platform.env_overrides["WAYPOST_PLAYBOOK_DIRS"] = f"{PLAYBOOKS},{REVIEW_PLAYBOOKS}"
    with serving(platform, ("tests.support.agents",)) as client:
        yield client


@asynccontextmanager
async def a2a_client(
    api: httpx.Client, *, streaming: bool = False, polling: bool = False, legacy: bool = False
) -> AsyncIterator[tuple[Client, AgentCard]]:
    """An a2a-sdk client made from the agent card, sending the API's admin token
    (``legacy``: only the card's A2A 0.3 interface, so message/send, tasks/get ...)."""
    async with httpx.AsyncClient(
        headers={"Authorization": api.headers["Authorization"]}, timeout=TIMEOUT_S
    ) as http:
        card = await A2ACardResolver(http, str(api.base_url)).get_agent_card()
        if legacy:
            keep = [i for i in card.supported_interfaces if i.protocol_version == "0.3"]
            del card.supported_interfaces[:]
            card.supported_interfaces.extend(keep)
        config = ClientConfig(httpx_client=http, streaming=streaming, polling=polling)
        client = ClientFactory(config).create(card)
        yield client, card


def goal_message(message_id: str, skill: str, goal_input: dict[str, Any]) -> SendMessageRequest:
    """A message asking for a goal: the skill in its metadata, the input as data part."""
    return SendMessageRequest(
        message=Message(
            message_id=message_id,
            role=Role.ROLE_USER,
            parts=[new_data_part(goal_input)],
            metadata=ParseDict({"skill": skill}, Struct()),
        )
    )


async def send(client: Client, request: SendMessageRequest) -> Task:
    """message/send; the task it answers with."""
    context = ClientCallContext(timeout=TIMEOUT_S)
    responses = [r async for r in client.send_message(request, context=context)]
    (response,) = responses
    assert response.HasField("task"), response
    return response.task


async def until(client: Client, task_id: str, states: set[Any]) -> Task:
    """tasks/get until the task is in one of ``states`` (a deadline, never a sleep as
    synchronisation: each poll is a request)."""
    deadline = asyncio.get_running_loop().time() + 90
    while True:
        task = await client.get_task(GetTaskRequest(id=task_id))
        if task.status.state in states:
            return task
        assert task.status.state not in FINAL - states, task
        assert asyncio.get_running_loop().time() < deadline, f"{task_id} stayed {task.status}"
        await asyncio.sleep(0.2)


def test_a_goal_sent_by_the_a2a_sdk_client_completes_with_its_output(
    platform: Platform, api: httpx.Client
) -> None:
    async def scenario() -> None:
        async with a2a_client(api, polling=True) as (client, card):
            assert {"test.echo", "test.review"} <= {s.id for s in card.skills}
            assert card.security_schemes["bearer"].http_auth_security_scheme.scheme == "bearer"

            request = goal_message("e2e-echo-1", "test.echo", {"text": "hello a2a"})
            first = await send(client, request)
            again = await send(client, request)  # the same message id: the same workflow
            done = await until(client, first.id, {TaskState.TASK_STATE_COMPLETED})

        assert first.id == again.id == "a2a:e2e-echo-1"
        assert first.status.state in {
            TaskState.TASK_STATE_SUBMITTED,
            TaskState.TASK_STATE_WORKING,
        }
        assert [a.name for a in done.artifacts] == ["echo"]
        assert get_data_parts(done.artifacts[0].parts) == [{"text": "hello a2a", "attempt": 1.0}]
        assert platform.statuses(["a2a:e2e-echo-1"]) == {"completed": 1}
        listed = api.get("/api/v1/workflows", params={"goal_id": "a2a:e2e-echo-1"}).json()
        assert len(listed["items"]) == 1

        # An A2A 0.3 client (message/send, tasks/get) blocks until the task completes.
        async with a2a_client(api, legacy=True) as (legacy, _):
            blocked = await send(legacy, goal_message("e2e-echo-2", "test.echo", {"text": "0.3"}))
        assert blocked.status.state == TaskState.TASK_STATE_COMPLETED
        assert get_data_parts(blocked.artifacts[0].parts)[0]["text"] == "0.3"

        # message/stream: the task, then its changes up to the completion.
        async with a2a_client(api, streaming=True) as (streamer, _):
            request = goal_message("e2e-echo-3", "test.echo", {"text": "streamed"})
            events = [
                e
                async for e in streamer.send_message(
                    request, context=ClientCallContext(timeout=TIMEOUT_S)
                )
            ]
        assert events[0].task.id == "a2a:e2e-echo-3"
        assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
        (artifact,) = [e.artifact_update.artifact for e in events if e.HasField("artifact_update")]
        assert get_data_parts(artifact.parts)[0]["text"] == "streamed"

        # No token, no service.
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as anonymous:
            refused = await anonymous.post(
                f"{api.base_url}/a2a",
                json={"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": first.id}},
            )
        assert refused.status_code == 401

    asyncio.run(scenario())


def test_a_goal_waiting_for_a_reviewer_is_input_required_then_completes_after_the_decision(
    platform: Platform, api: httpx.Client
) -> None:
    async def scenario() -> None:
        async with a2a_client(api) as (client, _):
            # Blocking message/send stops at input-required: a person must decide.
            waiting = await send(
                client, goal_message("e2e-review-1", "test.review", {"text": "approve me"})
            )
            assert waiting.status.state == TaskState.TASK_STATE_INPUT_REQUIRED, waiting
            escalation = escalation_of(api, waiting.id)
            reason = f"step 'reviewed' waits for a reviewer: {escalation['reason']}"
            assert get_message_text(waiting.status.message) == reason
            assert (
                get_data_parts(waiting.status.message.parts)[0]["escalation_id"]
                == (escalation["id"])
            )

            decide(api, escalation, "approve")  # as the console does
            done = await until(client, waiting.id, {TaskState.TASK_STATE_COMPLETED})
            outputs = {a.name: get_data_parts(a.parts)[0] for a in done.artifacts}
            assert outputs == {"reviewed": {"text": "approve me", "attempt": 1.0}, "timed": None}

            # tasks/cancel cancels a task that waits for a reviewer.
            other = await send(
                client, goal_message("e2e-review-2", "test.review", {"text": "never mind"})
            )
            assert other.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
            cancelled = await client.cancel_task(CancelTaskRequest(id=other.id))
            assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
            read = await client.get_task(GetTaskRequest(id=other.id))
            assert read.status.state == TaskState.TASK_STATE_CANCELED

        stored = platform.workflow("a2a:e2e-review-2")
        assert stored is not None
        assert stored.status.value == "cancelled"
        assert stored.reason is not None
        assert "test-admin" in stored.reason

    asyncio.run(scenario())
