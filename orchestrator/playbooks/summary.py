"""A step's one-line ``summary``: the line the review inbox shows for its escalations, so a
reviewer can approve a routine one without opening it.

The template is text with placeholders naming a field of what the reviewer is shown:
``{output.category} for {input.customer}``. ``output`` is the agent's output, ``input``
the task's input, ``goal`` the goal's input; a dotted path walks into objects (and, with a
number, lists). ``{{`` and ``}}`` are literal braces. Nothing is evaluated: a placeholder
is a path, never code, and a field that is missing (or null) renders as "—". The schema
(``$defs.step_options.properties.summary``) refuses any other placeholder at load time,
with the file and line; ``problem`` says in words what is wrong with one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

# Where each placeholder root reads from in an escalation's content.
SOURCES = {"output": "output", "input": "task_input", "goal": "goal_input"}
MISSING = "—"
WIDTH = 200  # the rendered line is clipped to this many characters
SEGMENT = r"[A-Za-z0-9_-]+"
# The same grammar as the schema's pattern (a test keeps them equal).
PATTERN = r"^(?:[^{}]|\{\{|\}\}|\{(?:" + "|".join(SOURCES) + r")(?:\." + SEGMENT + r")*\})*$"
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]|[^{}]+")
_PLACEHOLDER = re.compile(r"(" + "|".join(SOURCES) + r")((?:\." + SEGMENT + r")*)")


def problem(template: str) -> str | None:
    """What is wrong with a template, in words (None when it is a good one)."""
    for match in _TOKEN.finditer(template):
        text = match.group(0)
        if text in ("{", "}"):
            return (
                f"{template!r} has a lone {text!r}: write {{{{ or }}}} for a brace, "
                "{output.FIELD}, {input.FIELD} or {goal.FIELD} for a field"
            )
        inner = match.group(1)
        if inner is not None and _PLACEHOLDER.fullmatch(inner) is None:
            return (
                f"{{{inner}}} is not a summary placeholder: write {{output.FIELD}}, "
                "{input.FIELD} or {goal.FIELD} (a dotted path of letters, digits, _ and -)"
            )
    return None


def render(template: str, content: Mapping[str, Any]) -> str:
    """The template filled in from an escalation's ``content``, on one line."""
    parts: list[str] = []
    for text, path in _parts(template):
        parts.append(text if path is None else _text(_lookup(content, path)))
    line = " ".join("".join(parts).split())
    return line if len(line) <= WIDTH else line[: WIDTH - 1] + "…"


def _parts(template: str) -> Iterator[tuple[str, tuple[str, ...] | None]]:
    """(literal text, None) and ("", path) in order; anything unreadable stays literal."""
    for match in _TOKEN.finditer(template):
        text = match.group(0)
        if text in ("{{", "}}"):
            yield text[0], None
        elif match.group(1) is not None and _PLACEHOLDER.fullmatch(match.group(1)):
            yield "", tuple(match.group(1).split("."))
        else:
            yield text, None


def _lookup(content: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = content.get(SOURCES[path[0]])
    for key in path[1:]:
        if isinstance(value, Mapping):
            value = value.get(key)
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    return value


def _text(value: Any) -> str:
    if value is None or value == "":
        return MISSING
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
