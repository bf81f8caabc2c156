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
        lines.append(f"  input: {_compact(workflow['input'], 150)}")
    for task in workflow["tasks"]:
        header = f"  - {task['step']} [{task['capability']}] {status(task['status'])}"
        if task["attempt"]:
            header += f", attempt {task['attempt']}/{task['max_attempts']}"
        if task.get("confidence") is not None:
            header += f", confidence {task['confidence']:.2f}"
        lines.append(header)
        if task.get("output") is not None:
            lines.extend("      " + line for line in readable(task["output"]))
        if task.get("error"):
            error = task["error"]
            lines.append(f"      error: {error['type']}: {error['message']}")
        for note in task.get("reasoning") or []:
            lines.append(f"      · {note}")
    return "\n".join(lines)


def readable(value: Any, width: int = 110) -> list[str]:
    """A JSON value as short lines: ``key: value``, text blocks, one line per list item."""
    if not isinstance(value, dict):
        return [_compact(value, width)]
    lines: list[str] = []
    for key, item in value.items():
        if isinstance(item, str) and "\n" in item:
            lines.append(f"{key}: |")
            lines.extend("  " + line for line in item.splitlines())
        elif isinstance(item, dict) and item:
            lines.append(f"{key}:")
            lines.extend("  " + line for line in readable(item, width - 2))
        elif isinstance(item, list) and item and all(isinstance(i, dict) for i in item):
            lines.append(f"{key}:")
            lines.extend(f"  - {_compact(i, width - 4)}" for i in item)
        else:
            lines.append(f"{key}: {_compact(item, width - len(key) - 2)}")
    return lines


def _compact(value: Any, width: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 3] + "..."
