"""A remote A2A agent for the bridge's tests, built only from the official ``a2a-sdk``
server (AgentExecutor + DefaultRequestHandler + its Starlette routes), served by
uvicorn on a loopback port in a thread. It counts every message it receives.

What it does with a task depends on the ``mode`` of the message's data part:

- ``echo``: completes at once with an artifact ``{"echo": <input>, "count": 3}``;
- ``fail``: fails, saying why;
- ``reject``: rejects the task;
- ``ask``: asks "May I refund <amount> EUR?" (input-required); a reply with
  ``decision: approve`` completes it with ``{"refunded": <amount>, "approved_by": ...}``;
- ``hold``: stays working until cancelled;
- ``reply``: answers at once with a message ``{"answer": 42}``, making no task.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from a2a.helpers import (
    get_data_parts,
    new_data_part,
    new_message,
    new_task_from_user_message,
    new_text_part,
)
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
)
from starlette.applications import Starlette

from waypost.stack.process import free_port

TOKEN = "remote-secret-token"


@dataclass
class Received:
    """What the remote agent was sent, in order."""

    messages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (task, data)
    cancelled: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)  # Authorization header of each call
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, task_id: str) -> list[dict[str, Any]]:
        """The data of every message sent to ``task_id``."""
        with self.lock:
            return [data for task, data in self.messages if task == task_id]

    def tasks(self) -> list[str]:
        """The remote tasks messages went to, in order of their first message."""
        with self.lock:
            return list(dict.fromkeys(task for task, _ in self.messages))


class Executor(AgentExecutor):
    """The test agent's behaviour (see the module docstring)."""

    def __init__(self, received: Received) -> None:
        self.received = received

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None
        task = context.current_task
        data = next(iter(get_data_parts(context.message.parts)), {})
        if task is None and data.get("mode") == "reply":
            # Answered at once with a message: no task is made.
            with self.received.lock:
                self.received.messages.append(("(no task)", data))
            answer = new_message([new_data_part({"answer": 42})], context.context_id)
            await event_queue.enqueue_event(answer)
            return
        if task is None:
            task = new_task_from_user_message(context.message)
            await event_queue.enqueue_event(task)
        with self.received.lock:
            self.received.messages.append((task.id, data))
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        first = task.history[0] if task.history else context.message
        mode = next(iter(get_data_parts(first.parts)), {}).get("mode", "echo")
        if mode == "echo":
            await updater.add_artifact([new_data_part({"echo": data, "count": 3})], name="echo")
            await updater.complete()
        elif mode == "fail":
            await updater.failed(updater.new_agent_message([new_text_part("the ledger is down")]))
        elif mode == "reject":
            await updater.reject(updater.new_agent_message([new_text_part("not my job")]))
        elif mode == "ask":
            amount = next(iter(get_data_parts(first.parts)), {}).get("amount", 0)
            if data.get("decision") == "approve":
                result = {"refunded": amount, "approved_by": data.get("approved_by")}
                await updater.add_artifact([new_data_part(result)], name="refund")
                await updater.complete()
            else:
                question = f"May I refund {amount:g} EUR?"
                await updater.requires_input(updater.new_agent_message([new_text_part(question)]))
        elif mode == "hold":
            await updater.start_work()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id is not None
        assert context.context_id is not None
        with self.received.lock:
            self.received.cancelled.append(context.task_id)
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


@dataclass
class RemoteServer:
    """A running remote agent: its base URL and what it received."""

    url: str
    received: Received


def card(url: str) -> AgentCard:
    """The test agent's card: one skill, ``refund``, over JSON-RPC at ``url``."""
    return AgentCard(
        name="Refund desk",
        description="Refunds, asking before it pays out.",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(protocol_binding="JSONRPC", url=url + "/", protocol_version="1.0")
        ],
        capabilities=AgentCapabilities(streaming=False),
        default_input_modes=["application/json"],
        default_output_modes=["application/json"],
        skills=[
            AgentSkill(id="refund", name="Refund", description="Refund a payment", tags=["pay"])
        ],
    )


@contextmanager
def serving_remote() -> Iterator[RemoteServer]:
    """Serve the test agent on a free loopback port until the block ends."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    received = Received()
    agent_card = card(url)
    handler = DefaultRequestHandler(
        agent_executor=Executor(received), task_store=InMemoryTaskStore(), agent_card=agent_card
    )
    routes = [*create_agent_card_routes(agent_card), *create_jsonrpc_routes(handler, "/")]
    inner = Starlette(routes=routes)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            found = dict(scope["headers"]).get(b"authorization", b"")
            with received.lock:
                received.headers.append(found.decode())
        await inner(scope, receive, send)

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="remote-a2a-agent", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the remote A2A test agent did not start")
        thread.join(0.05)  # waits for the server thread, not a fixed sleep
    try:
        yield RemoteServer(url, received)
    finally:
        server.should_exit = True
        thread.join(10)
