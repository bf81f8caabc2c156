"""The tool client and the governed call path against the SDK's test server over real
stdio and real HTTP: schema checks, governance before the call, timeouts, crashes and
reconnects. Governance decides in memory (``MemoryGate``) here; the worker tests use
PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.waypost.tools.conftest import Calls, server_file
from waypost import AgentContext, Approval, TaskInfo
from waypost.governance import (
    ActionForbidden,
    ApprovalRequired,
    BudgetStopped,
    MemoryGate,
    Policies,
    load_text,
)
from waypost.governance.acting import TaskGovernance
from waypost.governance.engine import digest_params
from waypost.telemetry import Tracing
from waypost.tools.client import ToolClient
from waypost.tools.config import ToolSet
from waypost.tools.errors import InvalidToolArguments, ToolUnavailable, UnknownTool
from waypost.tools.governed import TaskTools, Toolbox

POLICY = """\
name: tools
version: 1
applies_to: "*"
actions:
  allow: [mcp:local/echo, mcp:local/whoami, mcp:local/hang, mcp:local/crash, mcp:local/nope,
          mcp:web/echo]
  deny:
    - {action: mcp:local/secret, reason: nobody reads the secret}
budgets:
  per_workflow: {cost_usd: 1.0}
"""
TASK = TaskInfo("wf-1", "task-1", "step", "tooluser", 1, "test.tools", datetime.now(UTC))


@pytest.fixture
def client(tmp_path: Path, calls: Calls) -> Iterator[ToolClient]:
    toolset = ToolSet([server_file(tmp_path / "tools", calls, timeout="2s")])
    made = ToolClient(toolset.current, environ=os.environ)
    made.start()
    yield made
    made.close()


def _tools(client: ToolClient) -> tuple[TaskTools, AgentContext]:
    gate = MemoryGate(Policies((load_text(POLICY, source="policies/tools.yaml"),)))
    ctx = AgentContext(
        task=TASK,
        governance=TaskGovernance(
            gate, agent="tooluser", capability="tooluser", workflow_id="wf-1", task_id="task-1"
        ),
    )
    return Toolbox(client).for_task(ctx.act, ctx.note), ctx


def test_list_and_call_over_stdio_reuse_one_session(client: ToolClient, calls: Calls) -> None:
    tools, ctx = _tools(client)

    listed = {tool.name: tool for tool in tools.list("local")}
    first = tools.call("local", "echo", {"text": "ab", "times": 2})
    second = tools.call("local", "whoami")

    assert {"echo", "whoami", "hang", "crash", "secret"} <= set(listed)
    assert listed["echo"].description == "Repeat ``text`` ``times`` times."
    assert listed["echo"].input_schema["properties"]["text"]["type"] == "string"
    assert (first.text, first.is_error) == ("abab", False)
    assert second.structured == {"pid": calls.of("echo")[0]}  # the same process
    assert ctx.notes[0].startswith("tool local/echo (arguments sha256 ")
    assert ctx.notes[0].endswith("): ok")


def test_invalid_arguments_and_unknown_tools_never_reach_the_server(
    client: ToolClient, calls: Calls
) -> None:
    tools, ctx = _tools(client)

    with pytest.raises(InvalidToolArguments, match=r"times: .* is not of type .integer."):
        tools.call("local", "echo", {"text": "a", "times": "twice"})
    with pytest.raises(UnknownTool, match="has no tool 'nope'"):
        tools.call("local", "nope")

    assert calls.of("echo") == []
    assert "refused: InvalidToolArguments" in ctx.notes[0]


def test_a_denied_tool_never_reaches_the_server_and_a_budget_stops_calls(
    client: ToolClient, calls: Calls
) -> None:
    tools, ctx = _tools(client)

    with pytest.raises(ActionForbidden, match="nobody reads the secret"):
        tools.call("local", "secret")
    tools.call("local", "echo", {"text": "a"}, cost_usd=0.6)
    with pytest.raises(BudgetStopped, match="budget"):
        tools.call("local", "echo", {"text": "b"}, cost_usd=0.6)

    assert calls.of("secret") == []
    assert len(calls.of("echo")) == 1
    assert ctx.governance is not None
    assert [e.action for e in ctx.governance.events if hasattr(e, "action")][:3] == [
        "mcp:local/secret",
        "mcp:local/echo",
        "mcp:local/echo",
    ]


def test_a_hanging_tool_times_out_and_a_crash_fails_then_the_next_call_reconnects(
    client: ToolClient, calls: Calls
) -> None:
    tools, ctx = _tools(client)
    before = tools.call("local", "whoami").structured

    with pytest.raises(
        ToolUnavailable, match=r"tool 'hang' of MCP server 'local': no answer within 2 s"
    ):
        tools.call("local", "hang")
    after_hang = tools.call("local", "whoami").structured
    with pytest.raises(ToolUnavailable, match="tool 'crash' of MCP server 'local'"):
        tools.call("local", "crash")
    after_crash = tools.call("local", "whoami").structured

    assert before is not None
    assert after_hang is not None
    assert after_crash is not None
    assert len({before["pid"], after_hang["pid"], after_crash["pid"]}) == 3
    assert calls.of("crash") == [after_hang["pid"]]
    assert any("local/hang" in note and "): unavailable: " in note for note in ctx.notes)


def test_a_streamable_http_server_is_listed_and_called(
    tmp_path: Path, calls: Calls, http_url: str
) -> None:
    toolset = ToolSet([server_file(tmp_path / "tools", calls, http_url=http_url)])
    client = ToolClient(toolset.current, environ=os.environ)
    client.start()
    try:
        tools, _ = _tools(client)
        names = {tool.name for tool in tools.list("web")}
        result = tools.call("web", "echo", {"text": "over http"})
    finally:
        client.close()

    assert "echo" in names
    assert result.text == "over http"
    assert len(calls.of("echo")) == 1


def test_an_unreachable_server_or_a_missing_secret_is_a_retryable_error_naming_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "t.yaml").write_text(
        "servers:\n"
        "  gone: {url: 'http://127.0.0.1:9/mcp', timeout: 3s}\n"
        "  locked:\n"
        "    url: http://127.0.0.1:9/mcp\n"
        "    headers: {Authorization: 'Bearer ${LOCKED_TOKEN}'}\n"
    )
    client = ToolClient(ToolSet([tmp_path]).current, environ={})
    client.start()
    try:
        with pytest.raises(ToolUnavailable, match="MCP server 'gone': could not connect"):
            client.tools("gone")
        with pytest.raises(
            ToolUnavailable,
            match="MCP server 'locked': environment variable LOCKED_TOKEN is not set",
        ):
            client.tools("locked")
    finally:
        client.close()


def test_an_approved_call_runs_once_after_approval_and_has_its_own_span(
    client: ToolClient, calls: Calls
) -> None:
    policy = load_text(
        "name: held\nversion: 1\napplies_to: '*'\nactions: {allow: [mcp:local/echo]}\n"
        "require_approval:\n  - {action: mcp:local/echo, reason: a person checks echoes}\n",
        source="policies/held.yaml",
    )
    gate = MemoryGate(Policies((policy,)))
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(provider)

    def attempt(approvals: tuple[Approval, ...]) -> TaskTools:
        ctx = AgentContext(
            task=TASK,
            governance=TaskGovernance(
                gate,
                agent="tooluser",
                capability="tooluser",
                workflow_id="wf-1",
                task_id="task-1",
                approvals=approvals,
            ),
        )
        return Toolbox(client).for_task(ctx.act, ctx.note, tracing)

    with pytest.raises(ApprovalRequired, match="a person checks echoes") as held:
        attempt(()).call("local", "echo", {"text": "hi"})
    assert calls.of("echo") == []
    proposal = held.value.proposal
    assert proposal is not None
    assert proposal.params_digest == digest_params({"text": "hi"})[0]

    approved = Approval("mcp:local/echo", proposal.params_digest, "alice", "esc-1")
    assert attempt((approved,)).call("local", "echo", {"text": "hi"}).text == "hi"
    assert len(calls.of("echo")) == 1

    spans = [s for s in exporter.get_finished_spans() if s.name == "mcp call local/echo"]
    assert len(spans) == 2
    assert spans[0].attributes is not None
    assert spans[0].attributes["waypost.action"] == "mcp:local/echo"
    assert [e.name for e in spans[1].events] == ["policy.decided"]
    assert spans[1].attributes is not None
    assert spans[1].attributes["mcp.outcome"] == "ok"
