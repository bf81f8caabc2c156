"""The review flow: a reviewer works through the list of an inbox query one escalation
after another. This module says where an escalation stands in that list (``3 of 17``),
links to the previous and next ones and back to the inbox (on the page of the
escalation, the cursor on its row), and which escalation a decision leads to.

The list is the inbox's own (same filters, same order: ``review_ui/console/query.py``
and ``orchestrator/store/review_flow.py``), so ``n`` on an escalation page opens the
row below it in the inbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from orchestrator.store import review_flow
from orchestrator.store.review_flow import Place
from review_ui.auth.principal import Principal
from review_ui.console.query import CURSOR, InboxQuery
from review_ui.deps import AppState
from waypost.events import utcnow

# The decisions after which the page moves on to the next escalation of the list.
# "approval": a first approval under four eyes, which waits for a second reviewer's.
MOVES_ON = ("approve", "edit", "reject", "retry", "approval")


@dataclass(frozen=True, slots=True)
class Flow:
    """An escalation's place in the inbox query the reviewer came from."""

    origin: InboxQuery
    escalation_id: str
    place: Place | None  # None: no such escalation

    @property
    def next_url(self) -> str | None:
        """The next escalation of the list, None at its end."""
        following = self.place.next if self.place is not None else None
        return self.origin.escalation_url(following) if following is not None else None

    @property
    def previous_url(self) -> str | None:
        """The previous escalation of the list, None at its top."""
        preceding = self.place.previous if self.place is not None else None
        return self.origin.escalation_url(preceding) if preceding is not None else None

    @property
    def inbox_url(self) -> str:
        """The inbox query on the page where this escalation is (or, once it left the
        list, where the next one now is), the cursor on that row."""
        if self.place is None:
            return self.origin.url()
        size = self.origin.page_size
        last_page = max(1, -(-self.place.total // size))
        page = min((self.place.position - 1) // size + 1, last_page)
        cursor = self.escalation_id if self.place.listed else self.place.next
        return self.origin.url(page=page, extra={CURSOR: cursor} if cursor else None)

    @property
    def position(self) -> str:
        """``3 of 17``, or how many are left when this one is no longer in the list."""
        if self.place is None:
            return ""
        if self.place.listed:
            return f"{self.place.position} of {self.place.total}"
        left = self.place.total
        return f"{left} escalation{'s' if left != 1 else ''} in your inbox list"


def locate(
    conn: Connection, principal: Principal, origin: InboxQuery, escalation_id: str, now: datetime
) -> Flow:
    """Where an escalation stands in the reviewer's inbox query ``origin``."""
    found = review_flow.place(
        conn,
        escalation_id=escalation_id,
        filters=origin.filters(principal.name),
        now=now,
        sort=origin.store_sort,
    )
    return Flow(origin, escalation_id, found)


def next_after(
    state: AppState, principal: Principal, origin: InboxQuery, escalation_id: str
) -> str | None:
    """The escalation to show once ``escalation_id`` was decided: the next one of the
    list (read after the decision committed, so the decided one is already out of a
    pending inbox), None when it was the last."""
    with state.engine.begin() as conn:
        flow = locate(conn, principal, origin, escalation_id, utcnow())
    return flow.place.next if flow.place is not None else None
