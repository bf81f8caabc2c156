"""The tool loop of waypost.llm: a fake OpenAI-compatible model over real HTTP, scripted to
ask for tool calls, and the official SDK's test MCP server over real stdio, each call
governed by a real policy (MemoryGate) through ctx.tools."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from tests.support.chat_model import ChatModel, chat_model
from tests.waypost.tools.conftest import Calls, server_file
from waypost import AgentContext, NonRetryableError, TaskInfo, agent
from waypost.events import TaskDispatched
from waypost.governance import MemoryGate, PolicySet
from waypost.llm import LLMClient, LLMSettings, ToolRoundsExceeded, system, user
from waypost.llm_tools import UNTRUSTED_NOTICE, ToolCallRecord
from waypost.runtime.running import task_context
from waypost.tools.errors import UnknownToolServer
from waypost.tools.governed import Toolbox
from waypost.tools.setup import close_toolbox, open_toolbox

POLICY = """\
name: chatty
version: 1
applies_to: {agents: [chatty]}
actions:
  allow: [mcp:local/echo, mcp:local/whoami]
  deny:
    - {action: mcp:local/secret, reason: the model may not read the secret}
"""


class Prompt(BaseModel):
    text: str


@agent("chatty", version="test")
def chatty(task: Prompt, ctx: AgentContext) -> Prompt:
    """Only its capability and policy matter here: the tests drive the loop themselves."""
    return task


def answer(
    text: str | None = None,
    calls: list[tuple[str, str]] = (),
    tokens: int = 10,  # type: ignore[assignment]
) -> dict[str, Any]:
    """A /chat/completions body with ``text`` and/or tool calls (name, JSON arguments)."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = [
            {"id": f"call-{i}", "type": "function", "function": {"name": n, "arguments": a}}
            for i, (n, a) in enumerate(calls)
        ]
    return {
        "model": "fake-model",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": tokens, "completion_tokens": 2},
    }


@pytest.fixture
def model() -> Iterator[ChatModel]:
    """An OpenAI-compatible /v1/chat/completions on 127.0.0.1 in a thread."""
    with chat_model() as served:
        yield served


@pytest.fixture
def toolbox(tmp_path: Path, calls: Calls) -> Iterator[Toolbox]:
    """The worker's toolbox: the SDK test server over stdio as ``local``."""
    opened = open_toolbox(
        [server_file(tmp_path / "tools", calls)],
        check_interval_s=60,
        environ={},
    )
    assert opened is not None
    yield opened
    close_toolbox(opened)


@pytest.fixture
def ctx(tmp_path: Path, toolbox: Toolbox) -> AgentContext:
    """One task's context as the runtime builds it, governed by POLICY."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "chatty.yaml").write_text(POLICY)
    deadline = datetime.now(UTC) + timedelta(minutes=5)
    task = TaskDispatched(
        workflow_id="wf-llm",
        task_id="wf-llm:chat",
        step="chat",
        capability="chatty",
        attempt=1,
        goal_type="test.llm",
        input={"text": "hi"},
        deadline=deadline.isoformat(),
    )
    return task_context(
        chatty,
        task,
        deadline,
        resources={},
        memory=None,
        governor=MemoryGate(PolicySet([policies], check_interval_s=60)),
        toolbox=toolbox,
    )


def _llm(model: ChatModel) -> LLMClient:
    return LLMClient(
        LLMSettings(base_url=model.url, model="fake-model", input_usd_per_mtok=1_000_000)
    )


def test_the_model_calls_a_tool_once_and_answers_with_its_result(
    model: ChatModel, ctx: AgentContext, calls: Calls
) -> None:
    model.script = [
        answer(calls=[("local__echo", '{"text": "ab", "times": 2}')], tokens=100),
        answer("The server said abab.", tokens=150),
    ]

    reply = _llm(model).chat_with_tools(
        [system("Use the tools."), user("Echo ab twice.")], ctx=ctx, servers=["local"]
    )

    assert reply.text == "The server said abab."
    assert reply.rounds == 1
    assert reply.calls == (ToolCallRecord("local", "echo", "ok"),)
    assert len(calls.of("echo")) == 1  # exactly one call reached the server
    first, second = model.requests
    offered = {spec["function"]["name"]: spec for spec in first["tools"]}
    assert set(offered) == {"local__echo", "local__whoami", "local__secret", "local__hang",
                            "local__crash"}  # fmt: skip
    assert offered["local__echo"]["function"]["parameters"]["required"] == ["text"]
    # The untrusted-data notice comes first; the result goes back only as a tool message.
    assert first["messages"][0] == {"role": "system", "content": UNTRUSTED_NOTICE.content}
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "local__echo"
    assert second["messages"][-1] == {
        "role": "tool",
        "content": "abab",
        "tool_call_id": "call-0",
    }
    # Both turns are accounted to the task (tokens, and $1 a prompt token here).
    assert (ctx.input_tokens, ctx.output_tokens) == (250, 4)
    assert ctx.cost_usd == pytest.approx(250)
    assert (reply.input_tokens, reply.output_tokens) == (250, 4)
    assert any(
        note.startswith("tool local/echo (arguments sha256 ") and note.endswith(": ok")
        for note in ctx.notes
    )


def test_a_denied_tool_is_reported_to_the_model_and_never_reaches_the_server(
    model: ChatModel, ctx: AgentContext, calls: Calls
) -> None:
    model.script = [
        answer(
            calls=[
                ("local__secret", "{}"),
                ("local__echo", "not json"),
                ("local__echo", '{"times": 3}'),
                ("local__nope", "{}"),
            ]
        ),
        answer("I cannot read the secret."),
    ]

    reply = _llm(model).chat_with_tools([user("Read the secret.")], ctx=ctx, servers=["local"])

    assert reply.text == "I cannot read the secret."
    assert [c.outcome for c in reply.calls] == ["refused", "invalid", "refused", "invalid"]
    assert calls.of("secret") == []  # governance said no before any connection was used
    assert calls.of("echo") == []  # nor did the malformed or schema-breaking calls go out
    results = [m for m in model.requests[1]["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in results] == ["call-0", "call-1", "call-2", "call-3"]
    denied, not_json, no_text, unknown = (m["content"] for m in results)
    assert denied.startswith("error: the call was refused and not made")
    assert "the model may not read the secret" in denied
    assert not_json.startswith("error: the arguments are not JSON")
    assert '"text" is a required property' in no_text
    assert unknown.startswith("error: there is no tool 'local__nope'")
    assert any(n.startswith("tool local/secret ") and ": refused: " in n for n in ctx.notes)


def test_only_the_named_tools_are_offered(model: ChatModel, ctx: AgentContext) -> None:
    model.script = [answer("nothing to call")]

    _llm(model).chat_with_tools([user("hi")], ctx=ctx, servers=["local"], only=["local/whoami"])

    assert [t["function"]["name"] for t in model.requests[0]["tools"]] == ["local__whoami"]


def test_the_rounds_limit_stops_a_model_that_never_stops_calling_tools(
    model: ChatModel, ctx: AgentContext, calls: Calls
) -> None:
    model.script = [answer(calls=[("local__echo", '{"text": "again"}')])]

    with pytest.raises(ToolRoundsExceeded, match=r"after 2 round\(s\) of tool calls") as raised:
        _llm(model).chat_with_tools([user("loop")], ctx=ctx, servers=["local"], max_tool_rounds=2)

    assert isinstance(raised.value, NonRetryableError)  # the same prompt would loop again
    assert len(calls.of("echo")) == 2  # two rounds ran; the third request was refused
    assert len(model.requests) == 3
    assert ctx.input_tokens == 30  # every turn was accounted, the last one too


def test_a_task_without_tools_cannot_offer_any(model: ChatModel) -> None:
    bare = AgentContext(task=task_context_info())
    with pytest.raises(UnknownToolServer, match=r"no ctx\.tools"):
        _llm(model).chat_with_tools([user("hi")], ctx=bare, servers=["local"])
    assert model.requests == []


def task_context_info() -> TaskInfo:
    return TaskInfo(
        workflow_id="wf",
        task_id="wf:t",
        step="t",
        capability="chatty",
        attempt=1,
        goal_type="test",
        deadline=datetime.now(UTC) + timedelta(minutes=1),
    )
