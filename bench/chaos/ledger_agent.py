"""The chaos agents: every handler execution appends one line to a ledger file.

Loaded with `waypost up --agents bench.chaos.ledger_agent`. The ledger path comes from
``CHAOS_LEDGER``; each line is one JSON object written with a single ``os.write`` on an
``O_APPEND`` descriptor, so lines from concurrent threads and processes never interleave.
A line is written when the handler has done its work (after the short sleep that keeps
tasks in flight), i.e. it records an execution whose effect happened, not one that was
killed half-way.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time

from pydantic import BaseModel

from waypost import AgentContext, agent

LEDGER_ENV = "CHAOS_LEDGER"
WORK = "chaos-work"
EFFECT = "chaos-effect"

_lock = threading.Lock()
_fd: int | None = None


class Item(BaseModel):
    n: int


class Worked(BaseModel):
    n: int
    token: str


class EffectRequest(BaseModel):
    n: int
    token: str


class Effected(BaseModel):
    n: int
    pid: int


def _ledger_fd() -> int:
    global _fd
    with _lock:
        if _fd is None:
            path = os.environ.get(LEDGER_ENV)
            if not path:
                raise RuntimeError(f"set {LEDGER_ENV} to the ledger file's path")
            _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return _fd


def record(ctx: AgentContext) -> None:
    """Append this execution to the ledger (one line, one write)."""
    task = ctx.task
    line = json.dumps(
        {
            "step": task.step,
            "capability": task.capability,
            "workflow": task.workflow_id,
            "task": task.task_id,
            "attempt": task.attempt,
            "pid": os.getpid(),
            "time": time.time(),
        },
        separators=(",", ":"),
    )
    os.write(_ledger_fd(), (line + "\n").encode())


def _busy() -> None:
    # A few milliseconds of "work", so a fault finds tasks in flight.
    time.sleep(random.uniform(0.002, 0.005))


@agent(WORK, version="chaos", concurrency=4)
def chaos_work(item: Item, ctx: AgentContext) -> Worked:
    """The first step: some work whose result the effect step needs."""
    _busy()
    record(ctx)
    return Worked(n=item.n, token=f"{ctx.task.workflow_id}:{item.n}")


@agent(EFFECT, version="chaos", concurrency=4)
def chaos_effect(request: EffectRequest, ctx: AgentContext) -> Effected:
    """The second step: the side effect that must happen once per workflow."""
    _busy()
    record(ctx)
    return Effected(n=request.n, pid=os.getpid())
