"""Edits before a replay: of the payload (a whole new one, or an RFC 7386 JSON merge
patch of it) and of the headers (set or remove some), so a malformed event can be
repaired, not only discarded.

Both are stored with their replay request as one object, ``{"replace": document}`` or
``{"merge_patch": document}`` for the payload, plus ``{"headers": {name: value or
null}}`` for the headers, so a request resumed after a restart edits the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from orchestrator.errors import ReplayError
from waypost.bus.dead_letters import HEADER_PREFIX
from waypost.bus.records import Headers

EditKind = Literal["replace", "merge_patch"]
MAX_HEADER_EDITS = 32
MAX_HEADER_NAME = 255
MAX_HEADER_VALUE = 4096
# A header name is visible ASCII; a value is text without control characters but tab.
HEADER_NAME_PATTERN = r"^[!-~]+$"
HEADER_VALUE_PATTERN = r"^[^\x00-\x08\x0a-\x1f\x7f]*$"
# Headers a replay writes itself: the failure's are dropped, the replay's are set.
RESERVED_PREFIXES = (HEADER_PREFIX, "waypost-replay-")
_NAME = re.compile(HEADER_NAME_PATTERN)
_VALUE = re.compile(HEADER_VALUE_PATTERN)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge, ``null`` removes a member, anything
    else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = merge_patch(merged.get(name), value)
    return merged


@dataclass(frozen=True, slots=True)
class Edit:
    """A change to the payload before it is sent: a whole new payload, or a merge patch."""

    kind: EditKind
    document: Any

    def apply(self, payload: Any) -> Any:
        """The payload after the edit."""
        return self.document if self.kind == "replace" else merge_patch(payload, self.document)

    def as_json(self) -> dict[str, Any]:
        """The edit as stored with its replay request."""
        return {self.kind: self.document}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Edit | None:
        """The payload edit a replay request stored (None: none)."""
        payload = {k: v for k, v in (data or {}).items() if k != "headers"}
        if not payload:
            return None
        if len(payload) > 1:
            raise ReplayError("give one payload edit: replace or merge_patch, not both")
        ((kind, document),) = payload.items()
        if kind == "replace":
            return cls("replace", document)
        if kind == "merge_patch":
            return cls("merge_patch", document)
        raise ReplayError(f"unknown edit {kind!r}: use replace, merge_patch or headers")


@dataclass(frozen=True, slots=True)
class HeaderEdit:
    """A change to the record's headers before it is sent: each named header set to a
    text value (replacing every earlier one of that name) or, for None, removed."""

    changes: tuple[tuple[str, str | None], ...]

    @classmethod
    def parse(cls, changes: Mapping[str, str | None]) -> HeaderEdit:
        """A checked header edit (ReplayError says what is wrong with it)."""
        if not changes:
            raise ReplayError("a header edit names at least one header")
        if len(changes) > MAX_HEADER_EDITS:
            raise ReplayError(f"a header edit changes at most {MAX_HEADER_EDITS} headers")
        for name, value in changes.items():
            if not isinstance(name, str) or not 0 < len(name) <= MAX_HEADER_NAME:
                raise ReplayError(f"a header name is 1 to {MAX_HEADER_NAME} characters")
            if not _NAME.match(name):
                raise ReplayError(
                    f"header name {name!r} must be visible ASCII (no spaces or control characters)"
                )
            if name.startswith(RESERVED_PREFIXES):
                raise ReplayError(
                    f"header {name!r} is written by the replay itself and cannot be edited"
                )
            if value is None:
                continue
            if not isinstance(value, str) or len(value) > MAX_HEADER_VALUE:
                raise ReplayError(
                    f"the value of header {name!r} is text of at most {MAX_HEADER_VALUE} "
                    "characters (or null to remove the header)"
                )
            if not _VALUE.match(value):
                raise ReplayError(f"the value of header {name!r} has a control character")
        return cls(tuple(changes.items()))

    def apply(self, headers: Headers) -> Headers:
        """The headers after the edit: a set header keeps the place of its first
        occurrence (or comes last when new), a removed one is gone."""
        wanted = dict(self.changes)
        edited: list[tuple[str, bytes]] = []
        placed: set[str] = set()
        for name, value in headers:
            if name not in wanted:
                edited.append((name, value))
                continue
            new = wanted[name]
            if new is not None and name not in placed:
                edited.append((name, new.encode()))
                placed.add(name)
        edited.extend(
            (name, new.encode())
            for name, new in self.changes
            if new is not None and name not in placed
        )
        return tuple(edited)

    def as_json(self) -> dict[str, str | None]:
        """The header edit as stored with its replay request."""
        return dict(self.changes)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> HeaderEdit | None:
        """The header edit a replay request stored (None: none)."""
        changes = (data or {}).get("headers")
        return cls.parse(changes) if changes else None


def edits_json(edit: Edit | None, headers: HeaderEdit | None) -> dict[str, Any] | None:
    """Both edits as a replay request stores them (None: no edit at all)."""
    stored: dict[str, Any] = edit.as_json() if edit else {}
    if headers is not None:
        stored["headers"] = headers.as_json()
    return stored or None
