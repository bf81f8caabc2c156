"""Test agents: echo (instant), and ones that fail or stall on request."""

from __future__ import annotations

import os
import time

from pydantic import BaseModel

from waypost import AgentContext, AgentResult, NonRetryableError, agent


class EchoIn(BaseModel):
    text: str = ""
    fail: str | None = None  # "retryable" | "permanent"
    sleep_s: float = 0.0
    marker_dir: str | None = None  # a file per execution, to count executions
    stall_once_s: float = 0.0  # the first execution (no "stalled" marker yet) hangs


class EchoOut(BaseModel):
    text: str
    attempt: int


@agent("echo", version="test")
def echo(task: EchoIn, ctx: AgentContext) -> AgentResult[EchoOut]:
    """Returns its input; fails or stalls when the input asks it to."""
    if task.marker_dir:
        path = os.path.join(task.marker_dir, f"{ctx.task.task_id}.{ctx.task.attempt}.{os.getpid()}")
        with open(path, "w") as handle:
            handle.write("started\n")
        stalled = os.path.join(task.marker_dir, "stalled")
        if task.stall_once_s and not os.path.exists(stalled):
            with open(stalled, "w") as handle:
                handle.write(f"{os.getpid()}\n")
            time.sleep(task.stall_once_s)
    if task.sleep_s:
        time.sleep(task.sleep_s)
    if task.fail == "permanent":
        raise NonRetryableError("asked to fail permanently")
    if task.fail == "retryable":
        raise RuntimeError(f"asked to fail (attempt {ctx.task.attempt})")
    ctx.note(f"echoing {len(task.text)} characters")
    return AgentResult(EchoOut(text=task.text, attempt=ctx.task.attempt), confidence=0.9)
