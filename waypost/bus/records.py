"""Plain records as they cross the broker boundary (no client library types)."""

from __future__ import annotations

from dataclasses import dataclass

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """A record to publish."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class ReceivedRecord:
    """A record read from a topic, with where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    timestamp_ms: int | None = None

    def header(self, name: str) -> bytes | None:
        """The first value of a header, or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None
