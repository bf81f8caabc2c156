"""Saying where a YAML file (a playbook, a policy) is wrong: the field's path and its
line, so every config error reads ``file: field (line N): message``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import yaml


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a file."""

    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.field} (line {self.line})" if self.line else self.field
        return f"{where}: {self.message}"


def field_path(path: Iterable[str | int]) -> str:
    """``steps[2].input`` for the path ("steps", 2, "input")."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def line_of(node: yaml.Node | None, path: Iterable[str | int]) -> int | None:
    """The 1-based line of the YAML node at ``path`` (or its nearest existing parent)."""
    current = node
    for part in path:
        if isinstance(current, yaml.MappingNode):
            children = {key.value: value for key, value in current.value}
            if part not in children:
                break
            current = children[part]
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(current.value):
                break
            current = current.value[part]
        else:
            break
    return current.start_mark.line + 1 if current is not None else None
