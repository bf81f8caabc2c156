"""What a workflow search asks for and answers: the filter, a listing's rows and pages,
counts per status, and the cursor that marks where a page ended
(orchestrator/store/workflow_search.py runs the queries)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from orchestrator.workflow.state import WorkflowStatus

Sort = Literal["accepted", "started", "finished"]
Order = Literal["desc", "asc"]
SORTS: tuple[Sort, ...] = ("accepted", "started", "finished")
ORDERS: tuple[Order, ...] = ("desc", "asc")
STATUSES: tuple[str, ...] = tuple(s.value for s in WorkflowStatus)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """From ``since`` (inclusive) to ``until`` (exclusive); None: open on that side."""

    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class WorkflowFilter:
    """Which workflows; an empty value means "any"."""

    statuses: tuple[str, ...] = ()
    goal_type: str | None = None
    goal_id: str | None = None  # exactly this id
    id_prefix: str | None = None  # ids (goal ids) that start with this
    triggered_by: str | None = None  # the triggering event's type or source
    text: str | None = None  # words of the goal input (web search syntax)
    accepted: TimeRange = field(default_factory=TimeRange)
    started: TimeRange = field(default_factory=TimeRange)
    finished: TimeRange = field(default_factory=TimeRange)


@dataclass(frozen=True, slots=True)
class Trigger:
    """The event that started a workflow (the goal input's ``_trigger`` record)."""

    event_type: str
    source: str
    workflow_id: str | None = None  # the workflow whose event it was, for a cascade


@dataclass(frozen=True, slots=True)
class WorkflowSummary:
    """One row of a workflow listing."""

    id: str
    type: str
    status: WorkflowStatus
    accepted_at: datetime
    finished_at: datetime | None
    reason: str | None
    started_at: datetime | None = None
    trigger: Trigger | None = None

    @property
    def duration(self) -> timedelta | None:
        """How long it ran (started to finished), once it finished."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


@dataclass(frozen=True, slots=True)
class WorkflowPage:
    """A page of workflows and the cursors of the pages around it (None: no such page)."""

    items: list[WorkflowSummary]
    next_cursor: str | None
    previous_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class StatusCount:
    """How many workflows of one status match; ``capped``: at least that many (the
    count stopped early)."""

    status: str
    count: int
    capped: bool


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in a listing: the sort value (None for a row without one) and id of a
    row; ``before``: the page wanted is the one that ends just before it."""

    value: datetime | None
    id: str
    before: bool = False

    def encode(self) -> str:
        """The opaque text clients pass back."""
        moment = self.value.isoformat() if self.value is not None else ""
        text = f"{'<' if self.before else ''}{moment}|{self.id}"
        return base64.urlsafe_b64encode(text.encode()).decode()

    @classmethod
    def decode(cls, cursor: str) -> Cursor:
        """The position a cursor stands for; ValueError if it is not one of ours."""
        try:
            text = base64.urlsafe_b64decode(cursor.encode()).decode()
            before = text.startswith("<")
            moment, workflow_id = text.removeprefix("<").split("|", 1)
            if "\x00" in workflow_id:
                raise ValueError("NUL in cursor")
            value = datetime.fromisoformat(moment) if moment else None
            if value is not None and value.tzinfo is None:
                raise ValueError("a cursor's time names its zone")
            return cls(value, workflow_id, before)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"invalid cursor {cursor!r}") from exc
