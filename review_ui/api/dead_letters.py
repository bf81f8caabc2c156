"""The dead-letter API: search, read, replay (with dry run), resolve and discard, and the
replay history. Analysts and admins only."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from pydantic import BaseModel, Field, model_validator

from orchestrator.dead_letters.filters import FilterError, build_filter, parse_filter
from orchestrator.dead_letters.replay import (
    DryRun,
    Edit,
    Prepared,
    ReplayConflict,
    ReplayError,
    ReplayOrder,
    RequestState,
)
from orchestrator.store import dead_letters as index
from orchestrator.store.dead_letters import DeadLetter, DeadLetterFilter
from review_ui.auth.principal import Principal, api_roles
from review_ui.auth.roles import DEAD_LETTERS
from review_ui.deps import ConnectionDep, StateDep
from review_ui.problems import Problem

router = APIRouter(tags=["dead letters"])
Analyst = Annotated[Principal, Depends(api_roles(DEAD_LETTERS))]
_TEXT = 200
_MAX_ID = 2**63 - 1
DeadLetterId = Annotated[int, Path(ge=1, le=_MAX_ID)]


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
        message = letter.error_message
        if message is not None and len(message) > _TEXT:
            message = message[: _TEXT - 1] + "…"
        return cls(
            id=letter.id,
            topic=letter.topic,
            source_topic=letter.source_topic,
            error_class=letter.error_class,
            error_message=message,
            reason=letter.reason,
            capability=letter.capability,
            workflow_id=letter.workflow_id,
            event_type=letter.event_type,
            attempts=letter.attempts,
            replay_count=letter.replay_count,
            dead_lettered_at=letter.dead_lettered_at,
            status=letter.status,
        )


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
    def full(cls, letter: DeadLetter, replays: list[index.ReplayEntry]) -> DeadLetterPublic:
        summary = DeadLetterSummaryPublic.of(letter).model_dump()
        summary["error_message"] = letter.error_message
        key_text, key_b64 = _text_or_base64(letter.key)
        value_text, value_b64 = _text_or_base64(letter.value)
        return cls(
            **summary,
            partition=letter.partition,
            offset=letter.offset,
            source_partition=letter.source_partition,
            source_offset=letter.source_offset,
            consumer_group=letter.consumer_group,
            stack_digest=letter.stack_digest,
            first_failure_at=letter.first_failure_at,
            last_failure_at=letter.last_failure_at,
            event_id=letter.event_id,
            task_id=letter.task_id,
            key=key_text,
            key_base64=key_b64,
            value=value_text,
            value_base64=value_b64,
            payload=letter.payload,
            headers=[_header(name, value) for name, value in letter.headers],
            replay_of=letter.replay_of,
            status_by=letter.status_by,
            status_at=letter.status_at,
            status_reason=letter.status_reason,
            replays=[
                ReplayHistoryPublic(
                    request_id=e.request_id,
                    actor=e.actor,
                    created_at=e.created_at,
                    outcome=e.outcome,
                    detail=e.detail,
                    topic=e.topic,
                )
                for e in replays
            ],
        )


class Selection(BaseModel):
    """Which dead letters: ``ids``, or a ``filter`` expression (see docs/dead-letters.md)."""

    ids: list[Annotated[int, Field(ge=1, le=_MAX_ID)]] | None = Field(None, max_length=10000)
    filter: str | None = Field(
        None,
        min_length=1,
        max_length=2000,
        description="e.g. 'topic=tasks.echo error=ValueError since=2h' (default status: pending)",
    )

    @model_validator(mode="after")
    def _one_of(self) -> Selection:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give either ids or filter")
        return self


class EditCreate(BaseModel):
    """A change to each payload before it is sent."""

    replace: Any = Field(None, description="the new payload (JSON)")
    merge_patch: dict[str, Any] | None = Field(None, description="an RFC 7386 merge patch")

    @model_validator(mode="after")
    def _one_of(self) -> EditCreate:
        if (self.replace is None) == (self.merge_patch is None):
            raise ValueError("give either replace or merge_patch")
        return self

    def edit(self) -> Edit:
        if self.merge_patch is not None:
            return Edit("merge_patch", self.merge_patch)
        return Edit("replace", self.replace)


class ReplayCreate(Selection):
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
    edit: dict[str, Any] | None
    rate: float | None
    force: bool
    error: str | None

    @classmethod
    def of(cls, state: RequestState) -> ReplayPublic:
        return cls(
            id=state.id,
            actor=state.actor,
            state=state.state,
            created_at=state.created_at,
            finished_at=state.finished_at,
            total=state.total,
            done=state.done,
            counts=state.counts,
            selection=state.selection,
            target_topic=state.target_topic,
            edit=state.edit,
            rate=state.rate,
            force=state.force,
            error=state.error,
        )


class CloseCreate(Selection):
    """Resolve or discard dead letters, with a reason."""

    reason: str = Field(min_length=1, max_length=4000)


class ClosedPublic(BaseModel):
    """What a resolve or discard changed."""

    changed: list[int]
    noop: int


@router.get("/dlq", response_model=DeadLetterPagePublic)
def list_dead_letters(
    connection: ConnectionDep,
    state: StateDep,
    _: Analyst,
    status: Annotated[
        Literal["pending", "replayed", "resolved", "discarded", "any"], Query()
    ] = "pending",
    topic: Annotated[str | None, Query(max_length=300)] = None,
    error: Annotated[str | None, Query(max_length=300)] = None,
    capability: Annotated[str | None, Query(max_length=100)] = None,
    workflow: Annotated[str | None, Query(max_length=200)] = None,
    key: Annotated[str | None, Query(max_length=1000)] = None,
    type: Annotated[str | None, Query(max_length=200, description="event type")] = None,
    reason: Annotated[str | None, Query(max_length=50)] = None,
    since: Annotated[str | None, Query(max_length=50, description="30m, 2h, 7d or ISO")] = None,
    until: Annotated[str | None, Query(max_length=50)] = None,
    text: Annotated[str | None, Query(max_length=500, description="words to search")] = None,
    facets: Annotated[bool, Query(description="also count values per facet")] = False,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DeadLetterPagePublic:
    """Dead letters matching the filters, newest first (default: pending)."""
    values = {
        "status": status,
        "topic": topic,
        "error": error,
        "capability": capability,
        "workflow": workflow,
        "key": key,
        "type": type,
        "reason": reason,
        "since": since,
        "until": until,
        "text": text,
    }
    filters = _filter(values)
    namespace = state.settings.namespace
    found = index.search(
        connection, filters=filters, namespace=namespace, page=page, page_size=page_size
    )
    return DeadLetterPagePublic(
        items=[DeadLetterSummaryPublic.of(r) for r in found.rows],
        total=found.total,
        page=found.page,
        pages=max(1, -(-found.total // page_size)),
        facets=index.facets(connection, filters=filters, namespace=namespace) if facets else None,
    )


@router.get("/dlq/stats", response_model=list[dict[str, Any]])
def dead_letter_stats(connection: ConnectionDep, _: Analyst) -> list[dict[str, Any]]:
    """How many dead letters per source topic, error class and status."""
    return [
        {"source_topic": t, "error_class": e or None, "status": s, "count": n}
        for t, e, s, n in index.stats(connection)
    ]


@router.get("/dlq/replays", response_model=list[ReplayPublic])
def list_replays(
    state: StateDep,
    _: Analyst,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[ReplayPublic]:
    """Replay requests, newest first."""
    return [ReplayPublic.of(s) for s in state.replays.replayer.history(limit=limit)]


@router.get("/dlq/replays/{request_id}", response_model=ReplayPublic)
def get_replay(request_id: str, state: StateDep, _: Analyst) -> ReplayPublic:
    """A replay request and how far it got."""
    found = state.replays.replayer.state(request_id)
    if found is None:
        raise Problem(404, "No such replay", f"there is no replay request {request_id!r}")
    return ReplayPublic.of(found)


@router.get("/dlq/{dead_letter_id}", response_model=DeadLetterPublic)
def get_dead_letter(dead_letter_id: int, connection: ConnectionDep, _: Analyst) -> DeadLetterPublic:
    """One dead letter: its record byte for byte, why it failed, and its replays."""
    letter = index.get(connection, dead_letter_id=dead_letter_id)
    if letter is None:
        raise Problem(404, "No such dead letter", f"there is no dead letter {dead_letter_id}")
    return DeadLetterPublic.full(letter, index.replays_of(connection, dead_letter_id=letter.id))


@router.post(
    "/dlq/replays",
    response_model=ReplayPublic | DryRunPublic,
    status_code=202,
    responses={200: {"description": "a dry run, or the same request made before"}},
)
def replay(
    body: ReplayCreate,
    state: StateDep,
    principal: Analyst,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=100)] = None,
) -> ReplayPublic | DryRunPublic:
    """Replay dead letters to their source topic (or ``to``): 202 with the request,
    which runs in the background (poll ``/dlq/replays/{id}``); ``dry_run`` answers 200
    with what would be sent and changes nothing."""
    replayer = state.replays.replayer
    rate: float | None = state.settings.dlq_replay_rate if body.rate is None else None
    if isinstance(body.rate, float | int):
        rate = float(body.rate)
    filters, given = _selection(body, state)
    order = ReplayOrder(
        request_id=body.request_id or idempotency_key or str(uuid.uuid4()),
        actor=principal.name,
        filters=filters,
        target_topic=body.to,
        edit=body.edit.edit() if body.edit else None,
        rate=rate,
        force=body.force,
        given=given,
    )
    if body.dry_run:
        response.status_code = 200
        return DryRunPublic.of(replayer.dry_run(order))
    try:
        request, new = replayer.submit(order)
    except ReplayConflict as exc:
        raise Problem(409, "Replay request id used before", str(exc)) from None
    except ReplayError as exc:
        raise Problem(422, "Invalid replay", str(exc)) from None
    if request.state == "running":
        state.replays.start(request.id)
    if not new:
        response.status_code = 200
    return ReplayPublic.of(request)


@router.post("/dlq/resolve", response_model=ClosedPublic)
def resolve(body: CloseCreate, state: StateDep, principal: Analyst) -> ClosedPublic:
    """Mark pending dead letters resolved (fixed some other way), with a reason."""
    return _close(body, state, principal, "resolved")


@router.post("/dlq/discard", response_model=ClosedPublic)
def discard(body: CloseCreate, state: StateDep, principal: Analyst) -> ClosedPublic:
    """Mark pending dead letters discarded (never to be replayed), with a reason."""
    return _close(body, state, principal, "discarded")


def _close(
    body: CloseCreate,
    state: StateDep,
    principal: Principal,
    status: Literal["resolved", "discarded"],
) -> ClosedPublic:
    filters, _ = _selection(body, state)
    try:
        changed, noop = state.replays.replayer.close(
            filters, status=status, actor=principal.name, reason=body.reason
        )
    except ReplayError as exc:
        raise Problem(422, "Invalid request", str(exc)) from None
    return ClosedPublic(changed=changed, noop=noop)


def _selection(body: Selection, state: StateDep) -> tuple[DeadLetterFilter, dict[str, Any]]:
    """The filter of a selection (ids must exist) and how the client named it."""
    if body.ids is not None:
        ids = tuple(sorted(set(body.ids)))
        filters = DeadLetterFilter(status=None, ids=ids)
        with state.engine.connect() as conn:
            found = set(index.matching_ids(conn, filters=filters, namespace=""))
        missing = [i for i in ids if i not in found]
        if missing:
            shown = ", ".join(str(i) for i in missing[:10])
            raise Problem(404, "No such dead letter", f"no dead letter with id {shown}")
        return filters, {"ids": list(ids)}
    assert body.filter is not None
    return _parse(body.filter), {"filter": body.filter}


def _parse(expression: str) -> DeadLetterFilter:
    try:
        return parse_filter(expression)
    except FilterError as exc:
        raise Problem(422, "Invalid filter", str(exc)) from None


def _filter(values: dict[str, str | None]) -> DeadLetterFilter:
    if any(v is not None and "\x00" in v for v in values.values()):
        raise Problem(422, "Invalid filter", "filters must not contain the NUL character")
    try:
        return build_filter(values)
    except FilterError as exc:
        raise Problem(422, "Invalid filter", str(exc)) from None


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
