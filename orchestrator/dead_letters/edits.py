"""Edits before a replay: a whole new payload, or an RFC 7386 JSON merge patch of it.

An edit is stored with its replay request as ``{"replace": document}`` or
``{"merge_patch": document}``, so a request resumed after a restart edits the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from orchestrator.errors import ReplayError

EditKind = Literal["replace", "merge_patch"]


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
        """The edit a replay request stored (None: no edit)."""
        if not data:
            return None
        ((kind, document),) = data.items()
        if kind == "replace":
            return cls("replace", document)
        if kind == "merge_patch":
            return cls("merge_patch", document)
        raise ReplayError(f"unknown edit {kind!r}: use replace or merge_patch")
