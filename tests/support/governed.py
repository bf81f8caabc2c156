"""A governed test agent: asks governance (``ctx.act``) before each action its input
names, and records every action it then takes as a file in ``marker_dir``, so tests can
tell an action that was refused from one that ran."""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, Field

from waypost import AgentContext, AgentResult, agent


class Action(BaseModel):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    scopes: list[str] = Field(default_factory=list)
    tokens: int = 0
    cost_usd: float = 0.0


class Actions(BaseModel):
    actions: list[Action] = Field(default_factory=list)
    marker_dir: str | None = None
    used_tokens: int = 0  # reported as the task's usage (a model call's, say)


class Taken(BaseModel):
    taken: list[str]
    attempt: int


@agent("governed", version="test")
def governed(task: Actions, ctx: AgentContext) -> AgentResult[Taken]:
    """Takes each action of its input once governance allows it."""
    taken = []
    for action in task.actions:
        ctx.note(f"{action.name} with {sorted(action.params)}")
        ctx.act(
            action.name,
            action.params,
            scopes=action.scopes,
            tokens=action.tokens,
            cost_usd=action.cost_usd,
        )
        if task.marker_dir:
            name = f"{action.name}.{ctx.task.task_id}.{ctx.task.attempt}.{os.getpid()}"
            with open(os.path.join(task.marker_dir, name), "w") as handle:
                handle.write(f"{len(ctx.approvals)} approval(s)\n")
        taken.append(action.name)
    ctx.add_usage(input_tokens=task.used_tokens)
    return AgentResult(Taken(taken=taken, attempt=ctx.task.attempt))
