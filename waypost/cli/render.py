"""Printing workflows for people."""

from __future__ import annotations

import json
from typing import Any

import click

_COLOURS = {
    "completed": "green",
    "failed": "red",
    "cancelled": "red",
    "dispatched": "yellow",
    "retry_wait": "magenta",
    "running": "yellow",
}


def status(text: str) -> str:
    """A status word, coloured."""
    return click.style(text, fg=_COLOURS.get(text))


def progress_line(workflow: dict[str, Any]) -> str:
    """One line: the workflow's status and each step's."""
    steps = "  ".join(
        f"{t['step']}={status(t['status'])}" + (f"#{t['attempt']}" if t["attempt"] > 1 else "")
        for t in workflow["tasks"]
    )
    return f"{workflow['id'][:8]} {status(workflow['status'])}  {steps}"


def workflow_text(workflow: dict[str, Any], *, show_input: bool = True) -> str:
    """A readable report of a workflow: its steps' outputs, then its own output."""
    lines = [
        f"workflow {workflow['id']}  ({workflow['type']})  {status(workflow['status'])}",
    ]
    if workflow.get("reason"):
        lines.append(f"  reason: {workflow['reason']}")
    if show_input:
        lines.append(f"  input: {_compact(workflow['input'])}")
    for task in workflow["tasks"]:
        header = f"  - {task['step']} [{task['capability']}] {status(task['status'])}"
        if task["attempt"]:
            header += f", attempt {task['attempt']}/{task['max_attempts']}"
        if task.get("confidence") is not None:
            header += f", confidence {task['confidence']:.2f}"
        lines.append(header)
        if task.get("output") is not None:
            lines.extend("      " + line for line in _pretty(task["output"]).splitlines())
        if task.get("error"):
            error = task["error"]
            lines.append(f"      error: {error['type']}: {error['message']}")
        for note in task.get("reasoning") or []:
            lines.append(f"      · {note}")
    return "\n".join(lines)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _compact(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 200 else text[:197] + "..."
