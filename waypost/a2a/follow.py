"""Following one Waypost task's remote A2A task until it settles (one attempt).

The remote task a Waypost task follows is remembered (``store``) as soon as the remote
agent names it, so every later delivery of the task goes on with it (``states.continues``):
a redelivered attempt, a retry after a timeout, the re-run after a reviewer's approval.
When the remote task waits for input and the attempt carries a reviewer's approval of
exactly that question, the approval is sent to the remote task as a message (once: the
escalation it answered is remembered) and the task is followed on.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from waypost.a2a.config import Bridge
from waypost.a2a.errors import RemoteUnavailable
from waypost.a2a.remote import RemoteAgent, connect
from waypost.a2a.states import (
    Completed,
    Failed,
    InputRequired,
    RemoteTask,
    Settled,
    continues,
    input_params,
    settle,
)
from waypost.a2a.store import Followed, FollowedTasks
from waypost.governance.engine import digest_params
from waypost.sdk import AgentContext, Approval

_IDS = uuid.UUID("5f0c1d52-0a2a-4b6e-9f7e-57a1b0a2a000")  # namespace of the bridge's ids


def input_action(bridge: Bridge) -> str:
    """The action a reviewer approves when the remote agent asks for input."""
    return f"{bridge.action}/input"


def approval_of(ctx: AgentContext, bridge: Bridge, asked: InputRequired) -> Approval | None:
    """The reviewer's approval of this remote question among the attempt's, if any."""
    digest = digest_params(input_params(asked))[0]
    action = input_action(bridge)
    return next((a for a in ctx.approvals if (a.action, a.params_digest) == (action, digest)), None)


@dataclass
class Following:
    """One attempt of one Waypost task with its remote agent."""

    bridge: Bridge
    followed: FollowedTasks
    ctx: AgentContext
    environ: Mapping[str, str]
    monotonic: Callable[[], float] = time.monotonic

    async def run(self, task_input: Mapping[str, Any]) -> Settled:
        """Send (or find again) the remote task and follow it until it settles, the
        attempt's time runs out (``RemoteUnavailable``) or its workflow is cancelled."""
        async with connect(self.bridge, self.environ) as remote:
            task, row = await self._start(remote, task_input)
            if row is None:  # the remote agent answered at once, with a message
                return settle(task, agent=self.bridge.agent) or Completed({})
            return await self._follow(remote, task, row)

    async def _start(
        self, remote: RemoteAgent, task_input: Mapping[str, Any]
    ) -> tuple[RemoteTask, Followed | None]:
        info = self.ctx.task
        row = self.followed.find(info.task_id)
        if row is not None:
            task = await remote.get(row.remote_task_id)
            if task is None:
                self.ctx.note(
                    f"remote task {row.remote_task_id} is unknown to {self.bridge.agent!r} "
                    "now; sending the task again"
                )
            elif continues(followed_in=row.attempt, attempt=info.attempt, state=task.state):
                if row.attempt != info.attempt:
                    row = replace(row, attempt=info.attempt)
                    self.followed.save(row)
                self.ctx.note(f"following remote task {task.id} again ({task.state})")
                return task, row
        context_id = row.context_id if row is not None else _id(f"context/{info.workflow_id}")
        task = await remote.send(
            task_input, context_id=context_id, message_id=_id(f"send/{info.task_id}/{info.attempt}")
        )
        if not task.id:
            self.ctx.note(f"remote agent {self.bridge.agent!r} answered at once")
            return task, None
        row = Followed(
            task_id=info.task_id,
            capability=info.capability,
            remote_task_id=task.id,
            context_id=task.context_id or context_id,
            attempt=info.attempt,
        )
        self.followed.save(row)
        self.ctx.note(f"sent to remote agent {self.bridge.agent!r}: remote task {task.id}")
        return task, row

    async def _follow(self, remote: RemoteAgent, task: RemoteTask, row: Followed) -> Settled:
        give_up = self.monotonic() + self._seconds_left()
        while True:
            settled = settle(task, agent=self.bridge.agent)
            if isinstance(settled, InputRequired):
                approval = approval_of(self.ctx, self.bridge, settled)
                if approval is None:
                    return settled
                if row.answered_escalation_id != approval.escalation_id:
                    task, row = await self._answer(remote, task, row, approval)
                    continue
                # Answered already: wait for the remote agent to take the answer in.
            elif settled is not None:
                return settled
            if self.ctx.cancelled:
                await remote.cancel(task.id)
                self.ctx.note(f"workflow cancelled: asked to cancel remote task {task.id}")
                return Failed(f"cancelled; remote task {task.id} was asked to stop", False)
            left = give_up - self.monotonic()
            if left <= 0:
                raise RemoteUnavailable(
                    f"remote task {task.id} of agent {self.bridge.agent!r} was still "
                    f"{task.state} when this attempt's time ran out; the next attempt "
                    "follows the same remote task"
                )
            await asyncio.get_running_loop().run_in_executor(
                None, self.ctx.cancellation.wait, min(self.bridge.poll_interval, left)
            )
            found = await remote.get(task.id)
            if found is None:
                raise RemoteUnavailable(
                    f"remote agent {self.bridge.agent!r} no longer knows task {task.id}"
                )
            task = found

    async def _answer(
        self, remote: RemoteAgent, task: RemoteTask, row: Followed, approval: Approval
    ) -> tuple[RemoteTask, Followed]:
        """Send the reviewer's approval to the remote task; remember it was sent."""
        decision = {
            "decision": "approve",
            "approved_by": approval.approved_by,
            "escalation_id": approval.escalation_id,
        }
        answered = await remote.send(
            decision,
            text=f"Approved by {approval.approved_by} in Waypost's review console.",
            context_id=task.context_id or row.context_id,
            task_id=task.id,
            message_id=_id(f"answer/{row.task_id}/{approval.escalation_id}"),
        )
        row = replace(row, answered_escalation_id=approval.escalation_id)
        self.followed.save(row)
        self.ctx.note(
            f"sent the approval of {approval.approved_by} (escalation "
            f"{approval.escalation_id}) to remote task {task.id}"
        )
        return (answered if answered.id else task), row

    def _seconds_left(self) -> float:
        until_deadline = (self.ctx.task.deadline - datetime.now(UTC)).total_seconds()
        return max(0.0, min(self.bridge.timeout, until_deadline))


def _id(name: str) -> str:
    """A stable id: the same Waypost task and attempt send the same message id."""
    return str(uuid.uuid5(_IDS, name))


__all__ = ["Completed", "Failed", "Following", "InputRequired", "approval_of", "input_action"]
