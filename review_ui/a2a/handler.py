"""The A2A request handler: the ``a2a-sdk`` RequestHandler interface on top of goals
and workflows. Nothing is kept in memory: every answer is read from the workflow in
PostgreSQL, so any replica of the HTTP app answers for any task."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio
from a2a.auth.user import User
from a2a.server.context import ServerCallContext
from a2a.server.events.event_queue import Event
from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.types.a2a_pb2 import (
    AgentCard,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTaskPushNotificationConfigsResponse,
    ListTasksRequest,
    ListTasksResponse,
    Message,
    SendMessageRequest,
    SubscribeToTaskRequest,
    Task,
    TaskArtifactUpdateEvent,
    TaskPushNotificationConfig,
    TaskStatusUpdateEvent,
)
from google.protobuf.json_format import MessageToDict

from orchestrator.errors import CancelError
from orchestrator.review import CancelRequest
from orchestrator.workflow.state import WorkflowState
from review_ui.a2a import operations
from review_ui.a2a.errors import (
    ExtendedAgentCardNotConfiguredError,
    PushNotificationNotSupportedError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from review_ui.a2a.messages import goal_of
from review_ui.a2a.tasks import INTERRUPTED, TERMINAL, task_of
from review_ui.deps import AppState

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Timing:
    """How often a waiting request reads its workflow, and how long message/send waits
    for it to finish or need a reviewer before answering with the task as it is."""

    poll_s: float = 0.5
    send_waits_s: float = 20.0


DEFAULT_TIMING = Timing()


class WorkflowRequestHandler(RequestHandler):
    """message/send and message/stream submit a goal, tasks/get reads its workflow,
    tasks/cancel cancels it; the task id is the workflow id."""

    def __init__(self, state: AppState, timing: Timing = DEFAULT_TIMING) -> None:
        self._state = state
        self._timing = timing

    async def on_message_send(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> Task | Message:
        """Submit the goal; unless ``returnImmediately``, wait (at most
        ``Timing.send_waits_s``) until the task finishes or needs a reviewer."""
        latest = submitted = await self._submit(params)
        if not params.configuration.return_immediately:
            with anyio.move_on_after(self._timing.send_waits_s):
                async for latest in self._changes(submitted):  # noqa: B007 (the last one)
                    pass
        return task_of(latest)

    async def on_message_send_stream(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event]:
        """Submit the goal, then stream the task and its changes until it finishes or
        needs a reviewer."""
        workflow = await self._submit(params)
        async for event in self._events(workflow):
            yield event

    async def on_subscribe_to_task(
        self, params: SubscribeToTaskRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event]:
        """Stream an unfinished task and its changes until it finishes or needs a
        reviewer."""
        workflow = await self._read(params.id)
        if task_of(workflow).status.state in TERMINAL:
            raise UnsupportedOperationError(
                f"task {params.id!r} has finished; read it with tasks/get"
            )
        async for event in self._events(workflow):
            yield event

    async def on_get_task(self, params: GetTaskRequest, context: ServerCallContext) -> Task | None:
        """The task of the workflow with this id."""
        return task_of(await self._read(params.id))

    async def on_cancel_task(
        self, params: CancelTaskRequest, context: ServerCallContext
    ) -> Task | None:
        """Cancel the workflow, audited with the caller's token name and the ``reason``
        of the request's metadata (or a default one)."""
        actor = _name(context.user)
        metadata = MessageToDict(params.metadata) if params.HasField("metadata") else {}
        reason = metadata.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            reason = "cancelled through A2A"
        if "\x00" in params.id:
            raise TaskNotFoundError(f"no task with id {params.id!r}")
        request = CancelRequest(actor=actor, reason=reason[:500])
        try:
            workflow = await self._run(operations.cancel, self._state, params.id, request)
        except CancelError as exc:
            if exc.status == 404:
                raise TaskNotFoundError(f"no task with id {params.id!r}") from None
            raise TaskNotCancelableError(str(exc)) from None
        return task_of(workflow)

    async def on_list_tasks(
        self, params: ListTasksRequest, context: ServerCallContext
    ) -> ListTasksResponse:
        """Not served: list workflows with GET /api/v1/workflows."""
        raise UnsupportedOperationError(
            "tasks are not listed over A2A; list workflows with GET /api/v1/workflows"
        )

    async def on_create_task_push_notification_config(
        self, params: TaskPushNotificationConfig, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        """Not served (the card says pushNotifications: false)."""
        raise PushNotificationNotSupportedError

    async def on_get_task_push_notification_config(
        self, params: GetTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        """Not served (the card says pushNotifications: false)."""
        raise PushNotificationNotSupportedError

    async def on_list_task_push_notification_configs(
        self, params: ListTaskPushNotificationConfigsRequest, context: ServerCallContext
    ) -> ListTaskPushNotificationConfigsResponse:
        """Not served (the card says pushNotifications: false)."""
        raise PushNotificationNotSupportedError

    async def on_delete_task_push_notification_config(
        self, params: DeleteTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> None:
        """Not served (the card says pushNotifications: false)."""
        raise PushNotificationNotSupportedError

    async def on_get_extended_agent_card(
        self, params: GetExtendedAgentCardRequest, context: ServerCallContext
    ) -> AgentCard:
        """Not served: the public card is the whole card."""
        raise ExtendedAgentCardNotConfiguredError

    async def _submit(self, params: SendMessageRequest) -> WorkflowState:
        goal = goal_of(params, self._state.playbooks)
        return await self._run(operations.submit, self._state, goal)

    async def _read(self, task_id: str) -> WorkflowState:
        workflow = await self._run(operations.read, self._state, task_id)
        if workflow is None:
            raise TaskNotFoundError(f"no task with id {task_id!r}")
        return workflow

    async def _changes(self, workflow: WorkflowState) -> AsyncGenerator[WorkflowState]:
        """The workflow each time its task status changes, until it finishes or needs a
        reviewer (the workflow itself first if it already has)."""
        last = task_of(workflow).status
        while last.state not in TERMINAL | INTERRUPTED:
            await anyio.sleep(self._timing.poll_s)
            workflow = await self._read(workflow.id)
            status = task_of(workflow).status
            if status != last:
                last = status
                yield workflow

    async def _events(self, workflow: WorkflowState) -> AsyncGenerator[Event]:
        """The task, then a status update per change (the artifacts before a
        completion), until it finishes or needs a reviewer."""
        yield task_of(workflow)
        async for changed in self._changes(workflow):
            task = task_of(changed)
            for artifact in task.artifacts:
                yield TaskArtifactUpdateEvent(
                    task_id=task.id, context_id=task.context_id, artifact=artifact
                )
            yield TaskStatusUpdateEvent(
                task_id=task.id, context_id=task.context_id, status=task.status
            )

    async def _run(self, function: Callable[..., T], *args: object) -> T:
        # Blocking database work off the event loop, as FastAPI runs sync routes.
        return await anyio.to_thread.run_sync(function, *args)


def _name(user: User) -> str:
    return user.user_name if user.is_authenticated else "anonymous"
