"""The dead-letter API: search, read, replay (with dry run), resolve and discard, and the
replay history. Analysts and admins only."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Response

from orchestrator.dead_letters.filters import build_filter, parse_filter
from orchestrator.dead_letters.orders import ReplayOrder
from orchestrator.errors import FilterError, ReplayConflict, ReplayError
from orchestrator.store import dead_letters as index
from orchestrator.store import replays as replay_rows
from orchestrator.store.dead_letters import DeadLetterFilter
from review_ui.api.dead_letter_models import (
    ID_BOUND,
    CloseCreate,
    ClosedPublic,
    DeadLetterPagePublic,
    DeadLetterPublic,
    DeadLetterSummaryPublic,
    DryRunPublic,
    ReplayCreate,
    ReplayPublic,
    SelectionCreate,
)
from review_ui.auth.principal import Principal, api_roles
from review_ui.auth.roles import DEAD_LETTERS
from review_ui.deps import ConnectionDep, StateDep
from review_ui.openapi import NO_NUL, PathText, problems
from review_ui.problems import Problem
from waypost.events.storable import value_problem

router = APIRouter(tags=["dead letters"])
Analyst = Annotated[Principal, Depends(api_roles(DEAD_LETTERS))]
DeadLetterId = Annotated[int, Path(ge=1, lt=ID_BOUND)]
FilterText = Annotated[str | None, Query(max_length=300, pattern=NO_NUL)]
_SELECTED = (
    "A selection that breaks the schema, a filter that cannot be read, or a reason that "
    "is only white space."
)


@router.get(
    "/dlq",
    response_model=DeadLetterPagePublic,
    responses=problems(
        401,
        403,
        422,
        429,
        503,
        why={
            422: "A parameter that breaks the schema, or a `since` or `until` that is "
            "neither a duration nor an ISO time."
        },
    ),
)
def list_dead_letters(
    connection: ConnectionDep,
    state: StateDep,
    _: Analyst,
    status: Annotated[
        Literal["pending", "replayed", "resolved", "discarded", "any"], Query()
    ] = "pending",
    topic: FilterText = None,
    error: FilterText = None,
    capability: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    workflow: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    key: Annotated[str | None, Query(max_length=1000, pattern=NO_NUL)] = None,
    type: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="event type")
    ] = None,
    reason: Annotated[str | None, Query(max_length=50, pattern=NO_NUL)] = None,
    since: Annotated[
        str | None,
        Query(
            max_length=50,
            pattern=NO_NUL,
            description="a duration back from now (90s, 30m, 2h, 7d, 1w) or an ISO time",
        ),
    ] = None,
    until: Annotated[
        str | None, Query(max_length=50, pattern=NO_NUL, description="as `since`")
    ] = None,
    text: Annotated[
        str | None, Query(max_length=500, pattern=NO_NUL, description="words to search")
    ] = None,
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


@router.get(
    "/dlq/stats", response_model=list[dict[str, Any]], responses=problems(401, 403, 429, 503)
)
def dead_letter_stats(connection: ConnectionDep, _: Analyst) -> list[dict[str, Any]]:
    """How many dead letters per source topic, error class and status."""
    return [
        {"source_topic": t, "error_class": e or None, "status": s, "count": n}
        for t, e, s, n in index.stats(connection)
    ]


@router.get(
    "/dlq/replays", response_model=list[ReplayPublic], responses=problems(401, 403, 422, 429, 503)
)
def list_replays(
    state: StateDep,
    _: Analyst,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[ReplayPublic]:
    """Replay requests, newest first."""
    return [ReplayPublic.of(s) for s in state.replays.replayer.history(limit=limit)]


@router.get(
    "/dlq/replays/{request_id}",
    response_model=ReplayPublic,
    responses=problems(401, 403, 404, 429, 503, why={404: "No such replay request."}),
)
def get_replay(
    request_id: PathText,
    state: StateDep,
    _: Analyst,
) -> ReplayPublic:
    """A replay request and how far it got."""
    # No stored id has a NUL (PostgreSQL text cannot hold it): such an id is not found.
    found = None if "\x00" in request_id else state.replays.replayer.state(request_id)
    if found is None:
        raise Problem(404, "No such replay", f"there is no replay request {request_id!r}")
    return ReplayPublic.of(found)


@router.get(
    "/dlq/{dead_letter_id}",
    response_model=DeadLetterPublic,
    responses=problems(
        401,
        403,
        404,
        422,
        429,
        503,
        why={404: "No such dead letter.", 422: "An id that is not 1 to 2^63-1."},
    ),
)
def get_dead_letter(
    dead_letter_id: DeadLetterId, connection: ConnectionDep, _: Analyst
) -> DeadLetterPublic:
    """One dead letter: its record byte for byte, why it failed, and its replays."""
    letter = index.get(connection, dead_letter_id=dead_letter_id)
    if letter is None:
        raise Problem(404, "No such dead letter", f"there is no dead letter {dead_letter_id}")
    replays = replay_rows.replays_of(connection, dead_letter_id=letter.id)
    return DeadLetterPublic.full(letter, replays)


@router.post(
    "/dlq/replays",
    response_model=ReplayPublic | DryRunPublic,
    status_code=202,
    responses={
        200: {
            "description": "A dry run, or the same request made before.",
            "model": ReplayPublic | DryRunPublic,
        },
        **problems(
            400,
            401,
            403,
            404,
            409,
            422,
            429,
            503,
            why={
                404: "An id in `ids` names no dead letter.",
                409: "The request id was used before for another replay.",
                422: _SELECTED + " Or an `edit` value with a NUL character or an integer "
                "beyond 64 bits, or a header edit of a `waypost-dlq-*` or "
                "`waypost-replay-*` header.",
            },
        ),
    },
)
def replay(
    body: ReplayCreate,
    state: StateDep,
    principal: Analyst,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(max_length=100, description="The request id when the body names none."),
    ] = None,
) -> ReplayPublic | DryRunPublic:
    """Replay dead letters to their source topic (or ``to``): 202 with the request,
    which runs in the background (poll ``/dlq/replays/{id}``); ``dry_run`` answers 200
    with what would be sent and changes nothing."""
    if body.edit is not None:
        problem = value_problem(body.edit.replace) or value_problem(body.edit.merge_patch)
        if problem is not None:
            raise Problem(422, "Invalid edit", f"the edit cannot be stored: {problem}")
    try:
        header_edit = body.edit.header_edit() if body.edit else None
    except ReplayError as exc:
        raise Problem(422, "Invalid edit", str(exc)) from None
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
        header_edit=header_edit,
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


_CLOSE_REFUSALS = problems(
    400,
    401,
    403,
    404,
    422,
    429,
    503,
    why={404: "An id in `ids` names no dead letter.", 422: _SELECTED},
)


@router.post("/dlq/resolve", response_model=ClosedPublic, responses=_CLOSE_REFUSALS)
def resolve(body: CloseCreate, state: StateDep, principal: Analyst) -> ClosedPublic:
    """Mark pending dead letters resolved (fixed some other way), with a reason."""
    return _close(body, state, principal, "resolved")


@router.post("/dlq/discard", response_model=ClosedPublic, responses=_CLOSE_REFUSALS)
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


def _selection(body: SelectionCreate, state: StateDep) -> tuple[DeadLetterFilter, dict[str, Any]]:
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
    try:
        return build_filter(values)
    except FilterError as exc:
        raise Problem(422, "Invalid filter", str(exc)) from None
