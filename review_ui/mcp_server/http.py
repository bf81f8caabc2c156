"""``/mcp``: the MCP server over streamable HTTP in the HTTP app.

The bearer token is checked before the SDK sees the request, exactly as the JSON API
checks it (``review_ui/auth/principal.py``): a throttled client gets 429, a missing or
unknown token 401 with ``WWW-Authenticate``, and only then does the SDK's transport
read the body. Console session cookies are not accepted here: they are ambient
credentials, and MCP requests carry no CSRF token.

The transport is stateless with JSON answers: every request carries its own token and
is served on its own, so any replica of the HTTP app can answer any request. The path
is a plain Starlette route, outside the OpenAPI document.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from review_ui.auth.principal import Principal, token_caller
from review_ui.deps import AppState
from review_ui.mcp_server.calls import Caller
from review_ui.mcp_server.errors import Refused
from review_ui.mcp_server.server import build_server
from review_ui.problems import Problem, problem_response

log = logging.getLogger(__name__)
PATH = "/mcp"
_CALLER = "waypost.mcp.caller"  # the ASGI scope key the endpoint leaves the caller under


class McpEndpoint:
    """The ASGI app at ``/mcp``: authentication, then the SDK's session manager (which
    runs only inside ``running()``, entered by the app's lifespan)."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.server: MCPServer = build_server(state, caller_of_request)
        self._manager: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Serve MCP requests for the block (a new session manager each time, as the
        SDK runs one only once)."""
        self.server.streamable_http_app(
            streamable_http_path=PATH,
            stateless_http=True,
            json_response=True,
            # The Host/Origin allow-list guards servers without credentials against DNS
            # rebinding; every request here needs a bearer token a browser never adds.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        manager = self.server.session_manager
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            principal = await anyio.to_thread.run_sync(self._authenticate, request)
            if self._manager is None:
                raise Problem(503, "Service Unavailable", "the MCP server is not running")
        except Problem as exc:
            response = problem_response(
                exc.status, exc.title, exc.detail, request, headers=exc.headers
            )
            await response(scope, receive, send)
            return
        scope[_CALLER] = Caller(principal, "http")
        await self._manager.handle_request(scope, receive, send)

    def _authenticate(self, request: Request) -> Principal:
        try:
            return token_caller(request, self.state)
        except SQLAlchemyError:
            log.exception("could not check an MCP bearer token")
            raise Problem(
                503, "Service Unavailable", "the database is unreachable; try again shortly"
            ) from None


def caller_of_request(ctx: Context) -> Caller:
    """The caller ``McpEndpoint`` authenticated for the HTTP request of this call."""
    request = ctx.request_context.request
    caller = request.scope.get(_CALLER) if isinstance(request, Request) else None
    if not isinstance(caller, Caller):  # only reachable if the endpoint was bypassed
        raise Refused(401, "Unauthorized", "this request was not authenticated")
    return caller


def install(app: FastAPI) -> McpEndpoint:
    """Route ``/mcp`` (POST) of ``app`` to a new endpoint over ``app.state.waypost``;
    the app's lifespan must run the returned endpoint's ``running()``."""
    endpoint = McpEndpoint(app.state.waypost)
    app.router.routes.append(Route(PATH, endpoint, methods=["POST"], include_in_schema=False))
    return endpoint
