"""Errors of the orchestrator.

WaypostError (waypost.errors)
└── OrchestratorError
    ├── PlaybookError      a playbook file is invalid; lists every problem with
    │                      its file, field and line
    ├── UnknownGoalType    no playbook plans this goal type
    ├── InvalidGoalInput   the goal input breaks the playbook's input_schema
    ├── ReviewError        a reviewer's request that cannot be carried out
    │   ├── EscalationNotFound  no such escalation (404)
    │   ├── ReviewConflict      the escalation is not as the reviewer saw it, or
    │   │                       someone else holds it (409)
    │   └── InvalidDecision     the request itself is incomplete or wrong (422)
    ├── CancelError        a workflow cancellation that cannot be carried out
    │   ├── WorkflowNotFound    no such workflow (404)
    │   └── WorkflowFinished    it completed, failed or was cancelled already (409)
    ├── FilterError        a dead-letter filter expression cannot be read
    └── ReplayError        a replay, resolve or discard cannot be made as asked
        └── ReplayConflict the replay request id was used before for another replay
"""

from __future__ import annotations

from typing import Any

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


class ReviewError(OrchestratorError):
    """A reviewer's request that cannot be carried out; ``status`` is its HTTP status and
    ``detail`` what the reviewer needs to act on it."""

    status = 400

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.detail = detail


class EscalationNotFound(ReviewError):
    """No such escalation."""

    status = 404


class ReviewConflict(ReviewError):
    """The escalation changed since the reviewer saw it, or someone else holds it."""

    status = 409


class InvalidDecision(ReviewError):
    """The request itself is incomplete or invalid (a reject without a reason, an edit
    that breaks the step's output schema, a retry with no attempt left)."""

    status = 422


class CancelError(OrchestratorError):
    """A workflow cancellation that cannot be carried out; ``status`` is its HTTP status
    and ``detail`` what the caller needs to act on it."""

    status = 400

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.detail = detail


class WorkflowNotFound(CancelError):
    """No workflow has this id."""

    status = 404


class WorkflowFinished(CancelError):
    """The workflow completed, failed or was cancelled already (``detail["workflow_status"]``)."""

    status = 409


class FilterError(OrchestratorError):
    """A dead-letter filter expression that cannot be understood; the message says why."""


class ReplayError(OrchestratorError):
    """A replay request that cannot be made as asked; the message says why."""


class ReplayConflict(ReplayError):
    """The request id was used before for a different replay."""
