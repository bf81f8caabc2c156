"""The A2A routes: the public Agent Card, and the JSON-RPC endpoint behind the API's
bearer tokens. The SDK's dispatcher parses and answers JSON-RPC (the A2A 1.0 methods and,
by its v0.3 compatibility layer, the 0.3 ones); this module only authenticates the
caller and checks the role the method needs first."""

from __future__ import annotations

import json
from typing import Annotated, Any

from a2a.auth.user import User
from a2a.server.routes import DefaultServerCallContextBuilder, create_agent_card_routes
from a2a.server.routes.jsonrpc_dispatcher import JsonRpcDispatcher
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH
from fastapi import APIRouter, Depends, Request, Response
from starlette.requests import Request as StarletteRequest

from review_ui.a2a.card import ENDPOINT, agent_card
from review_ui.a2a.handler import DEFAULT_TIMING, Timing, WorkflowRequestHandler
from review_ui.auth.principal import Principal, bearer_roles
from review_ui.auth.roles import READ, SUBMIT_GOALS, Role
from review_ui.deps import AppState
from review_ui.problems import Problem

# What each method that changes something needs (A2A 1.0 name, 0.3 name); any other
# method reads, which every role may.
WRITES: dict[str, frozenset[Role]] = {
    method: SUBMIT_GOALS
    for method in (
        "SendMessage",
        "message/send",
        "SendStreamingMessage",
        "message/stream",
        "CancelTask",
        "tasks/cancel",
    )
}
_PRINCIPAL = "waypost_principal"  # where the route leaves the caller for the handler


def roles_for(method: object) -> frozenset[Role]:
    """The roles that may call a JSON-RPC method."""
    return WRITES.get(method, READ) if isinstance(method, str) else READ


class PrincipalUser(User):
    """The authenticated caller, as the SDK hands it to the request handler."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    @property
    def is_authenticated(self) -> bool:
        """Always: the route let no anonymous request through."""
        return True

    @property
    def user_name(self) -> str:
        """The token's name, as audit rows name it."""
        return self.principal.name


class _CallContextBuilder(DefaultServerCallContextBuilder):
    def build_user(self, request: StarletteRequest) -> User:
        return PrincipalUser(getattr(request.state, _PRINCIPAL))


def router(state: AppState, timing: Timing = DEFAULT_TIMING) -> APIRouter:
    """The card and the endpoint, answering for the installation ``state`` describes."""
    dispatcher = JsonRpcDispatcher(
        WorkflowRequestHandler(state, timing),
        context_builder=_CallContextBuilder(),
        enable_v0_3_compat=True,
    )
    routes = APIRouter(include_in_schema=False)

    @routes.get(AGENT_CARD_WELL_KNOWN_PATH)
    async def card(request: Request) -> Response:
        """The Agent Card, public: the skills are the playbooks' goal types now."""
        base = state.settings.http_public_origin or str(request.base_url)
        current = agent_card(
            state.playbooks, base_url=base.rstrip("/"), version=request.app.version
        )
        # The SDK's card endpoint (its JSON form with the 0.3 fields, ETag and 304),
        # for the card of this request's origin.
        (route,) = create_agent_card_routes(current)
        response: Response = await route.endpoint(request)
        return response

    @routes.post(ENDPOINT)
    async def endpoint(
        request: Request, principal: Annotated[Principal, Depends(bearer_roles(READ))]
    ) -> Response:
        """The A2A JSON-RPC endpoint: 401 without a valid bearer token, 403 for a
        method the token's role may not call."""
        method = _method(await request.body())
        if not principal.may(roles_for(method)):
            raise Problem(403, "Forbidden", f"the {principal.role} role may not call {method}")
        setattr(request.state, _PRINCIPAL, principal)
        return await dispatcher.handle_requests(request)

    return routes


def _method(body: bytes) -> Any:
    """The JSON-RPC method the body names (None if it names none; the dispatcher then
    answers the malformed request)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed.get("method") if isinstance(parsed, dict) else None
