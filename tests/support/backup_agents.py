"""A second capability for resilience tests: `echo-backup`, the fallback of `echo`. It
returns its input as echo does, saying it was the backup, and never fails on request."""

from __future__ import annotations

from pydantic import BaseModel

from waypost import AgentContext, AgentResult, agent


class BackupIn(BaseModel):
    text: str = ""


class BackupOut(BaseModel):
    text: str
    attempt: int
    by: str


@agent("echo-backup", version="test")
def echo_backup(task: BackupIn, ctx: AgentContext) -> AgentResult[BackupOut]:
    """Returns its input (a `fail` request in it is ignored: this is the healthy backup)."""
    return AgentResult(
        BackupOut(text=task.text, attempt=ctx.task.attempt, by="echo-backup"), confidence=0.9
    )
