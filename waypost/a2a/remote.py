"""Talking to a remote A2A agent, through the official ``a2a-sdk`` client only.

    async with connect(bridge, os.environ) as remote:
        task = await remote.send({"amount": 12}, context_id=..., message_id=...)
        task = await remote.get(task.id)

Messages are sent with ``return_immediately`` (the SDK's polling mode): the remote
agent answers with its task at once and the bridge follows the task with ``tasks/get``,
so a long remote task holds no HTTP request open. Every SDK, HTTP or protocol error
becomes ``RemoteUnavailable`` (retryable) or ``RemoteRefused``; what the SDK returns is
read into ``states.RemoteTask``, so nothing above this module sees an SDK type.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
from a2a.client import A2ACardResolver, Client, ClientConfig, ClientFactory, minimal_agent_card
from a2a.helpers import get_data_parts, get_text_parts, new_data_part, new_text_part
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
from a2a.utils.constants import TransportProtocol
from a2a.utils.errors import A2AError, TaskNotCancelableError, TaskNotFoundError

from waypost.a2a.config import Bridge
from waypost.a2a.errors import RemoteRefused, RemoteUnavailable
from waypost.a2a.states import RemoteTask
from waypost.tools.config import resolve

_REQUEST_TIMEOUT_S = 30.0


class RemoteAgent:
    """One bridge's remote agent, for the calls of one task."""

    def __init__(self, bridge: Bridge, client: Client) -> None:
        self.bridge = bridge
        self._client = client

    async def send(
        self,
        data: Mapping[str, Any],
        *,
        context_id: str,
        message_id: str,
        task_id: str | None = None,
        text: str | None = None,
    ) -> RemoteTask:
        """Send ``data`` (and ``text``) as a message: a new task, or a reply to the open
        task ``task_id``. A remote agent that answers with a message rather than a task
        has finished: its parts come back as a completed task without an id."""
        parts = [new_data_part(dict(data))]
        if text:
            parts.append(new_text_part(text))
        message = Message(
            message_id=message_id,
            role=Role.ROLE_USER,
            parts=parts,
            context_id=context_id,
            task_id=task_id or "",
        )
        if self.bridge.skill:
            message.metadata.update({"skill": self.bridge.skill})
        found: RemoteTask | None = None
        async with self._calling(f"send a message to task {task_id}" if task_id else "send"):
            async for event in self._client.send_message(SendMessageRequest(message=message)):
                if event.HasField("task"):
                    found = read_task(event.task)
                elif event.HasField("message"):
                    found = RemoteTask(
                        id="",
                        context_id=event.message.context_id,
                        state="completed",
                        data=tuple(get_data_parts(event.message.parts)),
                        texts=tuple(get_text_parts(event.message.parts)),
                    )
        if found is None:
            raise RemoteUnavailable(f"{self._who}: answered with neither a task nor a message")
        return found

    async def get(self, task_id: str) -> RemoteTask | None:
        """The remote task as it is now (None: the remote agent does not know it)."""
        try:
            async with self._calling(f"get task {task_id}"):
                return read_task(await self._client.get_task(GetTaskRequest(id=task_id)))
        except RemoteUnavailable as exc:
            if isinstance(exc.__cause__, TaskNotFoundError):
                return None
            raise

    async def cancel(self, task_id: str) -> RemoteTask | None:
        """Ask the remote agent to cancel the task (None: it had finished or is unknown)."""
        try:
            async with self._calling(f"cancel task {task_id}"):
                return read_task(await self._client.cancel_task(CancelTaskRequest(id=task_id)))
        except RemoteUnavailable as exc:
            if isinstance(exc.__cause__, TaskNotFoundError | TaskNotCancelableError):
                return None
            raise

    @property
    def _who(self) -> str:
        return f"remote agent {self.bridge.agent!r} ({self.bridge.card or self.bridge.endpoint})"

    @asynccontextmanager
    async def _calling(self, what: str) -> AsyncIterator[None]:
        try:
            yield
        except (A2AError, httpx.HTTPError, ValueError) as exc:
            detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            raise RemoteUnavailable(f"{self._who}: could not {what}: {detail}") from exc


@asynccontextmanager
async def connect(bridge: Bridge, environ: Mapping[str, str]) -> AsyncIterator[RemoteAgent]:
    """A client of the bridge's remote agent (its card fetched first, if it has one),
    closed on exit. ``RemoteRefused`` if a header refers to a variable that is not set
    or the card does not offer the bridge's skill; ``RemoteUnavailable`` if the card
    cannot be had."""
    try:
        headers = {key: resolve(value, environ) for key, value in bridge.headers.items()}
    except KeyError as missing:
        raise RemoteRefused(
            f"bridge {bridge.capability!r} ({bridge.source}): its headers refer to the "
            f"environment variable {missing.args[0]}, which the bridge worker does not have"
        ) from None
    timeout = min(_REQUEST_TIMEOUT_S, bridge.timeout)
    async with httpx.AsyncClient(headers=headers, timeout=timeout) as http:
        factory = ClientFactory(ClientConfig(streaming=False, polling=True, httpx_client=http))
        card = await _card(bridge, http)
        try:
            client = factory.create(card)
        except ValueError as exc:
            raise RemoteRefused(
                f"remote agent {bridge.agent!r}: its card offers no JSON-RPC interface ({exc})"
            ) from None
        try:
            yield RemoteAgent(bridge, client)
        finally:
            await client.close()


async def _card(bridge: Bridge, http: httpx.AsyncClient) -> AgentCard:
    card_url = bridge.card_url
    if card_url is None:
        assert bridge.endpoint is not None
        return minimal_agent_card(bridge.endpoint, [TransportProtocol.JSONRPC])
    parts = urlsplit(card_url)
    resolver = A2ACardResolver(http, f"{parts.scheme}://{parts.netloc}", parts.path)
    try:
        card = await resolver.get_agent_card()
    except (A2AError, httpx.HTTPError, ValueError) as exc:
        detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        raise RemoteUnavailable(
            f"remote agent {bridge.agent!r}: could not read its agent card {card_url}: {detail}"
        ) from exc
    skills = [skill.id for skill in card.skills]
    if bridge.skill and skills and bridge.skill not in skills:
        raise RemoteRefused(
            f"remote agent {bridge.agent!r} offers no skill {bridge.skill!r} (its card lists "
            f"{', '.join(skills)}); fix the bridge's skill in {bridge.source}"
        )
    return card


def read_task(task: Task) -> RemoteTask:
    """The SDK's task as the bridge reads it."""
    data: list[Any] = []
    texts: list[str] = []
    for artifact in task.artifacts:
        data.extend(get_data_parts(artifact.parts))
        texts.extend(get_text_parts(artifact.parts))
    message = task.status.message
    said = "\n".join(get_text_parts(message.parts)) if task.status.HasField("message") else ""
    return RemoteTask(
        id=task.id,
        context_id=task.context_id,
        state=state_name(task.status.state),
        message=said,
        data=tuple(data),
        texts=tuple(texts),
    )


def state_name(state: Any) -> str:
    """``input-required`` for ``TASK_STATE_INPUT_REQUIRED`` (the protocol's own names)."""
    try:
        name = TaskState.Name(state)
    except ValueError:
        return "unspecified"
    return name.removeprefix("TASK_STATE_").lower().replace("_", "-")
