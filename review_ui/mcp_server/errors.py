"""Why a call to Waypost's MCP server is refused.

mcp ToolError                  (the SDK answers it as a tool result with isError)
 └── Refused                   what the JSON API answers with a 4xx: its status, and
                               what to do about it (403 names the role it needs,
                               409 says to read the escalation again)
mcp ResourceError              (the SDK answers it as a JSON-RPC error)
 └── ResourceRefused           the same refusal, for a resource read
WaypostError
 └── TokenRefused              `waypost mcp serve` without a token the database knows
"""

from __future__ import annotations

from mcp.server.mcpserver.exceptions import ResourceError, ToolError

from review_ui.problems import Problem
from waypost.errors import WaypostError

# What a client can do about a refusal the JSON API's detail does not spell out.
_NEXT_STEP = {
    409: "read it again (get_escalation or get_workflow) and act on its current version "
    "and digest, if it still needs you",
    429: "wait and try again",
    503: "the database or broker is unreachable; try again shortly",
}


class Refused(ToolError):
    """A tool call the JSON API would refuse, with the same status and detail."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        next_step = _NEXT_STEP.get(status)
        message = f"{status} {title}: {detail}" + (f" ({next_step})" if next_step else "")
        super().__init__(message)
        self.status = status
        self.title = title
        self.detail = detail

    @classmethod
    def of(cls, problem: Problem) -> Refused:
        """The refusal of a problem a JSON API route raised."""
        return cls(problem.status, problem.title, problem.detail)


class ResourceRefused(ResourceError):
    """A resource read refused for the reason of a ``Refused``."""

    def __init__(self, refused: Refused) -> None:
        super().__init__(str(refused))
        self.status = refused.status


class TokenRefused(WaypostError):
    """No API token was given, or the database does not know it (or it was revoked)."""
