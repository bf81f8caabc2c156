"""Reading escalations: the review inbox, its counts, one escalation, similar past ones."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVarTuple

from sqlalchemy import ColumnElement, Connection, Select, and_, func, not_, or_, select, text

from orchestrator.store import workflows as workflow_rows
from orchestrator.store.tables import escalations
from orchestrator.workflow.state import EscalationState, WorkflowState

Ts = TypeVarTuple("Ts")
SlaState = Literal["ok", "warning", "overdue"]
Sort = Literal["priority", "due", "newest", "oldest"]
_SORTS: dict[str, tuple[ColumnElement[Any], ...]] = {
    "priority": (escalations.c.priority.asc(), escalations.c.opened_at.asc()),
    "due": (escalations.c.due_at.asc(), escalations.c.priority.asc()),
    "newest": (escalations.c.opened_at.desc(),),
    "oldest": (escalations.c.opened_at.asc(),),
}


@dataclass(frozen=True, slots=True)
class InboxFilter:
    """What the inbox shows; None means "any"."""

    status: str | None = "pending"
    goal_type: str | None = None
    capability: str | None = None
    priority: int | None = None
    assignee: str | None = None  # a name, or "" for unassigned
    group: str | None = None
    sla: SlaState | None = None
    opened_after: datetime | None = None  # only escalations opened since (live updates)


@dataclass(frozen=True, slots=True)
class InboxRow:
    """One escalation in the inbox."""

    id: str
    workflow_id: str
    step: str
    capability: str
    goal_type: str
    kind: str
    reason: str
    status: str
    priority: int
    group: str
    assignee: str | None
    version: int
    digest: str
    opened_at: datetime
    due_at: datetime
    warn_at: datetime
    overdue: bool
    summary: str
    confidence: float | None
    approvals: int = 0  # approvals given so far (four eyes)
    required_approvals: int = 1  # different reviewers who must approve

    def sla(self, now: datetime) -> SlaState:
        """ok, warning (close to the deadline) or overdue."""
        if self.overdue or self.due_at <= now:
            return "overdue"
        return "warning" if self.warn_at <= now else "ok"


@dataclass(frozen=True, slots=True)
class InboxPage:
    """A page of the inbox and how many rows match in all."""

    rows: list[InboxRow]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        """How many pages the matching rows fill (at least one)."""
        return max(1, -(-self.total // self.page_size))


@dataclass(frozen=True, slots=True)
class SimilarDecision:
    """An earlier, decided escalation that looks like this one."""

    id: str
    workflow_id: str
    step: str
    summary: str
    action: str
    reviewer: str
    reason: str | None
    decided_at: str
    similarity: float


def inbox(
    conn: Connection,
    *,
    filters: InboxFilter,
    now: datetime,
    sort: Sort = "priority",
    page: int = 1,
    page_size: int = 50,
) -> InboxPage:
    """One page of escalations matching ``filters``."""
    query = _filtered(select(*_ROW_COLUMNS), filters, now)
    rows = conn.execute(
        query.order_by(*_SORTS[sort], escalations.c.id)
        .limit(page_size)
        .offset((page - 1) * page_size)
    ).all()
    total = conn.execute(
        _filtered(select(func.count()).select_from(escalations), filters, now)
    ).scalar_one()
    return InboxPage([_row(r) for r in rows], int(total), page, page_size)


def counts(conn: Connection, *, filters: InboxFilter, now: datetime) -> dict[str, int]:
    """Open escalations by SLA state, and unassigned, under the other filters."""
    base = InboxFilter(
        status="pending",
        goal_type=filters.goal_type,
        capability=filters.capability,
        priority=filters.priority,
        assignee=filters.assignee,
        group=filters.group,
    )
    overdue = or_(escalations.c.overdue, escalations.c.due_at <= now)
    warning = and_(not_(overdue), escalations.c.warn_at <= now)
    row = conn.execute(
        _filtered(
            select(
                func.count().label("open"),
                func.count().filter(overdue).label("overdue"),
                func.count().filter(warning).label("warning"),
                func.count().filter(escalations.c.assignee.is_(None)).label("unassigned"),
            ).select_from(escalations),
            base,
            now,
        )
    ).one()
    return {
        "open": row.open,
        "overdue": row.overdue,
        "warning": row.warning,
        "ok": row.open - row.overdue - row.warning,
        "unassigned": row.unassigned,
    }


def facets(conn: Connection) -> dict[str, list[str]]:
    """The values the inbox filters can take (goal types, capabilities, groups, assignees)."""
    result: dict[str, list[str]] = {}
    for name, column in (
        ("goal_type", escalations.c.goal_type),
        ("capability", escalations.c.capability),
        ("group", escalations.c.group_name),
        ("assignee", escalations.c.assignee),
    ):
        values = conn.execute(
            select(column).where(column.is_not(None)).distinct().order_by(column).limit(200)
        ).scalars()
        result[name] = [str(v) for v in values]
    return result


def get(conn: Connection, *, escalation_id: str) -> tuple[WorkflowState, EscalationState] | None:
    """An escalation with its whole workflow (read only), or None."""
    workflow_id = workflow_of(conn, escalation_id=escalation_id)
    if workflow_id is None:
        return None
    state = workflow_rows.get(conn, workflow_id=workflow_id)
    if state is None:
        return None
    return state, state.escalations[escalation_id]


def workflow_of(conn: Connection, *, escalation_id: str) -> str | None:
    """The id of the workflow an escalation belongs to, or None (no such escalation)."""
    if "\x00" in escalation_id:  # PostgreSQL text cannot hold it: no escalation has it
        return None
    workflow_id: str | None = conn.execute(
        select(escalations.c.workflow_id).where(escalations.c.id == escalation_id)
    ).scalar_one_or_none()
    return workflow_id


def rows_by_id(conn: Connection, *, ids: list[str]) -> dict[str, InboxRow]:
    """Inbox rows of some escalations (for bulk decisions)."""
    found = conn.execute(select(*_ROW_COLUMNS).where(escalations.c.id.in_(ids))).all()
    return {r.id: _row(r) for r in found}


def similar(conn: Connection, *, escalation_id: str, limit: int = 5) -> list[SimilarDecision]:
    """Decided escalations of the same step and goal type nearest to this one."""
    rows = conn.execute(
        text(
            "SELECT other.id, other.workflow_id, other.step, other.content, other.decision, "
            "1 - (other.embedding <=> this.embedding) AS similarity "
            "FROM escalations AS this JOIN escalations AS other "
            "ON other.step = this.step AND other.goal_type = this.goal_type "
            "AND other.id <> this.id "
            "WHERE this.id = :id AND this.embedding IS NOT NULL AND other.decision IS NOT NULL "
            "AND other.embedding IS NOT NULL "
            "ORDER BY other.embedding <=> this.embedding LIMIT :limit"
        ),
        {"id": escalation_id, "limit": limit},
    ).all()
    return [
        SimilarDecision(
            id=r.id,
            workflow_id=r.workflow_id,
            step=r.step,
            summary=summary(r.content),
            action=r.decision["action"],
            reviewer=r.decision["reviewer"],
            reason=r.decision.get("reason"),
            decided_at=r.decision["decided_at"],
            similarity=float(r.similarity),
        )
        for r in rows
    ]


def summary(content: Mapping[str, Any], width: int = 140) -> str:
    """A one-line description of an escalation: the goal's first text field."""
    goal = content.get("goal_input") or {}
    for key in ("subject", "title", "summary", "name", "text", "body"):
        value = goal.get(key)
        if isinstance(value, str) and value.strip():
            return _clip(value, width)
    for value in goal.values():
        if isinstance(value, str) and value.strip():
            return _clip(value, width)
    return _clip(str(content.get("step", "")), width)


_ROW_COLUMNS = (
    escalations.c.id,
    escalations.c.workflow_id,
    escalations.c.step,
    escalations.c.capability,
    escalations.c.goal_type,
    escalations.c.kind,
    escalations.c.reason,
    escalations.c.status,
    escalations.c.priority,
    escalations.c.group_name,
    escalations.c.assignee,
    escalations.c.version,
    escalations.c.digest,
    escalations.c.opened_at,
    escalations.c.due_at,
    escalations.c.warn_at,
    escalations.c.overdue,
    escalations.c.content,
    escalations.c.required_approvals,
    func.jsonb_array_length(escalations.c.approvals).label("approval_count"),
)


def _filtered(query: Select[*Ts], filters: InboxFilter, now: datetime) -> Select[*Ts]:
    if filters.status is not None:
        query = query.where(escalations.c.status == filters.status)
    for value, column in (
        (filters.goal_type, escalations.c.goal_type),
        (filters.capability, escalations.c.capability),
        (filters.priority, escalations.c.priority),
        (filters.group, escalations.c.group_name),
    ):
        if value is not None:
            query = query.where(column == value)
    if filters.opened_after is not None:
        query = query.where(escalations.c.opened_at > filters.opened_after)
    if filters.assignee == "":
        query = query.where(escalations.c.assignee.is_(None))
    elif filters.assignee is not None:
        query = query.where(escalations.c.assignee == filters.assignee)
    overdue = or_(escalations.c.overdue, escalations.c.due_at <= now)
    if filters.sla == "overdue":
        query = query.where(overdue)
    elif filters.sla == "warning":
        query = query.where(not_(overdue), escalations.c.warn_at <= now)
    elif filters.sla == "ok":
        query = query.where(not_(overdue), escalations.c.warn_at > now)
    return query


def _row(row: Any) -> InboxRow:
    content = row.content
    confidence = content.get("confidence")
    return InboxRow(
        id=row.id,
        workflow_id=row.workflow_id,
        step=row.step,
        capability=row.capability,
        goal_type=row.goal_type,
        kind=row.kind,
        reason=row.reason,
        status=row.status,
        priority=row.priority,
        group=row.group_name,
        assignee=row.assignee,
        version=row.version,
        digest=row.digest,
        opened_at=row.opened_at,
        due_at=row.due_at,
        warn_at=row.warn_at,
        overdue=row.overdue,
        summary=summary(content),
        confidence=float(confidence) if isinstance(confidence, int | float) else None,
        approvals=row.approval_count,
        required_approvals=row.required_approvals,
    )


def _clip(value: str, width: int) -> str:
    value = " ".join(value.split())
    return value if len(value) <= width else value[: width - 1] + "…"
