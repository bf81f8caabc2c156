"""What an analyst asks a replay to do (``ReplayOrder``) and what it would do with each
dead letter (``Prepared``, ``DryRun``).

An order is stored as its replay request; ``ReplayOrder.resumed`` reads it back to run
or resume the request, and ``ReplayOrder.matches`` tells a retried request (the same id
and the same ask: nothing more is sent) from a conflicting one (the same id, another
ask: refused).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.dead_letters.edits import Edit, HeaderEdit, edits_json
from orchestrator.store.dead_letters import DeadLetter, DeadLetterFilter
from orchestrator.store.replays import Outcome, RequestState
from waypost.bus.records import OutgoingRecord


@dataclass(frozen=True, slots=True)
class ReplayOrder:
    """What an analyst asks for."""

    request_id: str
    actor: str
    filters: DeadLetterFilter
    target_topic: str | None = None
    edit: Edit | None = None  # of the payload
    rate: float | None = 200.0  # messages per second; None: as fast as possible
    force: bool = False
    # How the client named the dead letters (e.g. its filter expression), stored with
    # the request so that a retry with a relative time ("since=2h") is the same request.
    given: dict[str, Any] | None = None
    header_edit: HeaderEdit | None = None

    def selection(self) -> dict[str, Any]:
        """The dead letters as the request stores them: as given, else the filter."""
        return self.given if self.given is not None else self.filters.as_json()

    def edit_json(self) -> dict[str, Any] | None:
        """The edits (payload and headers) as the request stores them."""
        return edits_json(self.edit, self.header_edit)

    def matches(self, state: RequestState) -> bool:
        """Whether the stored request asked for the same as this order."""
        stored = (state.selection, state.target_topic, state.edit, state.rate, state.force)
        return stored == (
            self.selection(),
            self.target_topic,
            self.edit_json(),
            self.rate,
            self.force,
        )

    @classmethod
    def resumed(cls, state: RequestState) -> ReplayOrder:
        """The order of a stored request, to run it (its frozen items are the selection)."""
        return cls(
            request_id=state.id,
            actor=state.actor,
            filters=DeadLetterFilter(status=None),
            target_topic=state.target_topic,
            edit=Edit.from_json(state.edit),
            header_edit=HeaderEdit.from_json(state.edit),
            rate=state.rate,
            force=state.force,
        )


@dataclass(frozen=True, slots=True)
class Prepared:
    """What replaying one dead letter would do."""

    dead_letter: DeadLetter
    outcome: Outcome
    detail: str | None
    record: OutgoingRecord | None
    payload: Any = None


@dataclass(frozen=True, slots=True)
class DryRun:
    """What a replay would do, without doing it."""

    total: int
    counts: dict[str, int]
    previews: list[Prepared]
