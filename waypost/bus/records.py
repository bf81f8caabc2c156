"""Plain records as they cross the broker boundary (no client library types)."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

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
    # The id of the topic incarnation it was read from (None where the bus has none).
    topic_id: str | None = None

    def header(self, name: str) -> bytes | None:
        """The first value of a header, or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


def headers_to_json(headers: Iterable[tuple[str, bytes]]) -> list[list[Any]]:
    """Headers as JSON, byte for byte: ``[name, text]`` for UTF-8 values and
    ``[name, {"base64": ...}]`` for any other bytes."""
    found: list[list[Any]] = []
    for name, value in headers:
        try:
            found.append([name, value.decode()])
        except UnicodeDecodeError:
            found.append([name, {"base64": base64.b64encode(value).decode()}])
    return found


def headers_from_json(items: Sequence[Sequence[Any]]) -> Headers:
    """The headers ``headers_to_json`` wrote."""
    return tuple(
        (str(name), value.encode() if isinstance(value, str) else base64.b64decode(value["base64"]))
        for name, value in items
    )
