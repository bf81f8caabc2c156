"""The inbox's filters, sort and page as they travel in URLs: read leniently (a GET form
sends "" for "any", a hand-edited URL anything) and written back for links.

An escalation opened from the inbox carries the inbox's query in its own URL
(``/escalations/ID?from=goal_type%3Dsupport.ticket``), so the escalation page knows
which list the reviewer works through: the next and previous escalations, where a
decision leads, and the way back to the inbox with the cursor on the right row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, cast
from urllib.parse import parse_qsl, quote, urlencode

from orchestrator.store.escalations import InboxFilter, SlaState, Sort
from review_ui.console.common import url_number, url_text

STATUSES = ("pending", "decided", "resolved", "any")
SORTS: tuple[Sort, ...] = ("priority", "due", "newest", "oldest")
SLAS: tuple[SlaState, ...] = ("overdue", "warning", "ok")
PRIORITIES = ("1", "2", "3", "4", "5")
ME = "@me"
UNASSIGNED = "@unassigned"
DEFAULT_PAGE_SIZE = 50
ORIGIN = "from"  # the escalation page's parameter holding the inbox query it came from
CURSOR = "cursor"  # the inbox's parameter naming the row the cursor starts on
_MAX_TEXT = 200
_MAX_ORIGIN = 2000


@dataclass(frozen=True, slots=True)
class InboxQuery:
    """What the reviewer asked the inbox for; "" means any."""

    status: str = "pending"
    goal_type: str = ""
    capability: str = ""
    priority: str = ""
    assignee: str = ""  # "", ME, UNASSIGNED or a user name
    group: str = ""
    sla: str = ""
    sort: str = "priority"
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> InboxQuery:
        """The query in URL parameters; a value that makes no sense means its default."""

        def text(name: str) -> str:
            return url_text(params, name, _MAX_TEXT)

        def choice(name: str, allowed: tuple[str, ...], default: str) -> str:
            value = text(name)
            return value if value in allowed else default

        return cls(
            status=choice("status", STATUSES, "pending"),
            goal_type=text("goal_type"),
            capability=text("capability"),
            priority=choice("priority", PRIORITIES, ""),
            assignee=text("assignee"),
            group=text("group"),
            sla=choice("sla", SLAS, ""),
            sort=choice("sort", SORTS, "priority"),
            page=url_number(text("page"), 1, 1, 100_000),
            page_size=url_number(text("page_size"), DEFAULT_PAGE_SIZE, 1, 200),
        )

    @classmethod
    def origin(cls, params: Mapping[str, str]) -> InboxQuery:
        """The inbox query an escalation page came from (its ``from`` parameter); the
        default inbox when there is none or it makes no sense."""
        text = url_text(params, ORIGIN, _MAX_ORIGIN)
        return cls.parse(dict(parse_qsl(text))) if text else cls()

    def filters(self, me: str) -> InboxFilter:
        """The store's filter for this query, ``me`` being the reviewer's name."""
        assignee: str | None = self.assignee or None
        if self.assignee == ME:
            assignee = me
        elif self.assignee == UNASSIGNED:
            assignee = ""
        return InboxFilter(
            status=None if self.status == "any" else self.status,
            goal_type=self.goal_type or None,
            capability=self.capability or None,
            priority=int(self.priority) if self.priority else None,
            assignee=assignee,
            group=self.group or None,
            sla=cast(SlaState, self.sla) if self.sla else None,
        )

    @property
    def store_sort(self) -> Sort:
        """The sort as the store names it."""
        return cast(Sort, self.sort)

    def params(self, **changes: Any) -> dict[str, str]:
        """The parameters that differ from the defaults (after ``changes``)."""
        changed = replace(self, **changes)
        default = InboxQuery()
        return {
            f.name: str(getattr(changed, f.name))
            for f in fields(self)
            if getattr(changed, f.name) != getattr(default, f.name)
        }

    def url(
        self, path: str = "/inbox", *, extra: Mapping[str, str] | None = None, **changes: Any
    ) -> str:
        """A link to ``path`` with this query (after ``changes``) and ``extra`` parameters."""
        params = {**self.params(**changes), **(extra or {})}
        return f"{path}?{urlencode(params)}" if params else path

    @property
    def origin_params(self) -> dict[str, str]:
        """The ``from`` parameter that carries this query (without its page) to an
        escalation page; none for the default inbox."""
        token = urlencode(self.params(page=1))
        return {ORIGIN: token} if token else {}

    def escalation_url(
        self, escalation_id: str, path: str = "", *, extra: Mapping[str, str] | None = None
    ) -> str:
        """A link to an escalation's page (or ``path`` under it, e.g. ``/decision``) that
        remembers this inbox query."""
        base = f"/escalations/{quote(escalation_id, safe='')}{path}"
        params = {**self.origin_params, **(extra or {})}
        return f"{base}?{urlencode(params)}" if params else base
