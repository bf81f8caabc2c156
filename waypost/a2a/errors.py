"""Errors of the A2A bridge.

WaypostError (waypost.errors)
└── BridgeError
    ├── BridgeConfigError     one bridge file is invalid; lists every problem with its
    │                         field and line
    ├── InvalidBridges        bridge files were invalid at start-up (one
    │                         BridgeConfigError each), or named no bridge at all
    ├── RemoteRefused         the remote agent rejected, cancelled or cannot take the
    │                         task (also NonRetryableError: the same task is refused
    │                         again), or its card does not offer the configured skill
    ├── RemoteFailed          the remote task ended in ``failed``: a retryable failure
    │                         (the next attempt starts a new remote task)
    └── RemoteUnavailable     the remote agent could not be reached, answered with an
                              error or garbage, or was still working when the attempt's
                              time ran out: a retryable failure (the next attempt
                              follows the same remote task)
"""

from __future__ import annotations

from waypost.errors import NonRetryableError, WaypostError
from waypost.yamlfile import Problem


class BridgeError(WaypostError):
    """Base of A2A bridge errors."""


class BridgeConfigError(BridgeError):
    """A bridge file is invalid: fix the fields it lists."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        listing = "\n".join(f"  {source}: {problem}" for problem in problems)
        super().__init__(f"invalid A2A bridges {source}:\n{listing}")


class InvalidBridges(BridgeError):
    """Bridge files were invalid (or there were none) when loaded."""

    def __init__(self, errors: list[BridgeConfigError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(error) for error in errors))


class RemoteRefused(BridgeError, NonRetryableError):
    """The remote agent will not do this task; trying again cannot help."""


class RemoteFailed(BridgeError):
    """The remote task failed; a new attempt starts a new remote task."""


class RemoteUnavailable(BridgeError):
    """The remote agent was out of reach, answered wrongly, or took too long."""
