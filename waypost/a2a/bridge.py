"""A bridged capability as an ordinary Waypost agent: one ``Agent`` per bridge.

The runtime gives every bridged task what it gives any agent (consumer group, retries,
dead letters, the result ledger, heartbeats, spans, cancellation). Each attempt then:

1. asks governance for the action ``a2a:<agent>/<skill>`` with the task input as its
   parameters (``ctx.act``: allow/deny, rate limits, budgets, approval, audit);
2. sends the input as the data part of a message to the remote agent, or goes on with
   the remote task an earlier delivery started (``follow``);
3. maps the remote task's state (``states``): ``completed`` -> the output,
   ``failed`` -> ``RemoteFailed`` (retryable), ``rejected``/``canceled``/
   ``auth-required`` -> ``RemoteRefused`` (not retried), ``input-required`` ->
   ``ApprovalRequired`` for the action ``a2a:<agent>/<skill>/input`` whose parameters
   are the remote task id and its question: the task waits for a reviewer in the
   console, and the approved re-run sends the approval to the remote task and returns
   its final result.

Each attempt has a span (``a2a delegate <agent>``), is counted (``BridgeMetrics``) and
leaves lines in the task's reasoning trace (the remote task, its state, its question).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from waypost.a2a.config import Bridge
from waypost.a2a.errors import RemoteFailed, RemoteRefused, RemoteUnavailable
from waypost.a2a.follow import Following, input_action
from waypost.a2a.metrics import BridgeMetrics
from waypost.a2a.states import Completed, Failed, InputRequired, input_params
from waypost.a2a.store import DatabaseFollowed, FollowedTasks, MemoryFollowed
from waypost.errors import ConfigError
from waypost.governance.acting import propose
from waypost.governance.errors import ApprovalRequired
from waypost.governance.model import PolicyDecision
from waypost.sdk import Agent, AgentContext, AgentEnvironment, AgentResult
from waypost.telemetry import NO_TRACING, Tracing

log = logging.getLogger("waypost.a2a")


class BridgedInput(BaseModel):
    """A bridged task's input: any JSON object, sent to the remote agent as it is."""

    model_config = ConfigDict(extra="allow")


class BridgedOutput(BaseModel):
    """A bridged task's output: the data the remote agent's artifacts carried."""

    model_config = ConfigDict(extra="allow")


@dataclass(frozen=True)
class Memory:
    """The setup resource of a bridge agent: where it remembers remote tasks."""

    followed: FollowedTasks


@dataclass(frozen=True)
class BridgeKit:
    """What every bridge agent of a worker shares."""

    environ: Mapping[str, str]
    tracing: Tracing = NO_TRACING
    metrics: BridgeMetrics | None = None


def bridge_agent(bridge: Bridge, kit: BridgeKit) -> Agent[BridgedInput, BridgedOutput]:
    """The agent of one bridged capability."""

    def delegate(task_input: BridgedInput, ctx: AgentContext) -> AgentResult[BridgedOutput]:
        return Delegation(bridge, kit, ctx.resource(Memory).followed, ctx).run(
            task_input.model_dump(mode="json")
        )

    delegate.__doc__ = bridge.description or f"Delegates to the remote A2A agent {bridge.agent}"
    made: Agent[BridgedInput, BridgedOutput] = Agent(
        bridge.capability,
        delegate,
        version="a2a-1",
        description=delegate.__doc__,
        concurrency=bridge.concurrency,
    )
    made.setup(remember)
    return made


def remember(environment: AgentEnvironment) -> Memory:
    """Remote tasks are remembered in the worker's database (in memory without one)."""
    try:
        return Memory(DatabaseFollowed(environment.database()))
    except ConfigError:
        log.warning(
            "no database configured: the A2A bridge remembers remote tasks in this process "
            "only, so a restarted worker may start a remote task again"
        )
        return Memory(MemoryFollowed())


@dataclass
class Delegation:
    """One attempt of a bridged task: governed, traced, counted, noted."""

    bridge: Bridge
    kit: BridgeKit
    followed: FollowedTasks
    ctx: AgentContext

    def run(self, task_input: dict[str, Any]) -> AgentResult[BridgedOutput]:
        """The remote agent's output, or the error or approval request the attempt ends with."""
        bridge = self.bridge
        skill = bridge.skill or ""
        attributes = {
            "a2a.agent": bridge.agent,
            "a2a.skill": skill,
            "waypost.action": bridge.action,
        }
        with self.kit.tracing.span(f"a2a delegate {bridge.agent}", attributes=attributes) as span:
            try:
                self.ctx.act(bridge.action, task_input)
            except ApprovalRequired:
                self._count("awaiting_approval", None)
                raise
            except Exception as exc:
                self._count("refused", None)
                self.ctx.note(f"a2a {bridge.action}: refused: {type(exc).__name__}: {exc}")
                raise
            started = time.monotonic()
            following = Following(bridge, self.followed, self.ctx, self.kit.environ)
            try:
                settled = asyncio.run(following.run(task_input))
            except (RemoteUnavailable, RemoteRefused) as exc:
                outcome = "refused" if isinstance(exc, RemoteRefused) else "unavailable"
                self._count(outcome, started)
                span.set_attribute("error.type", type(exc).__name__)
                self.ctx.note(f"a2a {bridge.action}: {outcome}: {exc}")
                raise
            if isinstance(settled, Completed):
                self._count("completed", started)
                span.set_attribute("a2a.outcome", "completed")
                self.ctx.note(f"a2a {bridge.action}: completed")
                return AgentResult(BridgedOutput(**settled.output))
            if isinstance(settled, InputRequired):
                self._count("input_required", started)
                span.set_attribute("a2a.outcome", "input_required")
                self.ctx.note(f"a2a {bridge.action}: the remote agent asks: {settled.question}")
                raise self._ask_reviewer(settled)
            assert isinstance(settled, Failed)
            cancelled = self.ctx.cancelled
            self._count("cancelled" if cancelled else "failed", started)
            span.set_attribute("a2a.outcome", "failed")
            self.ctx.note(f"a2a {bridge.action}: {settled.reason}")
            if settled.retryable:
                raise RemoteFailed(settled.reason)
            raise RemoteRefused(settled.reason)

    def _ask_reviewer(self, asked: InputRequired) -> ApprovalRequired:
        """The approval request of the remote task's question, bound to its digest."""
        info = self.ctx.task
        proposal = propose(
            input_action(self.bridge),
            input_params(asked),
            agent=info.capability,
            capability=info.capability,
            workflow_id=info.workflow_id,
            task_id=info.task_id,
        )
        question = asked.question if len(asked.question) <= 1500 else asked.question[:1499] + "…"
        decision = PolicyDecision(
            outcome="require_approval",
            cause="approval",
            reason=f"remote agent {self.bridge.agent!r} asks for input: {question}",
            at=datetime.now(UTC),
        )
        return ApprovalRequired(decision, proposal)

    def _count(self, outcome: str, started: float | None) -> None:
        if self.kit.metrics is not None:
            seconds = time.monotonic() - started if started is not None else None
            skill = self.bridge.skill or ""
            self.kit.metrics.delegation(self.bridge.agent, skill, outcome, seconds)
