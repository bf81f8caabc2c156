"""What a remote A2A task's state means for the Waypost task (pure: no SDK, no I/O).

| remote state                  | the Waypost attempt                                     |
|-------------------------------|---------------------------------------------------------|
| submitted, working            | keeps following it (``None``)                           |
| completed                     | completes: the artifacts' data become the output        |
| failed                        | a retryable failure; the next attempt starts a new task |
| rejected, canceled            | a failure retrying cannot help                          |
| auth-required                 | a failure retrying cannot help (fix the headers)        |
| input-required                | waits for a reviewer (``InputRequired``)                |

Whole numbers come back from a remote agent as floats (A2A data parts are protobuf
``Value``s, which hold doubles), so ``whole`` turns ``4.0`` back into ``4``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

RUNNING = frozenset({"submitted", "working", "unspecified"})
TERMINAL = frozenset({"completed", "failed", "canceled", "rejected"})


@dataclass(frozen=True, slots=True)
class RemoteTask:
    """A remote task as the bridge saw it (read off the SDK's ``Task``)."""

    id: str
    context_id: str
    state: str  # submitted | working | completed | failed | canceled | rejected |
    #             input-required | auth-required | unspecified
    message: str = ""  # the text of its status message (the remote agent's words)
    data: Sequence[Any] = field(default_factory=tuple)  # its artifacts' data parts
    texts: Sequence[str] = field(default_factory=tuple)  # its artifacts' text parts


@dataclass(frozen=True, slots=True)
class Completed:
    """The remote agent finished: ``output`` is the step's output."""

    output: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Failed:
    """The remote agent did not do the task; ``retryable`` says whether another attempt
    may succeed."""

    reason: str
    retryable: bool


@dataclass(frozen=True, slots=True)
class InputRequired:
    """The remote agent asks a question a reviewer answers (of its task ``task_id``)."""

    question: str
    task_id: str


Settled = Completed | Failed | InputRequired


def settle(task: RemoteTask, *, agent: str) -> Settled | None:
    """What the remote task's state means for the attempt (None: still running)."""
    said = f": {task.message}" if task.message else ""
    if task.state in RUNNING:
        return None
    if task.state == "completed":
        return Completed(output_of(task.data, task.texts))
    if task.state == "failed":
        return Failed(f"remote agent {agent!r} failed task {task.id}{said}", retryable=True)
    if task.state == "rejected":
        return Failed(f"remote agent {agent!r} rejected task {task.id}{said}", retryable=False)
    if task.state == "canceled":
        return Failed(
            f"remote task {task.id} of agent {agent!r} was cancelled{said}", retryable=False
        )
    if task.state == "auth-required":
        return Failed(
            f"remote agent {agent!r} wants authentication for task {task.id}{said}; set the "
            "bridge's headers (docs/a2a.md)",
            retryable=False,
        )
    if task.state == "input-required":
        return InputRequired(
            task.message or "(the remote agent asked for input without words)", task.id
        )
    return Failed(f"remote task {task.id} is in an unknown state {task.state!r}", retryable=True)


def output_of(data: Sequence[Any], texts: Sequence[str]) -> dict[str, Any]:
    """The step output of a completed task's artifacts: its one data object as it is;
    otherwise ``{"data": [...]}`` with every data part and ``{"text": ...}`` with the
    text parts (both when both are there)."""
    values = [whole(value) for value in data]
    if len(values) == 1 and isinstance(values[0], dict) and not texts:
        return values[0]
    output: dict[str, Any] = {}
    if values:
        output["data"] = values
    if texts:
        output["text"] = "\n".join(texts)
    return output


def whole(value: Any) -> Any:
    """``value`` with every float that holds a whole number turned into an int."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {key: whole(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [whole(item) for item in value]
    return value


def continues(*, followed_in: int, attempt: int, state: str) -> bool:
    """Whether attempt ``attempt`` goes on with the remote task an earlier delivery
    (attempt ``followed_in``) followed, rather than starting a new one.

    A task still open (running or waiting for input) is always continued: a redelivery,
    a retry after a timeout and the re-run after a reviewer's approval must not start a
    second remote task. A finished one is continued only by the same attempt delivered
    again (its answer is the same); a new attempt after a failure starts afresh."""
    return state not in TERMINAL or followed_in == attempt


def input_params(asked: InputRequired) -> dict[str, Any]:
    """What a reviewer approves when a remote task asks for input: that task's question
    (its digest binds the approval to exactly this question)."""
    return {"remote_task_id": asked.task_id, "question": asked.question}
