"""One call to the MCP server: who makes it, whether their role may, and its audit row.

Every tool call and resource read goes through ``Calls.call``: it finds the caller
(the bearer token of the HTTP request, or the token ``waypost mcp serve`` was started
with), refuses a role the JSON API would refuse (a 403 that names the roles needed),
turns the JSON API's problems into tool errors, and writes one ``mcp_call`` row to
``audit_events`` with the caller's name, whatever the outcome. Operations that audit
themselves (a decision writes ``decide``) keep doing so, as the same caller.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from mcp.server.mcpserver import Context
from sqlalchemy.exc import SQLAlchemyError

from orchestrator.store import audit
from orchestrator.store.audit import AuditEntry
from review_ui.auth.principal import Principal
from review_ui.auth.roles import Role
from review_ui.deps import AppState
from review_ui.mcp_server.errors import Refused
from review_ui.problems import Problem

log = logging.getLogger(__name__)
AUDIT_ACTION = "mcp_call"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who makes a call, and over which transport."""

    principal: Principal
    transport: Literal["http", "stdio"]


# How a server finds the caller of a request (the SDK's per-request context).
Identify = Callable[[Context], Caller]


@dataclass(frozen=True, slots=True)
class Calls:
    """The app's state and how to find a call's caller."""

    state: AppState
    identify: Identify

    @contextmanager
    def call(
        self,
        ctx: Context,
        name: str,
        roles: Iterable[Role],
        arguments: Mapping[str, Any],
        *,
        workflow_id: str | None = None,
        escalation_id: str | None = None,
    ) -> Iterator[Principal]:
        """The caller's principal for the block, if its role is one of ``roles``;
        audited as ``mcp_call`` with the outcome (``ok``, or the refusal's status)."""
        caller = self.identify(ctx)
        principal = caller.principal
        outcome: str = "ok"
        try:
            allowed = frozenset(roles)
            if not principal.may(allowed):
                needed = " or ".join(sorted(role.value for role in allowed))
                raise Refused(
                    403,
                    "Forbidden",
                    f"{name} needs the {needed} role; {principal.name!r} has the "
                    f"{principal.role.value} role",
                )
            try:
                yield principal
            except Problem as exc:
                raise Refused.of(exc) from None
            except SQLAlchemyError:
                log.exception("%s failed on the database", name)
                raise Refused(503, "Service Unavailable", "the database failed") from None
        except Refused as exc:
            outcome = str(exc.status)
            raise
        except BaseException:
            outcome = "error"
            raise
        finally:
            self._audit(caller, name, arguments, outcome, workflow_id, escalation_id)

    def _audit(
        self,
        caller: Caller,
        name: str,
        arguments: Mapping[str, Any],
        outcome: str,
        workflow_id: str | None,
        escalation_id: str | None,
    ) -> None:
        # The arguments' digest, not the arguments: goal input and edited outputs may hold
        # personal data, and they are stored where they belong (workflow, decision).
        canonical = json.dumps(arguments, sort_keys=True, default=str).encode()
        entry = AuditEntry(
            actor=caller.principal.name,
            action=AUDIT_ACTION,
            workflow_id=workflow_id,
            escalation_id=escalation_id,
            detail={
                "tool": name,
                "transport": caller.transport,
                "role": caller.principal.role.value,
                "outcome": outcome,
                "arguments_sha256": hashlib.sha256(canonical).hexdigest(),
            },
        )
        try:
            with self.state.engine.begin() as conn:
                audit.record(conn, entries=[entry])
        except SQLAlchemyError:
            # The call's own answer (a result or a refusal) matters more than its trail.
            log.exception("could not audit the MCP call %s by %s", name, caller.principal.name)
