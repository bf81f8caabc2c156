"""The Governance pages' filters as they travel in URLs: read leniently (a GET form sends
"" for "any", a hand-edited URL anything) and written back for links, the "Older" page
and the export links. Times are what people type: ``30m``, ``7d`` or an ISO time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, cast
from urllib.parse import urlencode

from orchestrator.dead_letters.filters import parse_time
from orchestrator.store.audit_log import AuditFilter
from review_ui.console.common import url_text
from waypost import keyset
from waypost.governance.browse import DecisionFilter
from waypost.governance.model import Outcome
from waypost.keyset import Position

OUTCOMES = ("allow", "deny", "require_approval")
PAGE_SIZE = 50
_MAX_TEXT = 200


def _text(params: Mapping[str, str], name: str) -> str:
    return url_text(params, name, _MAX_TEXT)


def _times(since: str, until: str, now: datetime) -> tuple[datetime | None, datetime | None]:
    """The time range typed (FilterError saying which field is wrong)."""
    start = parse_time(since, now=now, name="since") if since else None
    end = parse_time(until, now=now, name="until") if until else None
    return start, end


@dataclass(frozen=True, slots=True)
class Paged:
    """What both lists share: the time range and the page's cursor."""

    since: str = ""
    until: str = ""
    cursor: str = ""

    def position(self) -> Position | None:
        """Where the page starts (ValueError for a cursor this app did not make)."""
        return keyset.decode(self.cursor) if self.cursor else None

    def url(self, path: str, **changes: Any) -> str:
        """``path`` with this query's parameters (changed), empty ones left out."""
        values = {**asdict(self), **changes}
        given = {name: value for name, value in values.items() if value}
        return f"{path}?{urlencode(given)}" if given else path

    def older(self, path: str, last: Position) -> str:
        """The next (older) page."""
        return self.url(path, cursor=keyset.encode(last))


@dataclass(frozen=True, slots=True)
class DecisionQuery(Paged):
    """The policy decisions asked for; "" means any."""

    agent: str = ""
    action: str = ""
    outcome: str = ""

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> DecisionQuery:
        """The query in URL parameters."""
        outcome = _text(params, "outcome")
        return cls(
            since=_text(params, "since"),
            until=_text(params, "until"),
            cursor=_text(params, "cursor"),
            agent=_text(params, "agent"),
            action=_text(params, "action"),
            outcome=outcome if outcome in OUTCOMES else "",
        )

    def filters(self, now: datetime) -> DecisionFilter:
        """The store's filter (FilterError for an unreadable time)."""
        start, end = _times(self.since, self.until, now)
        return DecisionFilter(
            agent=self.agent or None,
            action=self.action or None,
            outcome=cast(Outcome, self.outcome) if self.outcome else None,
            since=start,
            until=end,
        )


@dataclass(frozen=True, slots=True)
class AuditQuery(Paged):
    """The audit log entries asked for; "" means any."""

    actor: str = ""
    action: str = ""
    workflow_id: str = ""

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> AuditQuery:
        """The query in URL parameters."""
        return cls(
            since=_text(params, "since"),
            until=_text(params, "until"),
            cursor=_text(params, "cursor"),
            actor=_text(params, "actor"),
            action=_text(params, "action"),
            workflow_id=_text(params, "workflow_id"),
        )

    def filters(self, now: datetime) -> AuditFilter:
        """The store's filter (FilterError for an unreadable time)."""
        start, end = _times(self.since, self.until, now)
        return AuditFilter(
            actor=self.actor or None,
            action=self.action or None,
            workflow_id=self.workflow_id or None,
            since=start,
            until=end,
        )

    def export_url(self, format: str) -> str:
        """The API's export of this filter (every entry, not just this page)."""
        return replace(self, cursor="").url("/api/v1/audit", format=format)
