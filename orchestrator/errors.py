"""Errors of the orchestrator.

WaypostError (waypost.errors)
└── OrchestratorError
    ├── PlaybookError      a playbook file is invalid; lists every problem with
    │                      its file, field and line
    ├── UnknownGoalType    no playbook plans this goal type
    └── InvalidGoalInput   the goal input breaks the playbook's input_schema
"""

from __future__ import annotations

from waypost.errors import WaypostError
from waypost.yamlfile import Problem as Problem  # re-exported


class OrchestratorError(WaypostError):
    """Base of orchestrator errors."""


class PlaybookError(OrchestratorError):
    """A playbook file is invalid."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        listing = "\n".join(f"  {source}: {problem}" for problem in problems)
        super().__init__(f"invalid playbook {source}:\n{listing}")


class UnknownGoalType(OrchestratorError):
    """No playbook plans this goal type."""

    def __init__(self, goal_type: str, known: list[str]) -> None:
        self.goal_type = goal_type
        super().__init__(
            f"no playbook for goal type {goal_type!r}; known types: {', '.join(known) or 'none'}"
        )


class InvalidGoalInput(OrchestratorError):
    """The goal input breaks the playbook's input_schema."""

    def __init__(self, goal_type: str, problems: list[tuple[str, str]]) -> None:
        self.goal_type = goal_type
        self.problems = problems
        super().__init__(
            f"input of a {goal_type} goal is invalid: "
            + "; ".join(f"{where}: {message}" for where, message in problems)
        )
