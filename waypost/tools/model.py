"""What the tool runtime hands to handlers: a tool's description and a call's result.

Both are data taken from a foreign server: a handler may read them, a model may be
shown them, but nothing in Waypost interprets them (see docs/mcp.md on prompt
injection).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_NOT_IN_ACTION = re.compile(r"[^a-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class ToolInfo:
    """One tool a server offers: its name, description and input schema (JSON Schema)."""

    name: str
    description: str = ""
    input_schema: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool returned, as untrusted data.

    ``text`` joins the text parts of the content; ``structured`` is the structured
    content, if the tool gave one; ``content`` holds every part as JSON (images and
    resources included); ``is_error`` is the tool's own report that it failed (the call
    itself worked: the handler decides what that means).
    """

    server: str
    tool: str
    text: str
    structured: dict[str, Any] | None = None
    content: tuple[dict[str, Any], ...] = ()
    is_error: bool = False


def action_name(server: str, tool: str) -> str:
    """The governance action of calling ``tool`` on ``server``: ``mcp:<server>/<tool>``,
    the tool's name lower-cased with characters policies cannot name as ``_``."""
    return f"mcp:{server}/{_NOT_IN_ACTION.sub('_', tool.lower())}"[:100]
