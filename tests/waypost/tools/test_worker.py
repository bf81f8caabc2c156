"""ctx.tools in a running agent worker on the real broker and PostgreSQL: stdio and
HTTP tool servers called from a handler, governed by policies with the audit in the
database, a tool server added while the worker runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from tests.waypost.runtime.harness import AgentRun, payloads
from tests.waypost.tools.conftest import Calls, server_file
from waypost import AgentContext, agent
from waypost.events import TaskCompleted, TaskFailed
from waypost.governance import repository
from waypost.settings import AgentSettings

pytestmark = pytest.mark.integration

POLICY = """\
name: tooluser
version: 1
applies_to: {agents: [tooluser]}
actions:
  allow: [mcp:local/echo, mcp:local/crash, mcp:web/echo, mcp:later/echo]
  deny:
    - {action: mcp:local/secret, reason: nobody reads the secret}
rate_limits:
  - {action: mcp:web/echo, limit: 1, per: 1h}
"""


class Call(BaseModel):
    server: str
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)


class ToolCalls(BaseModel):
    calls: list[Call]


class Texts(BaseModel):
    texts: list[str]
    tools: list[str]


@agent("tooluser", version="test")
def tooluser(task: ToolCalls, ctx: AgentContext) -> Texts:
    """Calls the tools its input names."""
    assert ctx.tools is not None
    texts = [ctx.tools.call(c.server, c.tool, c.args).text for c in task.calls]
    return Texts(texts=texts, tools=[t.name for t in ctx.tools.list(task.calls[0].server)])


@pytest.fixture
def run(
    make_settings: Callable[..., Any], tmp_path: Path, calls: Calls, http_url: str
) -> Iterator[AgentRun]:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "tooluser.yaml").write_text(POLICY)
    settings = make_settings(
        AgentSettings,
        topic_partitions=1,
        policy_dirs=[policies],
        tool_dirs=[server_file(tmp_path / "tools", calls, http_url=http_url)],
        policy_check_interval_s=0.2,
    )
    started = AgentRun(settings, [tooluser])
    started.start()
    yield started
    started.close()


def _call(server: str, tool: str, **args: Any) -> dict[str, Any]:
    return {"calls": [{"server": server, "tool": tool, "args": args}]}


def test_a_handler_calls_stdio_and_http_tools_governed_and_audited(
    run: AgentRun, calls: Calls, engine: Engine, tmp_path: Path
) -> None:
    run.dispatch(
        "tooluser",
        ("t-stdio", 1, _call("local", "echo", text="from stdio")),
        ("t-http", 1, _call("web", "echo", text="over http")),
        ("t-limited", 1, _call("web", "echo", text="again")),
        ("t-denied", 1, _call("local", "secret")),
        ("t-crash", 1, _call("local", "crash")),
        ("t-after", 1, _call("local", "echo", text="after the crash")),
    )
    results = run.results(6)
    done = {p.task_id: p for p in payloads(results, TaskCompleted)}
    failed = {p.task_id: p for p in payloads(results, TaskFailed)}

    assert done["t-stdio"].output["texts"] == ["from stdio"]
    assert "secret" in done["t-stdio"].output["tools"]
    assert done["t-http"].output["texts"] == ["over http"]
    assert any(
        line.startswith("tool local/echo (arguments sha256 ") and line.endswith(": ok")
        for line in done["t-stdio"].reasoning
    )
    assert (failed["t-limited"].error.type, failed["t-limited"].error.retryable) == (
        "RateLimited",
        True,
    )
    assert (failed["t-denied"].error.type, failed["t-denied"].error.retryable) == (
        "ActionForbidden",
        False,
    )
    assert "nobody reads the secret" in failed["t-denied"].error.message
    assert calls.of("secret") == []  # the denied tool never reached the server
    # The server exited mid-call: a retryable failure naming it; the next task reconnects.
    assert (failed["t-crash"].error.type, failed["t-crash"].error.retryable) == (
        "ToolUnavailable",
        True,
    )
    assert "tool 'crash' of MCP server 'local'" in failed["t-crash"].error.message
    assert done["t-after"].output["texts"] == ["after the crash"]
    assert len(set(calls.of("echo"))) == 3  # stdio before and after the crash, and HTTP
    assert len(calls.of("echo")) == 3  # the rate-limited call never reached the server
    with engine.connect() as connection:
        audited = repository.decisions(connection=connection, agent="tooluser")
    by_action = {(d.action, d.outcome) for d in audited}
    assert ("mcp:local/secret", "deny") in by_action
    assert ("mcp:web/echo", "allow") in by_action
    assert ("mcp:web/echo", "deny") in by_action

    # A server added while the worker runs is used without a restart.
    (tmp_path / "tools" / "later.yaml").write_text(
        (tmp_path / "tools" / "tools.yaml")
        .read_text()
        .split("  web:")[0]
        .replace("local:", "later:")
    )
    run.dispatch("tooluser", ("t-later", 1, _call("later", "echo", text="reloaded")))
    later = {p.task_id: p for p in payloads(run.results(7), TaskCompleted)}
    assert later["t-later"].output["texts"] == ["reloaded"]
