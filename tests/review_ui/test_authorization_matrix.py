"""Who may use which route: every route of the app's route table has an explicit entry in
EXPECTED (anonymous, reviewer, analyst, admin), and every route is called as each of them.

A new route fails ``test_every_route_is_in_the_table`` until it is added to EXPECTED with
the roles that may use it, so nobody adds a route without deciding who may call it. The
matrix test then calls each route with real rows behind its path parameters:

- anonymous: no credentials at all (a browser with this site's Origin, no cookie);
- a session per role, made by the login form; state-changing requests carry the
  session's CSRF token and this site's Origin, as the console's own forms do;
- a bearer token per role, for the ``/api/v1`` routes.

An allowed caller must not be refused (no 401, no 403, no redirect to the login page)
and, with the requests built here, must succeed; a refused caller must get exactly the
refusal in the table: 401 from the API, 403 for a role without the permission, and for
console pages a 303 to /login without a session.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, select
from starlette.routing import Mount

from orchestrator.dead_letters.orders import ReplayOrder
from orchestrator.dead_letters.records import index_row
from orchestrator.dead_letters.replay import Replayer
from orchestrator.manual_breakers import OpenCircuit, open_circuit
from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.publishing.records import Outgoing
from orchestrator.service.applier import Applier
from orchestrator.store import dead_letters as dead_letter_rows
from orchestrator.store import escalations as escalation_rows
from orchestrator.store.dead_letters import DeadLetterFilter
from orchestrator.store.tables import dead_letters
from review_ui.app import create_app
from review_ui.auth import store as auth_store
from review_ui.auth import throttle_store
from review_ui.auth.principal import CSRF_HEADER, SESSION_COOKIE
from review_ui.auth.roles import Role
from review_ui.auth.throttle import Policies, Scope, ThrottlePolicy
from tests.review_ui.console.conftest import (
    BROWSER,
    ORIGIN,
    PASSWORD,
    PLAYBOOKS,
    Escalations,
    csrf_token,
    log_in,
)
from tests.support.failed_workflows import failed_workflow
from tests.support.schedules import add_schedule
from waypost.bus.dead_letters import Failure, dead_letter
from waypost.bus.memory import MemoryBus
from waypost.bus.records import ReceivedRecord
from waypost.events import default_codec, utcnow
from waypost.settings import HttpSettings
from waypost.topics import Topics
from waypost.triggers.signatures import github_signature

pytestmark = pytest.mark.integration

Expect = Literal["ok", "login", 401, 403]
OK: Expect = "ok"  # allowed: neither refused nor sent to the login page
LOGIN: Expect = "login"  # a console page without a session: 303 to /login
IDENTITIES = ("anonymous", "reviewer", "analyst", "admin")  # the columns of EXPECTED

# Every (method, path) of the app and what each identity gets. Mounts are listed by the
# path they serve ("/static/{path}"), for GET and HEAD.
EXPECTED: dict[tuple[str, str], tuple[Expect, Expect, Expect, Expect]] = {
    # method, path                                           anonymous reviewer analyst admin
    # public: health, the API description, the login form, static files
    ("GET", "/healthz"): (OK, OK, OK, OK),
    ("GET", "/readyz"): (OK, OK, OK, OK),
    ("GET", "/metrics"): (OK, OK, OK, OK),  # for Prometheus; restrict by network
    ("GET", "/api/v1/openapi.json"): (OK, OK, OK, OK),
    ("HEAD", "/api/v1/openapi.json"): (OK, OK, OK, OK),
    ("GET", "/"): (OK, OK, OK, OK),  # a redirect to /inbox, which then asks who you are
    ("GET", "/login"): (OK, OK, OK, OK),
    ("POST", "/login"): (OK, OK, OK, OK),
    ("GET", "/static/{path}"): (OK, OK, OK, OK),
    ("HEAD", "/static/{path}"): (OK, OK, OK, OK),
    # the JSON API: 401 without credentials, 403 without the permission
    ("POST", "/api/v1/goals"): (401, 403, 403, OK),
    ("GET", "/api/v1/workflows"): (401, OK, OK, OK),
    ("GET", "/api/v1/workflows/{workflow_id}"): (401, OK, OK, OK),
    ("GET", "/api/v1/workflows/{workflow_id}/plan-attempts"): (401, OK, OK, OK),
    ("GET", "/api/v1/workflows/{workflow_id}/escalations"): (401, OK, OK, OK),
    ("GET", "/api/v1/workflows/{workflow_id}/dead-letters"): (401, 403, OK, OK),
    ("GET", "/api/v1/workflows/{workflow_id}/timeline"): (401, OK, OK, OK),
    ("POST", "/api/v1/workflows/{workflow_id}/cancel"): (401, 403, 403, OK),
    ("POST", "/api/v1/workflows/{workflow_id}/steps/{step}/retry"): (401, 403, 403, OK),
    ("POST", "/api/v1/workflows/{workflow_id}/resume"): (401, 403, 403, OK),
    ("GET", "/api/v1/breakers"): (401, OK, OK, OK),
    ("POST", "/api/v1/breakers/{capability}/open"): (401, 403, 403, OK),
    ("POST", "/api/v1/breakers/{capability}/close"): (401, 403, 403, OK),
    ("GET", "/api/v1/policy-decisions"): (401, 403, OK, OK),
    ("GET", "/api/v1/budgets"): (401, 403, OK, OK),
    ("GET", "/api/v1/audit"): (401, 403, OK, OK),
    ("GET", "/api/v1/decision-quality"): (401, OK, OK, OK),
    ("GET", "/api/v1/decision-quality/decisions"): (401, OK, OK, OK),
    ("GET", "/api/v1/schedules"): (401, OK, OK, OK),
    ("POST", "/api/v1/schedules"): (401, 403, 403, OK),
    ("GET", "/api/v1/schedules/{name}"): (401, OK, OK, OK),
    ("DELETE", "/api/v1/schedules/{name}"): (401, 403, 403, OK),
    ("POST", "/api/v1/schedules/{name}/pause"): (401, 403, 403, OK),
    ("POST", "/api/v1/schedules/{name}/resume"): (401, 403, 403, OK),
    ("GET", "/api/v1/agents"): (401, OK, OK, OK),
    ("GET", "/api/v1/escalations"): (401, OK, OK, OK),
    ("GET", "/api/v1/escalations/{escalation_id}"): (401, OK, OK, OK),
    ("POST", "/api/v1/escalations/{escalation_id}/decision"): (401, OK, 403, OK),
    ("POST", "/api/v1/escalations/{escalation_id}/comments"): (401, OK, 403, OK),
    ("POST", "/api/v1/escalations/{escalation_id}/claim"): (401, OK, 403, OK),
    ("POST", "/api/v1/escalations/{escalation_id}/unclaim"): (401, OK, 403, OK),
    ("POST", "/api/v1/escalations/{escalation_id}/assign"): (401, 403, 403, OK),
    # console pages and forms: to /login without a session, 403 without the permission
    ("POST", "/logout"): (LOGIN, OK, OK, OK),
    ("GET", "/inbox"): (LOGIN, OK, OK, OK),
    ("GET", "/inbox/updates"): (LOGIN, OK, OK, OK),
    ("POST", "/inbox/bulk"): (LOGIN, OK, 403, OK),
    ("GET", "/escalations/{escalation_id}"): (LOGIN, OK, OK, OK),
    ("POST", "/escalations/{escalation_id}/decision"): (LOGIN, OK, 403, OK),
    ("POST", "/escalations/{escalation_id}/comments"): (LOGIN, OK, 403, OK),
    ("POST", "/escalations/{escalation_id}/claim"): (LOGIN, OK, 403, OK),
    ("POST", "/escalations/{escalation_id}/unclaim"): (LOGIN, OK, 403, OK),
    ("POST", "/escalations/{escalation_id}/assign"): (LOGIN, 403, 403, OK),
    ("GET", "/workflows"): (LOGIN, OK, OK, OK),
    ("GET", "/workflows/{workflow_id}"): (LOGIN, OK, OK, OK),
    ("POST", "/workflows/{workflow_id}/cancel"): (LOGIN, 403, 403, OK),
    ("POST", "/workflows/{workflow_id}/steps/{step}/retry"): (LOGIN, 403, 403, OK),
    ("POST", "/workflows/{workflow_id}/resume"): (LOGIN, 403, 403, OK),
    ("GET", "/agents"): (LOGIN, OK, OK, OK),
    ("GET", "/agents/{capability}"): (LOGIN, OK, OK, OK),
    ("POST", "/agents/{capability}/breaker"): (LOGIN, 403, 403, OK),
    ("GET", "/governance"): (LOGIN, 403, OK, OK),
    ("GET", "/governance/audit"): (LOGIN, 403, OK, OK),
    ("GET", "/quality"): (LOGIN, OK, OK, OK),
    ("GET", "/quality/decisions"): (LOGIN, OK, OK, OK),
    ("GET", "/admin/users"): (LOGIN, 403, 403, OK),
    ("POST", "/admin/users"): (LOGIN, 403, 403, OK),
    ("POST", "/admin/users/disable"): (LOGIN, 403, 403, OK),
    ("POST", "/admin/users/unlock"): (LOGIN, 403, 403, OK),
    # dead letters: analysts and admins
    ("GET", "/api/v1/dlq"): (401, 403, OK, OK),
    ("GET", "/api/v1/dlq/stats"): (401, 403, OK, OK),
    ("GET", "/api/v1/dlq/replays"): (401, 403, OK, OK),
    ("GET", "/api/v1/dlq/replays/{request_id}"): (401, 403, OK, OK),
    ("GET", "/api/v1/dlq/{dead_letter_id}"): (401, 403, OK, OK),
    ("POST", "/api/v1/dlq/replays"): (401, 403, OK, OK),
    ("POST", "/api/v1/dlq/resolve"): (401, 403, OK, OK),
    ("POST", "/api/v1/dlq/discard"): (401, 403, OK, OK),
    # a signed webhook: the signature is the credential, whoever sends it
    ("POST", "/hooks/{name}"): (OK, OK, OK, OK),
    # the MCP and A2A endpoints: bearer tokens only (sessions are 401, see BEARER_ONLY); the
    # role each tool or JSON-RPC method needs is checked by their own tests
    ("POST", "/mcp"): (401, OK, OK, OK),
    ("POST", "/a2a"): (401, OK, OK, OK),
    ("GET", "/.well-known/agent-card.json"): (OK, OK, OK, OK),
    ("GET", "/dlq"): (LOGIN, 403, OK, OK),
    ("GET", "/dlq/replays"): (LOGIN, 403, OK, OK),
    ("GET", "/dlq/replays/{request_id}"): (LOGIN, 403, OK, OK),
    ("GET", "/dlq/{dead_letter_id}"): (LOGIN, 403, OK, OK),
    ("POST", "/dlq/replay"): (LOGIN, 403, OK, OK),
    ("POST", "/dlq/close"): (LOGIN, 403, OK, OK),
    ("POST", "/dlq/{dead_letter_id}/replay"): (LOGIN, 403, OK, OK),
    ("POST", "/dlq/{dead_letter_id}/close"): (LOGIN, 403, OK, OK),
}

ADD_IT = "add it to EXPECTED with the roles that may use it"
# Protocol endpoints whose credential is a bearer token: a console session is refused
# there (401), whichever column it is in.
BEARER_ONLY = frozenset({"/mcp", "/a2a"})
# Served only while the app's lifespan runs (the MCP session manager), which these
# lifespan-less test clients do not start: tokens are checked there over real HTTP by
# tests/review_ui/test_mcp_server.py; sessions and anonymous callers are refused first.
LIFESPAN_ONLY = frozenset({"/mcp"})
# Locks a name at its first failure (whatever the app's own thresholds).
_LOCK_AT_ONCE = ThrottlePolicy(
    1, 1, timedelta(minutes=15), timedelta(minutes=15), timedelta(seconds=60)
)
USERS = {"reviewer": "rita", "analyst": "ann", "admin": "ada"}
ASSIGNEE = "rob"  # another reviewer: whom assign hands escalations to, whom anonymous logs in as
STATIC_FILE = "console.css"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def route_table(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app answers: its routes, those of included routers, and
    its mounts (as ``<mount>/{path}``, GET and HEAD)."""
    found: set[tuple[str, str]] = set()
    for route in _routes(app):
        if isinstance(route.original, Mount):
            found |= {(method, f"{route.path}/{{path}}") for method in ("GET", "HEAD")}
            continue
        assert route.methods, f"{route.path}: a route without methods; list it in EXPECTED"
        found |= {(method, route.path) for method in route.methods}
    return found


@dataclass(frozen=True)
class _Route:
    original: Any
    path: str
    methods: frozenset[str]


def _routes(app: FastAPI) -> Iterator[_Route]:
    """The app's routes with the paths they answer (included routers' prefixes applied).

    FastAPI keeps each included router as one entry of ``app.routes``;
    ``iter_route_contexts`` lists the routes inside, as OpenAPI generation does."""
    for context in iter_route_contexts(app.routes):
        original = context.original_route
        path = original.path if isinstance(original, Mount) else context.path_format
        assert path is not None, f"a route without a path: {original!r}"
        yield _Route(original, path, frozenset(context.methods or ()))


# --- the callers ----------------------------------------------------------------------------


@dataclass
class Caller:
    """One identity making requests: anonymous, a session, or a bearer token."""

    label: str
    identity: str  # a column of EXPECTED
    kind: Literal["anonymous", "session", "token"]
    client: TestClient
    user: str | None = None
    csrf: str = ""
    cookie: str | None = None

    def request(self, method: str, url: str, **kwargs: Any) -> Response:
        headers = dict(kwargs.pop("headers", {}))
        if self.kind == "anonymous":
            self.client.cookies.clear()  # e.g. after logging in through POST /login
        if self.kind == "session" and method not in _SAFE:
            headers[CSRF_HEADER] = self.csrf
        response: Response = self.client.request(method, url, headers=headers, **kwargs)
        if self.kind == "session" and self.client.cookies.get(SESSION_COOKIE) != self.cookie:
            self.log_in()  # the call logged out or in again: carry on with a live session
        return response

    def log_in(self) -> None:
        assert self.user is not None
        self.client.cookies.clear()
        response = log_in(self.client, self.user)
        assert response.status_code == 303, response.text
        self.cookie = self.client.cookies.get(SESSION_COOKIE)
        self.csrf = csrf_token(self.client)


@dataclass
class World:
    """The rows the requests point at: a workflow with an escalation to read, and fresh
    escalations for every call that changes one (so each allowed call can succeed); the
    same for dead letters, and a replay request to read."""

    engine: Engine
    escalations: Escalations
    read_escalation: str
    counter: Iterator[int] = field(default_factory=itertools.count)
    namespace: str = "waypost"
    read_schedule: str | None = None

    def schedule(self) -> str:
        """The schedule reads point at (made on first use)."""
        if self.read_schedule is None:
            self.read_schedule = add_schedule(self.engine, "matrix-read")
        return self.read_schedule

    def fresh_schedule(self) -> str:
        """A new schedule, for a call that changes or removes one."""
        return add_schedule(self.engine, self.name("matrix-"))

    @property
    def workflow_id(self) -> str:
        with self.engine.connect() as conn:
            found = escalation_rows.get(conn, escalation_id=self.read_escalation)
        assert found is not None
        return found[0].id

    def fresh(self) -> tuple[str, int, str]:
        """A new pending escalation: its id, version and digest."""
        escalation_id = self.escalations.open(f"Matrix {next(self.counter)}")
        with self.engine.connect() as conn:
            found = escalation_rows.get(conn, escalation_id=escalation_id)
        assert found is not None
        escalation = found[1]
        return escalation.id, escalation.version, escalation.digest

    def name(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter)}"

    def victim(self) -> str:
        """A user who exists only to be disabled."""
        name = self.name("victim")
        with self.engine.begin() as conn:
            auth_store.add_user(conn, name=name, password=PASSWORD, role=Role.REVIEWER)
        return name

    def locked_name(self) -> str:
        """A name a burst of failed logins locked (no user needs to have it)."""
        name = self.name("locked")
        policies = Policies(name=_LOCK_AT_ONCE, client=_LOCK_AT_ONCE)
        with self.engine.begin() as conn:
            throttle_store.record_failure(
                conn, scope=Scope.NAME, key=name, now=utcnow(), policies=policies, detail={}
            )
        return name

    def dead_letter(self) -> int:
        """A new pending dead letter (of a record on the goals topic): its id."""
        topics = Topics(self.namespace)
        n, now = next(self.counter), utcnow()
        source = ReceivedRecord(topics.goals, 0, n, b"key", b'{"n": %d}' % n)
        failed = dead_letter(source, Failure(ValueError("no"), 1, now, now), group="g")
        row = index_row(
            ReceivedRecord(failed.topic, 0, n, failed.key, failed.value, failed.headers), topics
        )
        with self.engine.begin() as conn:
            dead_letter_rows.index(conn, rows=[row])
            found = conn.execute(
                select(dead_letters.c.id).where(dead_letters.c.fingerprint == row["fingerprint"])
            ).scalar_one()
        return int(found)

    @cached_property
    def read_dead_letter(self) -> int:
        """The dead letter the GET routes read."""
        return self.dead_letter()

    @cached_property
    def replay_request(self) -> str:
        """A replay request to read (made, never run)."""
        replayer = Replayer(
            engine=self.engine,
            codec=default_codec(),
            namespace=self.namespace,
            admin=MemoryBus().admin(),
            publisher=None,
            clock=utcnow,
        )
        filters = DeadLetterFilter(status=None, ids=(self.read_dead_letter,))
        state, _ = replayer.submit(ReplayOrder("matrix-replay", "ann", filters, rate=None))
        return state.id


@dataclass(frozen=True)
class Call:
    """A request: the path parameters and what to send."""

    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    data: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    # logout's success is a 303 to /login that also deletes the session cookie
    logs_out: bool = False


def _decision(world: World, caller: Caller) -> Call:
    escalation_id, version, digest = world.fresh()
    body = {"action": "approve", "version": version, "digest": digest}
    return Call({"escalation_id": escalation_id}, json=body)


def _comment(world: World, caller: Caller) -> Call:
    escalation_id, version, _ = world.fresh()
    return Call({"escalation_id": escalation_id}, json={"text": "Looks right", "version": version})


def _fresh(world: World, caller: Caller) -> Call:
    return Call({"escalation_id": world.fresh()[0]})


def _assign(world: World, caller: Caller) -> Call:
    return Call({"escalation_id": world.fresh()[0]}, json={"assignee": ASSIGNEE})


def _form_decision(world: World, caller: Caller) -> Call:
    escalation_id, version, digest = world.fresh()
    form = {"action": "approve", "version": str(version), "digest": digest}
    return Call({"escalation_id": escalation_id}, data=form)


def _form_comment(world: World, caller: Caller) -> Call:
    escalation_id, version, _ = world.fresh()
    return Call({"escalation_id": escalation_id}, data={"version": str(version), "text": "Fine"})


def _form_assign(world: World, caller: Caller) -> Call:
    return Call({"escalation_id": world.fresh()[0]}, data={"assignee": ASSIGNEE})


def _bulk(world: World, caller: Caller) -> Call:
    escalation_id, version, digest = world.fresh()
    return Call(data={"op": "approve", "selected": [f"{escalation_id}:{version}:{digest}"]})


def _login(world: World, caller: Caller) -> Call:
    return Call(data={"name": caller.user or ASSIGNEE, "password": PASSWORD})


def _cancel(world: World, caller: Caller) -> Call:
    """A running workflow of its own (that of a fresh escalation) to cancel."""
    escalation_id = world.fresh()[0]
    with world.engine.connect() as conn:
        workflow_id = escalation_rows.workflow_of(conn, escalation_id=escalation_id)
    assert workflow_id is not None
    return Call({"workflow_id": workflow_id}, json={"reason": "From the matrix"})


def _failed(world: World) -> str:
    """A test.review workflow of its own whose `check` step failed (to retry or resume)."""
    return failed_workflow(
        world.engine,
        world.escalations.applier,
        world.name("matrix-failed-"),
        goal_type="test.review",
        goal_input={"subject": "From the matrix"},
        step="check",
    )


def _close_circuit(world: World, caller: Caller) -> Call:
    """A circuit opened by hand just now, to close."""
    with world.engine.begin() as conn:
        open_circuit(conn, OpenCircuit("facilities.access", "matrix", "to close"), now=utcnow())
    return Call(json={"reason": "From the matrix"})


WHY = {"reason": "From the matrix"}


def _read(world: World, caller: Caller) -> Call:
    return Call(
        {
            "escalation_id": world.read_escalation,
            "workflow_id": world.workflow_id,
            # A capability no matrix workflow dispatches to: opening its circuit by hand
            # holds up nothing the other calls need.
            "capability": "facilities.access",
            "dead_letter_id": str(world.read_dead_letter),
            "request_id": world.replay_request,
            "name": world.schedule(),
        }
    )


def _dlq_api(body: dict[str, Any]) -> Callable[[World, Caller], Call]:
    """A dead-letter API call on a fresh dead letter."""
    return lambda world, caller: Call(json={"ids": [world.dead_letter()], **body})


def _dlq_form(one: bool, **form: str) -> Callable[[World, Caller], Call]:
    """A workbench form on a fresh dead letter (in the path, or ticked in the list)."""

    def call(world: World, caller: Caller) -> Call:
        fresh = world.dead_letter()
        data: dict[str, Any] = {"request_id": world.name("matrix-form-"), **form}
        if one:
            return Call({"dead_letter_id": str(fresh)}, data=data)
        return Call(data={**data, "selected": [str(fresh)]})

    return call


# How to call a route so that an allowed caller succeeds. A route without a recipe is
# called with its path parameters filled in and no body.
HOOK_SECRET = "matrix-hook-secret"
HOOK_FILE = """\
hooks:
  matrix:
    secret: ${MATRIX_HOOK_SECRET}
    scheme: github
    goal: {type: test.review, input: {subject: "${/subject}"}}
"""


def _signed_delivery(world: World, caller: Caller) -> Call:
    body = json.dumps({"subject": "From a webhook"}).encode()
    return Call(
        {"name": "matrix"},
        content=body,
        headers={
            "content-type": "application/json",
            "X-Hub-Signature-256": github_signature(HOOK_SECRET.encode(), body),
            "X-GitHub-Delivery": world.name("delivery-"),
        },
    )


def _mcp_initialize(world: World, caller: Caller) -> Call:
    return Call(
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "matrix", "version": "1"},
            },
        },
        headers={"accept": "application/json, text/event-stream"},
    )


def _a2a_get_task(world: World, caller: Caller) -> Call:
    """A read (the task of a workflow that exists), which every role may make."""
    return Call(
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tasks/get",
            "params": {"id": world.workflow_id},
        }
    )


RECIPES: dict[tuple[str, str], Callable[[World, Caller], Call]] = {
    ("POST", "/hooks/{name}"): _signed_delivery,
    ("POST", "/api/v1/schedules"): lambda world, caller: Call(
        json={
            "name": world.name("matrix-new-"),
            "every": "1h",
            "goal": {"type": "test.review", "input": {"subject": "s"}},
        }
    ),
    ("DELETE", "/api/v1/schedules/{name}"): lambda world, caller: Call(
        {"name": world.fresh_schedule()}
    ),
    ("POST", "/api/v1/schedules/{name}/pause"): lambda world, caller: Call(
        {"name": world.fresh_schedule()}
    ),
    ("POST", "/api/v1/schedules/{name}/resume"): lambda world, caller: Call(
        {"name": world.fresh_schedule()}
    ),
    ("POST", "/mcp"): _mcp_initialize,
    ("POST", "/a2a"): _a2a_get_task,
    ("POST", "/api/v1/goals"): lambda world, caller: Call(
        json={"type": "test.review", "input": {"subject": "From the matrix"}}
    ),
    ("POST", "/api/v1/workflows/{workflow_id}/cancel"): _cancel,
    ("POST", "/api/v1/workflows/{workflow_id}/steps/{step}/retry"): lambda w, c: Call(
        {"workflow_id": _failed(w), "step": "check"}, json=WHY
    ),
    ("POST", "/api/v1/workflows/{workflow_id}/resume"): lambda w, c: Call(
        {"workflow_id": _failed(w)}, json={"step": "check", **WHY}
    ),
    ("POST", "/workflows/{workflow_id}/steps/{step}/retry"): lambda w, c: Call(
        {"workflow_id": _failed(w), "step": "check"}, data={**WHY, "confirm": "yes"}
    ),
    ("POST", "/workflows/{workflow_id}/resume"): lambda w, c: Call(
        {"workflow_id": _failed(w)}, data={"step": "check", **WHY, "confirm": "yes"}
    ),
    ("POST", "/workflows/{workflow_id}/cancel"): lambda w, c: Call(
        _cancel(w, c).params, data={**WHY, "confirm": "yes"}
    ),
    ("POST", "/api/v1/breakers/{capability}/open"): lambda w, c: Call(
        json={"reason": "From the matrix", "for_s": 60}
    ),
    ("POST", "/api/v1/breakers/{capability}/close"): _close_circuit,
    ("POST", "/agents/{capability}/breaker"): lambda w, c: Call(
        data={"action": "open", "reason": "m", "duration": "10m", "confirmed": "yes"}
    ),
    ("POST", "/api/v1/escalations/{escalation_id}/decision"): _decision,
    ("POST", "/api/v1/escalations/{escalation_id}/comments"): _comment,
    ("POST", "/api/v1/escalations/{escalation_id}/claim"): _fresh,
    ("POST", "/api/v1/escalations/{escalation_id}/unclaim"): _fresh,
    ("POST", "/api/v1/escalations/{escalation_id}/assign"): _assign,
    ("POST", "/login"): _login,
    ("POST", "/logout"): lambda world, caller: Call(logs_out=True),
    ("POST", "/inbox/bulk"): _bulk,
    ("POST", "/escalations/{escalation_id}/decision"): _form_decision,
    ("POST", "/escalations/{escalation_id}/comments"): _form_comment,
    ("POST", "/escalations/{escalation_id}/claim"): _fresh,
    ("POST", "/escalations/{escalation_id}/unclaim"): _fresh,
    ("POST", "/escalations/{escalation_id}/assign"): _form_assign,
    ("POST", "/admin/users"): lambda world, caller: Call(
        data={"name": world.name("newcomer"), "role": "reviewer", "password": PASSWORD}
    ),
    ("POST", "/admin/users/disable"): lambda world, caller: Call(data={"name": world.victim()}),
    ("POST", "/admin/users/unlock"): lambda world, caller: Call(
        data={"scope": "name", "key": world.locked_name()}
    ),
    ("POST", "/api/v1/dlq/replays"): _dlq_api({"dry_run": True}),
    ("POST", "/api/v1/dlq/resolve"): _dlq_api({"reason": "fixed by hand"}),
    ("POST", "/api/v1/dlq/discard"): _dlq_api({"reason": "junk"}),
    ("POST", "/dlq/replay"): _dlq_form(False, op="dry_run"),
    ("POST", "/dlq/close"): _dlq_form(False, op="resolve", reason="fixed by hand"),
    ("POST", "/dlq/{dead_letter_id}/replay"): _dlq_form(True, op="dry_run"),
    ("POST", "/dlq/{dead_letter_id}/close"): _dlq_form(True, op="discard", reason="junk"),
}


def build_call(world: World, caller: Caller, method: str, path: str) -> tuple[str, Call]:
    """The URL and request for ``path`` (path parameters filled from real rows)."""
    recipe = RECIPES.get((method, path), _read)
    call = recipe(world, caller)
    params = {**_read(world, caller).params, "path": STATIC_FILE, **call.params}
    try:
        url = path.format(**params)
    except KeyError as missing:
        raise AssertionError(
            f"{method} {path}: no value for the path parameter {missing}; add one to _read"
        ) from None
    return url, call


# --- what a response means ------------------------------------------------------------------


def refusal(response: Response, *, logs_out: bool = False) -> Expect | None:
    """The refusal a response is (401, 403, or a redirect to the login page), or None."""
    if response.status_code in (401, 403):
        return 401 if response.status_code == 401 else 403
    if response.status_code in (302, 303, 307) or response.headers.get("hx-redirect"):
        location = response.headers.get("hx-redirect") or response.headers.get("location", "")
        if urlsplit(location).path == "/login":
            ended = any(
                h.startswith(f'{SESSION_COOKIE}=""') or h.startswith(f"{SESSION_COOKIE}=;")
                for h in response.headers.get_list("set-cookie")
            )
            return None if logs_out and ended else LOGIN
    return None


def succeeded(response: Response) -> bool:
    """2xx, or a redirect that is not to the login page (Post/Redirect/Get)."""
    return 200 <= response.status_code < 400


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def playbooks() -> PlaybookRegistry:
    return PlaybookRegistry.load([PLAYBOOKS])


@pytest.fixture
def app(
    make_settings: Callable[..., Any],
    engine: Engine,
    playbooks: PlaybookRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> FastAPI:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "matrix.yaml").write_text(HOOK_FILE, encoding="utf-8")
    monkeypatch.setenv("MATRIX_HOOK_SECRET", HOOK_SECRET)
    settings: HttpSettings = make_settings(HttpSettings, hook_dirs=[hooks])
    return create_app(settings, engine=engine, admin=MemoryBus().admin(), playbooks=playbooks)


@pytest.fixture
def world(engine: Engine, playbooks: PlaybookRegistry, namespace: str) -> World:
    applier = Applier(
        playbooks=playbooks,
        outgoing=Outgoing(Topics(namespace), default_codec()),
        random=lambda: 0.5,
    )
    escalations = Escalations(engine, applier)
    return World(engine, escalations, escalations.open("Read me"), namespace=namespace)


@pytest.fixture
def callers(app: FastAPI, engine: Engine) -> Iterator[list[Caller]]:
    """Anonymous, a logged-in session per role, and a bearer token per role."""
    with engine.begin() as conn:
        for role, name in {**USERS, "reviewer2": ASSIGNEE}.items():
            auth_store.add_user(conn, name=name, password=PASSWORD, role=Role(role.rstrip("2")))
        tokens = {
            role: auth_store.create_token(conn, name=f"matrix-{role}", role=Role(role))[0]
            for role in USERS
        }
    clients: list[TestClient] = []

    def client(headers: dict[str, str]) -> TestClient:
        built = TestClient(app, base_url=ORIGIN, headers=headers, follow_redirects=False)
        clients.append(built)
        return built

    found = [Caller("anonymous", "anonymous", "anonymous", client(BROWSER))]
    for role, name in USERS.items():
        session = Caller(f"{role} {name} (session)", role, "session", client(BROWSER), name)
        session.log_in()
        found.append(session)
    for role, secret in tokens.items():
        bearer = {"Authorization": f"Bearer {secret}", "Accept": "application/json"}
        found.append(Caller(f"{role} (bearer token)", role, "token", client(bearer)))
    yield found
    for built in clients:
        built.close()


# --- the tests --------------------------------------------------------------------------------


def test_every_route_is_in_the_table(app: FastAPI) -> None:
    routes = route_table(app)

    missing = sorted(routes - EXPECTED.keys())
    gone = sorted(EXPECTED.keys() - routes)

    assert not missing, "\n".join(
        f"{method} {path} is not in the authorization table: {ADD_IT}" for method, path in missing
    )
    assert not gone, "\n".join(
        f"{method} {path} is in EXPECTED but the app has no such route: remove its entry"
        for method, path in gone
    )


def test_every_route_refuses_exactly_whom_the_table_says(
    app: FastAPI, world: World, callers: list[Caller]
) -> None:
    problems: list[str] = []
    calls = 0
    for method, path in sorted(route_table(app), key=lambda key: (key[1], key[0])):
        expected = EXPECTED.get((method, path))
        if expected is None:
            problems.append(f"{method} {path} is not in the authorization table: {ADD_IT}")
            continue
        for caller in callers:
            bearer_only = path in BEARER_ONLY
            if caller.kind == "token" and not (path.startswith("/api/") or bearer_only):
                continue  # bearer tokens are the API's credential; pages use sessions
            if caller.kind == "token" and path in LIFESPAN_ONLY:
                continue
            want = expected[IDENTITIES.index(caller.identity)]
            if bearer_only and caller.kind == "session":
                want = 401
            url, call = build_call(world, caller, method, path)
            response = caller.request(
                method,
                url,
                json=call.json,
                data=call.data,
                content=call.content,
                headers=call.headers,
            )
            calls += 1
            got = refusal(response, logs_out=call.logs_out)
            where = f"{method} {url} as {caller.label}"
            if response.status_code >= 500:
                problems.append(f"{where}: server error {response.status_code}")
            elif want == OK and got is not None:
                problems.append(f"{where}: refused ({got}) but the table allows it")
            elif want == OK and not succeeded(response):
                problems.append(
                    f"{where}: allowed but failed with {response.status_code}: "
                    f"{response.text[:200]}"
                )
            elif want != OK and got != want:
                problems.append(
                    f"{where}: expected {want}, got {response.status_code} "
                    f"(location {response.headers.get('location')!r})"
                )

    assert not problems, f"{len(problems)} of {calls} calls were wrong:\n" + "\n".join(problems)
    assert calls >= (len(EXPECTED) - len(LIFESPAN_ONLY)) * len(IDENTITIES)
