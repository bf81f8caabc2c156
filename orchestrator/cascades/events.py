"""A CloudEvent as a trigger sees it, read from a record in binary or structured mode.

Any producer may publish on a trigger topic, so this reads only what a trigger needs
(id, type, source, data) and the cascade depth header, not a Waypost event type's
schema. A record that is not a CloudEvent at all is not an event for triggers (None).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.cascades.errors import CascadeRefused
from waypost.bus.records import Headers
from waypost.errors import UndecodableEvent
from waypost.events import modes

DEPTH_HEADER = "waypost-cascade-depth"


@dataclass(frozen=True, slots=True)
class TriggerEvent:
    """The attributes and data of one CloudEvent, and its record's cascade depth."""

    id: str
    type: str
    source: str
    data: Any  # parsed JSON; None when the event has none
    depth_header: bytes | None = None
    data_error: str | None = None  # why the data could not be read as JSON

    @property
    def depth(self) -> int:
        """How many triggers led to this event (0 when it says nothing)."""
        if self.depth_header is None:
            return 0
        text = self.depth_header.decode(errors="replace").strip()
        if not text.isdigit() or not text.isascii():
            raise CascadeRefused(
                f"the {DEPTH_HEADER} header {text!r} is not a whole number; it counts the "
                "triggers that led to the event (0 or more)"
            )
        return int(text)


def read_event(value: bytes | None, headers: Headers) -> TriggerEvent | None:
    """The CloudEvent a record holds, in binary or structured mode (read by
    ``waypost.events.modes``, as every consumer reads them), or None if it holds none."""
    try:
        envelope = modes.read(value, headers)
    except UndecodableEvent:
        return None
    attributes = envelope.attributes
    event_type = attributes["type"]
    data, error = None, None
    if envelope.mode == "structured" or envelope.raw:  # a binary event may have no data
        try:
            data = envelope.json_data(event_type)
        except UndecodableEvent as exc:
            error = str(exc)
    depth = next((raw for name, raw in headers if name == DEPTH_HEADER), None)
    return TriggerEvent(attributes["id"], event_type, attributes["source"], data, depth, error)
