"""The workflow list's filters, sort and cursor as they travel in URLs: read leniently (a
GET form sends "" for "any", a hand-edited URL anything) and written back for links. A
time that cannot be read is kept, reported next to its field and not applied."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any, cast
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from orchestrator.dead_letters.filters import parse_time
from orchestrator.errors import FilterError
from orchestrator.store.workflow_pages import (
    ORDERS,
    SORTS,
    STATUSES,
    Order,
    Sort,
    TimeRange,
    WorkflowFilter,
)
from review_ui.console.common import url_number, url_text

DEFAULT_LIMIT = 50
TIME_FIELDS = (
    "accepted_since",
    "accepted_until",
    "started_since",
    "started_until",
    "finished_since",
    "finished_until",
)
_MAX_TEXT = 200
_MAX_CURSOR = 500


@dataclass(frozen=True, slots=True)
class WorkflowQuery:
    """What the reader asked the workflow list for; "" (or no status) means any."""

    status: tuple[str, ...] = ()
    type: str = ""
    id: str = ""  # an id (goal id) prefix
    trigger: str = ""  # the triggering event's type or source
    text: str = ""  # words of the goal input
    accepted_since: str = ""
    accepted_until: str = ""
    started_since: str = ""
    started_until: str = ""
    finished_since: str = ""
    finished_until: str = ""
    sort: str = "accepted"
    order: str = "desc"
    cursor: str = ""
    limit: int = DEFAULT_LIMIT
    errors: Mapping[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def parse(cls, params: QueryParams, now: datetime) -> WorkflowQuery:
        """The query in URL parameters; a value that makes no sense means its default,
        a time that cannot be read an error for its field."""

        def text(name: str, limit: int = _MAX_TEXT) -> str:
            return url_text(params, name, limit)

        def choice(name: str, allowed: tuple[str, ...], default: str) -> str:
            value = text(name)
            return value if value in allowed else default

        statuses = {s for s in params.getlist("status") if s in STATUSES}
        times = {name: text(name) for name in TIME_FIELDS}
        errors = {}
        for name, value in times.items():
            try:
                if value:
                    parse_time(value, now=now, name=name)
            except FilterError as exc:
                errors[name] = str(exc)
        return cls(
            status=tuple(s for s in STATUSES if s in statuses),
            type=text("type"),
            id=text("id"),
            trigger=text("trigger"),
            text=text("text"),
            accepted_since=times["accepted_since"],
            accepted_until=times["accepted_until"],
            started_since=times["started_since"],
            started_until=times["started_until"],
            finished_since=times["finished_since"],
            finished_until=times["finished_until"],
            sort=choice("sort", SORTS, "accepted"),
            order=choice("order", ORDERS, "desc"),
            cursor=text("cursor", _MAX_CURSOR),
            limit=url_number(text("limit"), DEFAULT_LIMIT, 1, 200),
            errors=errors,
        )

    def filters(self, now: datetime) -> WorkflowFilter:
        """The store's filter for this query (times that cannot be read left out)."""
        return WorkflowFilter(
            statuses=self.status,
            goal_type=self.type or None,
            id_prefix=self.id or None,
            triggered_by=self.trigger or None,
            text=self.text or None,
            accepted=self._range("accepted", now),
            started=self._range("started", now),
            finished=self._range("finished", now),
        )

    @property
    def store_sort(self) -> Sort:
        """The sort as the store names it."""
        return cast(Sort, self.sort)

    @property
    def store_order(self) -> Order:
        """The order as the store names it."""
        return cast(Order, self.order)

    @property
    def filtered(self) -> bool:
        """True when any filter is set (the empty list then says so)."""
        return any(
            getattr(self, name)
            for name in ("status", "type", "id", "trigger", "text", *TIME_FIELDS)
        )

    def url(self, path: str = "/workflows", **changes: Any) -> str:
        """A link to ``path`` with this query after ``changes``; a change of filter or
        sort starts again from the first page."""
        if any(name != "cursor" for name in changes) and "cursor" not in changes:
            changes["cursor"] = ""
        changed = replace(self, **changes)
        default = WorkflowQuery()
        pairs: list[tuple[str, str]] = []
        for item in fields(self):
            if item.name == "errors":
                continue
            value = getattr(changed, item.name)
            if value == getattr(default, item.name):
                continue
            if item.name == "status":
                pairs += [("status", status) for status in value]
            else:
                pairs.append((item.name, str(value)))
        return f"{path}?{urlencode(pairs)}" if pairs else path

    def _range(self, name: str, now: datetime) -> TimeRange:
        since, until = f"{name}_since", f"{name}_until"
        return TimeRange(
            since=self._moment(since, now),
            until=self._moment(until, now),
        )

    def _moment(self, name: str, now: datetime) -> datetime | None:
        value = getattr(self, name)
        if not value or name in self.errors:
            return None
        return parse_time(value, now=now, name=name)
