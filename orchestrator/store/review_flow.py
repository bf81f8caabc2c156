"""Reading what the review flow needs besides the inbox page itself: where an escalation
stands in an inbox query (its position, the one before and the one after, in the inbox's
own filter and order) and the summary lines the playbook steps wrote for escalations.

The neighbours are found by the escalation's sort key (keyset), not by its row number,
so they are right even once the escalation left the list: the one after a just-decided
escalation of the pending inbox is the next one to decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, false, func, or_, select
from sqlalchemy.sql import operators

from orchestrator.store.escalations import _SORTS, InboxFilter, Sort, _filtered
from orchestrator.store.tables import escalations


@dataclass(frozen=True, slots=True)
class Place:
    """Where an escalation stands in an inbox query."""

    position: int  # 1-based; where it would be when it no longer matches the filter
    total: int  # how many escalations match the filter
    listed: bool  # it matches the filter (it is one of ``total``)
    previous: str | None  # the id of the one before it, None at the top
    next: str | None  # the id of the one after it, None at the end


def place(
    conn: Connection, *, escalation_id: str, filters: InboxFilter, now: datetime, sort: Sort
) -> Place | None:
    """Where ``escalation_id`` stands in the inbox of ``filters`` sorted by ``sort``, or
    None when there is no such escalation."""
    if "\x00" in escalation_id:  # PostgreSQL text cannot hold it: no escalation has it
        return None
    keys = _keys(sort)
    values = conn.execute(
        select(*(column for column, _ in keys)).where(escalations.c.id == escalation_id)
    ).one_or_none()
    if values is None:
        return None
    after = _beyond(keys, tuple(values), forward=True)
    before = _beyond(keys, tuple(values), forward=False)
    counted = conn.execute(
        _filtered(
            select(
                func.count().label("total"),
                func.count().filter(before).label("before"),
                func.count().filter(escalations.c.id == escalation_id).label("listed"),
            ).select_from(escalations),
            filters,
            now,
        )
    ).one()
    in_order = [column.desc() if descending else column.asc() for column, descending in keys]
    backwards = [column.asc() if descending else column.desc() for column, descending in keys]
    ids = _filtered(select(escalations.c.id), filters, now)
    following = conn.execute(ids.where(after).order_by(*in_order).limit(1)).scalar_one_or_none()
    preceding = conn.execute(ids.where(before).order_by(*backwards).limit(1)).scalar_one_or_none()
    return Place(
        position=counted.before + 1,
        total=counted.total,
        listed=counted.listed > 0,
        previous=preceding,
        next=following,
    )


def step_summaries(conn: Connection, *, ids: list[str]) -> dict[str, str]:
    """The summary line (the step's ``summary`` template, rendered when the escalation
    opened) of those of ``ids`` whose step has one."""
    if not ids:
        return {}
    line = escalations.c.content["summary"].astext
    rows = conn.execute(
        select(escalations.c.id, line).where(escalations.c.id.in_(ids), line.is_not(None))
    ).all()
    return {row[0]: row[1] for row in rows}


def _keys(sort: Sort) -> list[tuple[ColumnElement[Any], bool]]:
    """The inbox's order for ``sort`` (escalations.py, its one home) as (column,
    descending) pairs, the id last as the inbox breaks ties."""
    keys = []
    for clause in _SORTS[sort]:
        modifier = getattr(clause, "modifier", None)
        assert modifier in (operators.asc_op, operators.desc_op), clause
        keys.append((clause.element, modifier is operators.desc_op))
    return [*keys, (escalations.c.id, False)]


def _beyond(
    keys: list[tuple[ColumnElement[Any], bool]], values: tuple[Any, ...], *, forward: bool
) -> ColumnElement[bool]:
    """Rows after (``forward``) or before the key ``values`` in the order ``keys``: the
    first column that differs decides, in its own direction."""
    either: list[ColumnElement[bool]] = []
    for index, (column, descending) in enumerate(keys):
        same = [keys[j][0] == values[j] for j in range(index)]
        later = (column < values[index]) if descending == forward else (column > values[index])
        either.append(and_(*same, later))
    return or_(false(), *either)
