"""Errors of schedules.

WaypostError (waypost.errors)
└── OrchestratorError (orchestrator.errors)
    └── ScheduleError
        ├── ScheduleFileError    a schedules file is invalid; lists every problem with its
        │                        file, field and line
        ├── ScheduleNotFound     no schedule of that name (404)
        └── ScheduleConflict     the change cannot be made to this schedule (409): the
                                 name is taken, or it is defined in a file
"""

from __future__ import annotations

from orchestrator.errors import OrchestratorError
from waypost.yamlfile import Problem


class ScheduleError(OrchestratorError):
    """Base of schedule errors."""


class ScheduleFileError(ScheduleError):
    """A schedules file is invalid: fix the fields it lists."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        listing = "\n".join(f"  {source}: {problem}" for problem in problems)
        super().__init__(f"invalid schedules {source}:\n{listing}")


class ScheduleNotFound(ScheduleError):
    """No schedule has this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no schedule named {name!r}; `waypost schedule ls` lists them")
        self.name = name


class ScheduleConflict(ScheduleError):
    """The schedule exists already, or is defined in a file the API cannot change."""
