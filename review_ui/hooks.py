"""``POST /hooks/{name}``: signed webhooks that start workflows (docs/triggers.md).

The signature is the credential (no bearer token, no session). A delivery becomes a goal
whose id is derived from the hook and the delivery id, submitted like any goal
(``orchestrator.goals.submit``), so a delivery sent again (a sender's retry, or a replay)
finds the workflow its first copy made: 200 with ``duplicate: true`` instead of 202.
Every refusal comes before the goal is stored: none of them creates a workflow.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from orchestrator import goals
from orchestrator.errors import InvalidGoalInput, UnknownGoalType
from review_ui.deps import AppState, StateDep
from review_ui.openapi import problems
from review_ui.problems import Problem
from waypost.errors import ConfigError
from waypost.events import new_traceparent, utcnow
from waypost.events.storable import value_problem
from waypost.settings import HttpSettings
from waypost.triggers.errors import MappingError
from waypost.triggers.hooks import HOOK_NAME, ActiveHook, HookSet
from waypost.triggers.mapping import pointer
from waypost.triggers.signatures import Outcome, check

log = logging.getLogger("waypost.hooks")
router = APIRouter(tags=["hooks"])

# Goal ids of deliveries: a UUID derived from (hook, delivery id), stable across processes.
_DELIVERIES = uuid.UUID("6f1c3d52-8a0e-4d1b-9a57-1f3f2c0b7e44")
_MAX_DELIVERY_ID = 200
_created = threading.Lock()


class HookAccepted(BaseModel):
    """The workflow a delivery became."""

    workflow_id: str
    status_url: str
    duplicate: bool = Field(
        description="True when this delivery id was received before: no new workflow was "
        "started, `workflow_id` is the one its first copy started (answered 200, not 202)."
    )


def check_hooks(settings: HttpSettings) -> None:
    """Refuse to start with invalid hook files, a missing directory or an unset secret:
    ConfigError naming WAYPOST_HOOK_DIRS and every file, field and line. Once running,
    a file broken by an edit keeps its last good version (and is logged)."""
    if not settings.hook_dirs:
        return
    errors = HookSet(settings.hook_dirs, environ=os.environ).errors
    if errors:
        listing = "\n".join(str(error) for error in errors)
        raise ConfigError(f"WAYPOST_HOOK_DIRS: invalid hooks:\n{listing}")


def hook_set(state: AppState, app_state: Any) -> HookSet:
    """The app's hooks, loaded from ``hook_dirs`` on first use."""
    hooks: HookSet | None = getattr(app_state, "hooks", None)
    if hooks is None:
        with _created:
            hooks = getattr(app_state, "hooks", None)
            if hooks is None:
                # The process environment is where hook secrets live (hook files name
                # only the variable); create_app does not take it yet, so it is read here.
                hooks = HookSet(state.settings.hook_dirs, environ=os.environ)
                app_state.hooks = hooks
    return hooks


_WHY = {
    400: "The body is not JSON.",
    401: "The signature is missing or does not match the body and the hook's secret, or "
    "(schemes with a signed timestamp) the timestamp is outside the hook's tolerance; "
    "`detail` says which.",
    404: "No hook of that name is configured.",
    413: "The body is larger than the hook's `max_body`.",
    422: "The delivery has no delivery id, the body does not fit the hook's mapping (the "
    "`detail` names the reference that found nothing), or the goal it maps to breaks its "
    "playbook's input schema (`errors`) or names an unknown goal type (a hook "
    "configuration error).",
}
_RESPONSES = problems(400, 401, 404, 413, 422, 503, why=_WHY)
_RESPONSES[401].pop("headers")  # no WWW-Authenticate: the signature is the credential
_LOCATION = {
    "Location": {
        "description": "The workflow's status URL (as `status_url`).",
        "required": True,
        "schema": {"type": "string"},
    }
}


@router.post(
    "/hooks/{name}",
    status_code=202,
    response_model=HookAccepted,
    responses={
        200: {
            "model": HookAccepted,
            "description": "A delivery id received before: its workflow, `duplicate: true`.",
            "headers": _LOCATION,
        },
        202: {"description": "A workflow was started.", "headers": _LOCATION},
        204: {"description": "Signed, but the hook's `when` filter leaves it out: no workflow."},
        **_RESPONSES,
    },
    openapi_extra={
        "security": [],  # the signature is the credential
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {}}},
        },
    },
)
async def deliver(
    request: Request,
    response: Response,
    state: StateDep,
    name: Annotated[
        str,
        # Checked below (an unknown name is a 404, not a 422), so only documented here.
        Path(description="The hook's name.", json_schema_extra={"pattern": HOOK_NAME.pattern}),
    ],
    # The presets' headers, documented; the route reads the hook's own headers itself.
    x_hub_signature_256: Annotated[
        str | None, Header(description="Scheme github: `sha256=<hex HMAC of the body>`.")
    ] = None,
    x_github_delivery: Annotated[
        str | None, Header(description="Scheme github: the delivery id.")
    ] = None,
    stripe_signature: Annotated[
        str | None,
        Header(description='Scheme stripe: `t=<unix time>,v1=<hex HMAC of "<t>.<body>">`.'),
    ] = None,
) -> HookAccepted | Response:
    """Start a workflow from a signed delivery.

    The hook `name` (a YAML file in `WAYPOST_HOOK_DIRS`) says how deliveries are signed
    (`github`, `stripe` or `hmac-sha256` with headers of its own), where the delivery id
    is, and how the JSON body maps to a goal. The same delivery id twice starts one
    workflow. No bearer token: the signature is the credential."""
    active = hook_set(state, request.app.state).get(name) if HOOK_NAME.match(name) else None
    if active is None:
        raise Problem(404, "Unknown hook", f"no hook {name!r} is configured")
    hook = active.hook
    body = await _read_body(request, hook.max_body)
    headers = {key.lower(): value for key, value in request.headers.items()}
    verdict = check(
        hook.signing(), secret=active.secret, body=body, headers=headers, now=time.time()
    )
    if not verdict.valid:
        log.info("hook %s: delivery refused: %s", name, verdict.detail)
        title = "Stale timestamp" if verdict.outcome is Outcome.STALE else "Bad signature"
        raise Problem(401, title, verdict.detail)
    for header, allowed in hook.when.items():
        if headers.get(header.lower()) not in allowed:
            return Response(status_code=204)
    document = _json(body)
    delivery_id = _delivery_id(active, headers, document)
    return await run_in_threadpool(_accept, state, active, delivery_id, document, response)


async def _read_body(request: Request, limit: int) -> bytes:
    """The raw body (the signature covers its exact bytes); 413 past ``limit``."""
    too_large = Problem(413, "Body too large", f"this hook accepts at most {limit} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _json(body: bytes) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    try:
        return json.loads(body, parse_constant=refuse)
    except (ValueError, RecursionError) as exc:
        raise Problem(400, "Body is not JSON", f"send the body as JSON: {exc}") from None


def _delivery_id(active: ActiveHook, headers: dict[str, str], document: Any) -> str:
    where, what = active.hook.delivery()
    if where == "header":
        found: Any = headers.get(what.lower())
        missing = f"the {what} header is missing"
    else:
        try:
            found = pointer(document, what)
        except MappingError:
            found = None
        missing = f"the body has no delivery id at {what}"
    if isinstance(found, int) and not isinstance(found, bool):
        found = str(found)
    if not isinstance(found, str) or not found:
        raise Problem(422, "No delivery id", f"{missing} (a non-empty string)")
    if len(found) > _MAX_DELIVERY_ID or "\x00" in found:
        raise Problem(
            422, "No delivery id", f"a delivery id has 1-{_MAX_DELIVERY_ID} characters, no NUL"
        )
    return found


def _accept(
    state: AppState, active: ActiveHook, delivery_id: str, document: Any, response: Response
) -> HookAccepted:
    hook = active.hook
    now = utcnow()
    variables = {"hook": hook.name, "delivery_id": delivery_id, "received_at": now.isoformat()}
    try:
        goal_input = hook.mapping().apply(document, variables)
    except MappingError as exc:
        raise Problem(422, "Body does not fit the hook's mapping", str(exc)) from None
    problem = value_problem(goal_input)
    if problem is not None:
        raise Problem(422, "Invalid goal input", f"the input cannot be stored: {problem}")
    try:
        state.playbooks.check_goal(hook.goal.type, goal_input)
    except UnknownGoalType as exc:
        raise Problem(
            422, "Unknown goal type", f"hook {hook.name!r} ({hook.source}) maps to it: {exc}"
        ) from None
    except InvalidGoalInput as exc:
        errors = [{"field": where, "message": message} for where, message in exc.problems]
        raise Problem(422, "Invalid goal input", str(exc), errors=errors) from None
    goal_id = str(uuid.uuid5(_DELIVERIES, f"{hook.name}\n{delivery_id}"))
    with state.engine.begin() as connection:
        accepted = goals.submit(
            connection,
            goal=goals.GoalSubmission(
                goal_id=goal_id,
                type=hook.goal.type,
                input=goal_input,
                traceparent=state.outgoing.tracing.outgoing((new_traceparent(), None))[0],
                source=f"waypost/hook/{hook.name}",
            ),
            outgoing=state.outgoing,
            now=now,
        )
    if state.publisher is not None:
        # Committed first: a 202 means the goal is durable whatever the broker does next.
        state.publisher.publish(accepted.outbox)
    url = f"/api/v1/workflows/{accepted.workflow_id}"
    response.headers["Location"] = url
    if not accepted.created:
        response.status_code = 200
        log.info("hook %s: delivery %s received again (no new workflow)", hook.name, delivery_id)
    return HookAccepted(
        workflow_id=accepted.workflow_id, status_url=url, duplicate=not accepted.created
    )
