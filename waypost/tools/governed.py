"""The governed call path: what ``ctx.tools`` does for one task.

    ctx.tools.list("helpdesk")                           # [ToolInfo(...), ...]
    found = ctx.tools.call("helpdesk", "search", {"query": "refund"})
    found.text, found.structured                         # untrusted data

A call is the governance action ``mcp:<server>/<tool>`` (``model.action_name``) and
goes through ``ctx.act`` first, with the arguments as its parameters: allow/deny, rate
limits, budgets and approval by a reviewer work as for any action, and a refused call
never reaches the server (no connection is even made). Then the arguments are checked
against the tool's input schema (an invalid call does not reach the server either),
and the tool is called through the worker's ``ToolClient``. Each call has its own span
under the task's span, is counted (``ToolMetrics``) and leaves one line in the task's
reasoning trace: the tool, the SHA-256 of its arguments (the digest approvals and the
audit use), and the outcome.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import jsonschema_rs

from waypost.governance.engine import digest_params
from waypost.governance.errors import ApprovalRequired
from waypost.telemetry import NO_TRACING, Tracing
from waypost.tools.errors import (
    InvalidToolArguments,
    ToolRefused,
    ToolUnavailable,
    UnknownTool,
    UnknownToolServer,
)
from waypost.tools.model import ToolInfo, ToolResult, action_name

if TYPE_CHECKING:
    from waypost.governance.model import PolicyDecision
    from waypost.tools.metrics import ToolMetrics


class ToolCaller(Protocol):
    """The worker's connections to tool servers (``client.ToolClient``)."""

    def tools(self, server: str) -> list[ToolInfo]:
        """The tools ``server`` offers (connecting if needed)."""
        ...

    def call(self, server: str, tool: str, arguments: dict[str, Any]) -> ToolResult:
        """Call ``tool`` of ``server``."""
        ...


class _Unconfigured:
    """Stands in for the client when no tool servers are configured."""

    def tools(self, server: str) -> list[ToolInfo]:
        raise UnknownToolServer(
            f"no MCP tool servers are configured, so there is no {server!r}: set "
            "WAYPOST_TOOL_DIRS (or `waypost up --tools DIR`); see docs/mcp.md"
        )

    def call(self, server: str, tool: str, arguments: dict[str, Any]) -> ToolResult:
        self.tools(server)
        raise AssertionError("unreachable")


NO_TOOLS: ToolCaller = _Unconfigured()


@dataclass
class TaskTools:
    """The MCP tools as one task's handler sees them (``ctx.tools``)."""

    client: ToolCaller
    act: Callable[..., PolicyDecision]
    """``AgentContext.act`` of the task: governance decides every call through it."""
    note: Callable[[str], None]
    """``AgentContext.note`` of the task: each call leaves a line in its reasoning trace."""
    tracing: Tracing = NO_TRACING
    metrics: ToolMetrics | None = None

    def list(self, server: str) -> list[ToolInfo]:
        """The tools ``server`` offers: names, descriptions, input schemas (not governed:
        listing calls no tool)."""
        return self.client.tools(server)

    def call(
        self,
        server: str,
        tool: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        tokens: int = 0,
        cost_usd: float = 0.0,
    ) -> ToolResult:
        """Call ``tool`` of ``server`` with ``arguments`` (JSON values) once governance
        allows the action ``mcp:<server>/<tool>`` (expected to spend ``tokens`` and
        ``cost_usd``, which count against the budgets as for ``ctx.act``).

        Raises what ``ctx.act`` raises when governance says no (the server is not
        contacted), ``UnknownToolServer``/``UnknownTool``/``InvalidToolArguments``
        (non-retryable, the call is not made) or ``ToolUnavailable`` (the server timed
        out, exited or answered with garbage: a retryable failure of the task).
        """
        args = dict(arguments or {})
        action = action_name(server, tool)
        digest = _digest(action, args)
        attributes = {"mcp.server": server, "mcp.tool": tool, "waypost.action": action}
        with self.tracing.span(f"mcp call {server}/{tool}", attributes=attributes) as span:
            started: float | None = None
            try:
                self.act(action, args, tokens=tokens, cost_usd=cost_usd)
                self._check(server, tool, args)
                started = time.monotonic()
                result = self.client.call(server, tool, args)
            except ToolUnavailable as exc:
                self._finish(server, tool, digest, "unavailable", started, str(exc))
                span.set_attribute("error.type", type(exc).__name__)
                raise
            except Exception as exc:
                # Refused by governance or the schema (or a malformed call): never sent.
                outcome = "awaiting_approval" if isinstance(exc, ApprovalRequired) else "refused"
                reason = f"{type(exc).__name__}: {exc}"
                self._finish(server, tool, digest, outcome, None, reason)
                span.set_attribute("error.type", type(exc).__name__)
                raise
            outcome = "tool_error" if result.is_error else "ok"
            span.set_attribute("mcp.outcome", outcome)
            self._finish(server, tool, digest, outcome, started, None)
            return result

    def _check(self, server: str, tool: str, args: dict[str, Any]) -> None:
        """Refuse arguments the tool's input schema does not accept."""
        found = next((t for t in self.client.tools(server) if t.name == tool), None)
        if found is None:
            raise UnknownTool(f"MCP server {server!r} has no tool {tool!r}")
        if not found.input_schema:
            return
        try:
            validator = jsonschema_rs.validator_for(found.input_schema)
        except Exception as exc:
            raise ToolUnavailable(
                server, tool, f"its input schema is not a valid JSON Schema ({exc})"
            ) from None
        problems = [
            f"{'/'.join(str(p) for p in error.instance_path) or '(arguments)'}: {error.message}"
            for error in validator.iter_errors(args)
        ]
        if problems:
            raise InvalidToolArguments(
                f"arguments for tool {tool!r} of MCP server {server!r} do not match its "
                "input schema, so it was not called: " + "; ".join(problems)
            )

    def _finish(
        self,
        server: str,
        tool: str,
        digest: str,
        outcome: str,
        started: float | None,
        reason: str | None,
    ) -> None:
        seconds = time.monotonic() - started if started is not None else None
        if self.metrics is not None:
            self.metrics.call(server, tool, outcome, seconds)
        line = f"tool {server}/{tool} (arguments sha256 {digest[:16]}): {outcome}"
        self.note(line + (f": {reason}" if reason else ""))


@dataclass(frozen=True)
class Toolbox:
    """A worker's tool servers and metrics, from which each task gets its ``TaskTools``."""

    client: ToolCaller = NO_TOOLS
    metrics: ToolMetrics | None = None

    def for_task(
        self,
        act: Callable[..., PolicyDecision],
        note: Callable[[str], None],
        tracing: Tracing = NO_TRACING,
    ) -> TaskTools:
        """The ``ctx.tools`` of one task (``act`` and ``note`` are its context's)."""
        return TaskTools(self.client, act, note, tracing, self.metrics)


def _digest(action: str, args: dict[str, Any]) -> str:
    try:
        return digest_params(args)[0]
    except TypeError as exc:
        raise ToolRefused(f"the arguments of {action!r} must be JSON values: {exc}") from None


__all__ = ["NO_TOOLS", "TaskTools", "ToolCaller", "Toolbox"]
