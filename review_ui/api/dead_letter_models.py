"""Request and response bodies of the dead-letter API, one model per direction: what a
client sends (``...Create``) and what it is answered (``...Public``)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints, model_validator

from orchestrator.dead_letters.edits import (
    HEADER_NAME_PATTERN,
    HEADER_VALUE_PATTERN,
    MAX_HEADER_EDITS,
    MAX_HEADER_NAME,
    MAX_HEADER_VALUE,
    Edit,
    HeaderEdit,
)
from orchestrator.dead_letters.orders import DryRun, Prepared
from orchestrator.store.dead_letters import DeadLetter
from orchestrator.store.replays import ReplayEntry, RequestState
from review_ui.openapi import NO_NUL

# Ids are PostgreSQL bigints: below 2^63. An exclusive bound, because FastAPI writes the
# document's numbers as floats: 2^63 survives that exactly, 2^63 - 1 would not.
ID_BOUND = 2**63
_TEXT = 200  # characters of an error message in a listing


class HeaderPublic(BaseModel):
    """A header: its value as text, or base64 when it is not UTF-8."""

    name: str
    value: str | None
    base64: str | None = None


class DeadLetterSummaryPublic(BaseModel):
    """A dead letter in a listing."""

    id: int
    topic: str
    source_topic: str
    error_class: str | None
    error_message: str | None
    reason: str | None
    capability: str | None
    workflow_id: str | None
    event_type: str | None
    attempts: int | None
    replay_count: int
    dead_lettered_at: datetime
    status: str

    @classmethod
    def of(cls, letter: DeadLetter) -> DeadLetterSummaryPublic:
        """A listing's row (a long error message cut short)."""
        message = letter.error_message
        if message is not None and len(message) > _TEXT:
            message = message[: _TEXT - 1] + "…"
        return cls(**{**_named_alike(letter, cls), "error_message": message})


class DeadLetterPagePublic(BaseModel):
    """A page of dead letters, and the facet counts of what matches."""

    items: list[DeadLetterSummaryPublic]
    total: int
    page: int
    pages: int
    facets: dict[str, list[tuple[str, int]]] | None = None


class ReplayHistoryPublic(BaseModel):
    """A replay request that included a dead letter, and what it did with it."""

    request_id: str
    actor: str
    created_at: datetime
    outcome: str
    detail: str | None
    topic: str | None


class DeadLetterPublic(DeadLetterSummaryPublic):
    """A dead letter with its record (key, value, headers byte for byte) and history."""

    partition: int
    offset: int
    source_partition: int | None
    source_offset: int | None
    consumer_group: str | None
    stack_digest: str | None
    first_failure_at: datetime | None
    last_failure_at: datetime | None
    event_id: str | None
    task_id: str | None
    key: str | None
    key_base64: str | None
    value: str | None = Field(description="the value as text (null when not UTF-8)")
    value_base64: str | None
    payload: Any = Field(description="the value parsed as JSON, when it is JSON")
    headers: list[HeaderPublic]
    replay_of: str | None
    status_by: str | None
    status_at: datetime | None
    status_reason: str | None
    replays: list[ReplayHistoryPublic]

    @classmethod
    def full(cls, letter: DeadLetter, replays: list[ReplayEntry]) -> DeadLetterPublic:
        """The whole dead letter (its error message uncut) and the replays that included
        it."""
        key_text, key_b64 = _text_or_base64(letter.key)
        value_text, value_b64 = _text_or_base64(letter.value)
        return cls(
            **{
                **_named_alike(letter, cls),
                "key": key_text,
                "key_base64": key_b64,
                "value": value_text,
                "value_base64": value_b64,
                "headers": [_header(name, value) for name, value in letter.headers],
                "replays": [
                    ReplayHistoryPublic(**_named_alike(e, ReplayHistoryPublic)) for e in replays
                ],
            }
        )


class SelectionCreate(BaseModel):
    """Which dead letters: ``ids``, or a ``filter`` expression (see docs/dead-letters.md)."""

    # Exactly one of the two, as the validator below has it.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["ids"], "properties": {"ids": {"type": "array"}}},
                {"required": ["filter"], "properties": {"filter": {"type": "string"}}},
            ]
        }
    )

    # At least one id: the store reads no ids as "any id", so [] would select them all.
    ids: list[Annotated[int, Field(ge=1, lt=ID_BOUND)]] | None = Field(
        None, min_length=1, max_length=10000
    )
    filter: str | None = Field(
        None,
        min_length=1,
        max_length=2000,
        pattern=NO_NUL,
        description="e.g. 'topic=tasks.echo error=ValueError since=2h' (default status: "
        "pending); 422 when it cannot be read",
    )

    @model_validator(mode="after")
    def _one_of(self) -> SelectionCreate:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give either ids or filter")
        return self


HeaderName = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_HEADER_NAME, pattern=HEADER_NAME_PATTERN)
]
HeaderValue = Annotated[
    str, StringConstraints(max_length=MAX_HEADER_VALUE, pattern=HEADER_VALUE_PATTERN)
]
_PAYLOAD_EDITS: dict[str, JsonValue] = {
    "replace": {"not": {"type": "null"}},
    "merge_patch": {"type": "object"},
}


class EditCreate(BaseModel):
    """A change to each record before it is sent: to its payload (``replace`` or
    ``merge_patch``, not both), to its headers (``headers``), or to both."""

    # At least one edit, and at most one of the payload's, as the validator below has it.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["replace"], "properties": {"replace": _PAYLOAD_EDITS["replace"]}},
                {
                    "required": ["merge_patch"],
                    "properties": {"merge_patch": _PAYLOAD_EDITS["merge_patch"]},
                },
                {"required": ["headers"], "properties": {"headers": {"type": "object"}}},
            ],
            "not": {"required": ["replace", "merge_patch"], "properties": _PAYLOAD_EDITS},
        }
    )

    replace: Any = Field(None, description="the new payload (JSON)")
    merge_patch: dict[str, Any] | None = Field(None, description="an RFC 7386 merge patch")
    headers: dict[HeaderName, HeaderValue | None] | None = Field(
        None,
        min_length=1,
        max_length=MAX_HEADER_EDITS,
        description="headers to set (name: text value, replacing every header of that name) "
        "or to remove (name: null). Names are visible ASCII; `waypost-dlq-*` and "
        "`waypost-replay-*` are written by the replay and cannot be edited (422)",
    )

    @model_validator(mode="after")
    def _one_of(self) -> EditCreate:
        if self.replace is not None and self.merge_patch is not None:
            raise ValueError("give either replace or merge_patch, not both")
        if self.replace is None and self.merge_patch is None and self.headers is None:
            raise ValueError("give replace, merge_patch or headers")
        return self

    def edit(self) -> Edit | None:
        """The replay's payload edit (None: the payload is sent as it is)."""
        if self.merge_patch is not None:
            return Edit("merge_patch", self.merge_patch)
        if self.replace is not None:
            return Edit("replace", self.replace)
        return None

    def header_edit(self) -> HeaderEdit | None:
        """The replay's header edit (ReplayError: a header it may not change)."""
        return HeaderEdit.parse(self.headers) if self.headers is not None else None


class ReplayCreate(SelectionCreate):
    """A replay: which dead letters, where to, with which edit, how fast."""

    request_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._:-]{1,100}$",
        description="chosen by the client; the same id again never sends twice "
        "(or use the Idempotency-Key header)",
    )
    to: str | None = Field(
        None, pattern=r"^[A-Za-z0-9._-]{1,249}$", description="another topic to send to"
    )
    edit: EditCreate | None = None
    dry_run: bool = Field(False, description="show what would be sent; change nothing")
    rate: Annotated[float, Field(ge=1, le=1_000_000)] | Literal["unlimited"] | None = Field(
        None, description="messages per second (default from settings), or 'unlimited'"
    )
    force: bool = Field(False, description="replay even past the loop guard's limit")


class PreviewPublic(BaseModel):
    """What replaying one dead letter would do."""

    dead_letter_id: int
    outcome: str
    detail: str | None
    topic: str | None
    key: str | None
    headers: list[HeaderPublic]
    payload: Any

    @classmethod
    def of(cls, prepared: Prepared) -> PreviewPublic:
        """What replaying one dead letter would send."""
        record = prepared.record
        letter = prepared.dead_letter
        return cls(
            dead_letter_id=letter.id,
            outcome=prepared.outcome,
            detail=prepared.detail,
            topic=record.topic if record else None,
            key=letter.key_text,
            headers=[_header(n, v) for n, v in record.headers] if record else [],
            payload=prepared.payload if prepared.payload is not None else letter.payload,
        )


class DryRunPublic(BaseModel):
    """A dry run: how many would be sent, refused, skipped, and the first few records."""

    total: int
    counts: dict[str, int]
    previews: list[PreviewPublic]

    @classmethod
    def of(cls, run: DryRun) -> DryRunPublic:
        """A dry run as answered."""
        return cls(
            total=run.total, counts=run.counts, previews=[PreviewPublic.of(p) for p in run.previews]
        )


class ReplayPublic(BaseModel):
    """A replay request and how far it got."""

    id: str
    actor: str
    state: str = Field(description="running | done | failed")
    created_at: datetime
    finished_at: datetime | None
    total: int
    done: int
    counts: dict[str, int] = Field(description="sent, noop, refused, invalid, pending")
    selection: dict[str, Any]
    target_topic: str | None
    edit: dict[str, Any] | None = Field(
        description="replace or merge_patch (the payload), and headers (set or null)"
    )
    rate: float | None
    force: bool
    error: str | None

    @classmethod
    def of(cls, state: RequestState) -> ReplayPublic:
        """A replay request as answered."""
        return cls(**_named_alike(state, cls))


class CloseCreate(SelectionCreate):
    """Resolve or discard dead letters, with a reason."""

    reason: str = Field(
        min_length=1, max_length=4000, pattern=NO_NUL, description="not only white space"
    )


class ClosedPublic(BaseModel):
    """What a resolve or discard changed."""

    changed: list[int]
    noop: int


def _named_alike(source: object, model: type[BaseModel]) -> dict[str, Any]:
    """The attributes of ``source`` that ``model`` has a field of the same name for."""
    return {name: getattr(source, name) for name in model.model_fields if hasattr(source, name)}


def _text_or_base64(value: bytes | None) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    try:
        return value.decode(), None
    except UnicodeDecodeError:
        return None, base64.b64encode(value).decode()


def _header(name: str, value: bytes) -> HeaderPublic:
    text, encoded = _text_or_base64(value)
    return HeaderPublic(name=name, value=text, base64=encoded)
