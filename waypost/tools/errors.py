"""Errors of MCP tool servers and tool calls.

WaypostError (waypost.errors)
└── ToolError
    ├── ToolConfigError       one tool-server file is invalid; lists every problem with
    │                         its field and line
    ├── InvalidToolServers    tool-server files were invalid at start-up (one
    │                         ToolConfigError each)
    ├── ToolRefused           the call cannot be made as asked (also NonRetryableError:
    │   │                     the same input is refused again); the server never sees it
    │   ├── UnknownToolServer no configured server has that name
    │   ├── UnknownTool       the server does not offer that tool
    │   └── InvalidToolArguments  the arguments break the tool's input schema
    └── ToolUnavailable       the server hung past its timeout, exited, could not be
                              reached or answered with garbage; a retryable failure (the
                              next call connects again)
"""

from __future__ import annotations

from waypost.errors import NonRetryableError, WaypostError
from waypost.yamlfile import Problem


class ToolError(WaypostError):
    """Base of tool errors."""


class ToolConfigError(ToolError):
    """A tool-server file is invalid: fix the fields it lists, then it is loaded again."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        listing = "\n".join(f"  {source}: {problem}" for problem in problems)
        super().__init__(f"invalid tool servers {source}:\n{listing}")


class InvalidToolServers(ToolError):
    """Tool-server files were invalid when first loaded (no good version to keep)."""

    def __init__(self, errors: list[ToolConfigError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(error) for error in errors))


class ToolRefused(ToolError, NonRetryableError):
    """The call was refused before it reached the server; retrying cannot help."""


class UnknownToolServer(ToolRefused):
    """No tool server of that name is configured (WAYPOST_TOOL_DIRS)."""


class UnknownTool(ToolRefused):
    """The server does not list a tool of that name."""


class InvalidToolArguments(ToolRefused):
    """The arguments do not match the tool's input schema."""


class ToolUnavailable(ToolError):
    """The server timed out, exited, was out of reach or answered with garbage."""

    def __init__(self, server: str, tool: str | None, reason: str) -> None:
        self.server = server
        self.tool = tool
        what = f"tool {tool!r} of MCP server {server!r}" if tool else f"MCP server {server!r}"
        super().__init__(f"{what}: {reason}")
