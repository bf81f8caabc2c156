"""`waypost mcp serve`: the MCP server over stdio, for a local client that starts it.

Stdout carries the protocol only; logs go to stderr. The process acts as one API
token, given by the client's configuration (``--token``/``WAYPOST_API_TOKEN``, else
the running `waypost up` stack's CLI token) and looked up in the database once at
start, as the HTTP app looks up a bearer token: an unknown or revoked token stops it.
"""

from __future__ import annotations

import logging

from orchestrator.playbooks.registry import PlaybookRegistry
from review_ui.app import create_app
from review_ui.auth import store as auth_store
from review_ui.auth.principal import Principal
from review_ui.deps import AppState
from review_ui.mcp_server.calls import Caller
from review_ui.mcp_server.errors import TokenRefused
from review_ui.mcp_server.server import build_server
from waypost import service
from waypost.endpoints import read_cli_token
from waypost.events import utcnow
from waypost.settings import HttpSettings

log = logging.getLogger(__name__)
SERVICE = service.Service("mcp", pool_size=2)


def serve(settings: HttpSettings, token: str | None) -> int:
    """Serve MCP on stdin/stdout until the client closes them."""
    with service.connected(SERVICE, settings) as connections:
        bus = connections.bus()
        # The HTTP app's own state (engine, playbooks, reviews, publisher), built the
        # same way, so a call here does exactly what it does at /mcp.
        app = create_app(
            settings,
            engine=connections.engine,
            admin=bus.admin(),
            playbooks=PlaybookRegistry.load(settings.playbook_dirs),
            publisher=bus.publisher("mcp"),
        )
        state: AppState = app.state.waypost
        principal = token_principal(state, token or read_cli_token(settings.data_dir))
        log.info("serving MCP on stdio as %s (%s)", principal.name, principal.role.value)
        caller = Caller(principal, "stdio")
        build_server(state, lambda _ctx: caller).run("stdio")
    return 0


def token_principal(state: AppState, token: str | None) -> Principal:
    """The principal of an API token, as the HTTP app would find it."""
    if not token:
        raise TokenRefused(
            "no API token: pass --token or set WAYPOST_API_TOKEN to one from "
            "`waypost token create --role ROLE` (or run it beside `waypost up`)"
        )
    with state.engine.begin() as conn:
        found = auth_store.find_token(conn, secret=token.strip(), now=utcnow())
    if found is None:
        raise TokenRefused(
            "the API token is unknown or revoked; `waypost token ls` lists tokens and "
            "`waypost token create --role ROLE` makes one"
        )
    return Principal(found.name, found.role, "token")
