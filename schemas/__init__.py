"""Event contracts: one JSON Schema (2020-12) per Waypost event type, versioned by file name.

``<event type>.v<N>.json`` is version N of the body schema for ``ce_type`` ``waypost.<event
type>``; ``common.v1.json`` holds the shared definitions the others reference.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

_FILE = re.compile(r"^(?P<type>[a-z][a-z0-9_.]*)\.v(?P<version>\d+)\.json$")
BASE_URI = "https://schemas.waypost.dev/"


@dataclass(frozen=True, slots=True)
class SchemaFile:
    """One versioned schema of an event type."""

    event_type: str
    version: int
    uri: str
    document: dict[str, Any]


@cache
def all_schemas() -> tuple[SchemaFile, ...]:
    """Every event schema shipped in this package (the shared ``common`` file excluded)."""
    found = []
    for entry in resources.files(__name__).iterdir():
        match = _FILE.match(entry.name)
        if match is None or match["type"] == "common":
            continue
        document = json.loads(entry.read_text(encoding="utf-8"))
        found.append(
            SchemaFile(match["type"], int(match["version"]), BASE_URI + entry.name, document)
        )
    return tuple(sorted(found, key=lambda s: (s.event_type, s.version)))


def shared_documents() -> dict[str, dict[str, Any]]:
    """Documents other schemas reference, by URI (for building a validator registry)."""
    documents = {}
    for entry in resources.files(__name__).iterdir():
        if entry.name.startswith("common.") and entry.name.endswith(".json"):
            documents[BASE_URI + entry.name] = json.loads(entry.read_text(encoding="utf-8"))
    return documents


def latest(event_type: str) -> SchemaFile:
    """The newest schema version of an event type; KeyError if the type is unknown."""
    versions = [s for s in all_schemas() if s.event_type == event_type]
    if not versions:
        raise KeyError(event_type)
    return versions[-1]


def event_types() -> frozenset[str]:
    """Every event type that has a schema."""
    return frozenset(s.event_type for s in all_schemas())
