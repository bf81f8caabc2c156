"""Errors of trigger mappings.

WaypostError (waypost.errors)
└── TriggerError
    ├── MappingError     a message cannot be mapped onto a goal (also NonRetryableError:
    │   │                the same message fails again); says which reference and why
    │   └── UnreadableMessage   a bridged message's bytes are not UTF-8 JSON
    ├── BridgeConfigError    one MQTT/NATS bridge file is invalid; lists every problem
    │                        with its field and line
    ├── InvalidBridgeFiles   bridge files were invalid at start-up (one BridgeConfigError
    │                        each), or named no bridge at all
    └── HookConfigError      one webhook file is invalid; lists every problem with its
                             field and line
"""

from __future__ import annotations

from waypost.errors import NonRetryableError, WaypostError
from waypost.yamlfile import Problem


class TriggerError(WaypostError):
    """Base of trigger errors."""


class MappingError(TriggerError, NonRetryableError):
    """The message does not fit the mapping: a reference names nothing in it, or the
    result is not a goal input (a JSON object). The message says which and why."""


class UnreadableMessage(MappingError):
    """A bridged MQTT or NATS message is not UTF-8 JSON, so no mapping can read it."""


class BridgeConfigError(TriggerError):
    """A bridge file is invalid: fix the fields it lists."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        listing = "\n".join(f"  {source}: {problem}" for problem in problems)
        super().__init__(f"invalid bridges {source}:\n{listing}")


class InvalidBridgeFiles(TriggerError):
    """Bridge files were invalid (or named no bridge) when loaded."""

    def __init__(self, errors: list[BridgeConfigError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(error) for error in errors))


class HookConfigError(TriggerError):
    """A hook file is invalid: fix the fields it lists, then it is loaded again."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        listing = "\n".join(f"  {source}: {problem}" for problem in problems)
        super().__init__(f"invalid hooks {source}:\n{listing}")
