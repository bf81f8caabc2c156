"""User administration (admins): list users, add one, disable one, and see and lift the
login locks of names and client addresses; every change audited."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from orchestrator.store import audit
from orchestrator.store.audit import AuditEntry
from review_ui.auth import store, throttle, throttle_store
from review_ui.auth.principal import Principal
from review_ui.auth.roles import Role
from review_ui.auth.throttle import Scope
from review_ui.console.common import NUL_MESSAGE, UserAdmin, frame, has_nul, see_other
from review_ui.console.render import is_htmx, pages
from review_ui.deps import AppState, StateDep
from waypost.events import utcnow

router = APIRouter(include_in_schema=False)
# Names appear in URLs and filters; "@" starts the inbox's "@me"/"@unassigned".
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
NOTICES = {
    "added": "User added.",
    "disabled": "User disabled; their sessions ended.",
    "unlocked": "Lock lifted: its failed logins are forgotten.",
    "not_locked": "That lock had already ended; nothing to lift.",
}


@router.get("/admin/users")
def users_page(
    request: Request, state: StateDep, principal: UserAdmin, notice: str | None = None
) -> Response:
    """Every user, and the form to add one."""
    return _render(request, state, principal, notice=NOTICES.get(notice or ""))


@router.post("/admin/users")
def add_user(
    request: Request,
    state: StateDep,
    principal: UserAdmin,
    name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
    password: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    """Create a user."""
    name = name.strip()
    error = None
    if not NAME.match(name):
        error = "Use 1-64 letters, digits, '.', '_', '@' or '-' for the name, starting with "
        error += "a letter or digit."
    elif role not in {r.value for r in Role}:
        error = "Choose a role."
    else:
        try:
            with state.engine.begin() as conn:
                store.add_user(conn, name=name, password=password, role=Role(role))
                _audit(conn, principal, "user_added", name=name, role=role)
        except ValueError as exc:
            error = str(exc).capitalize() + "."
    if error is not None:
        form = {"name": name, "role": role}
        return _render(request, state, principal, error=error, form=form, status=422)
    return _done(request, state, principal, "added")


@router.post("/admin/users/disable")
def disable_user(
    request: Request,
    state: StateDep,
    principal: UserAdmin,
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Stop a user from logging in and end their sessions."""
    if name == principal.name:
        error = "You cannot disable your own account; ask another admin."
        return _render(request, state, principal, error=error, status=422)
    if has_nul(name):
        return _render(request, state, principal, error=NUL_MESSAGE, status=422)
    try:
        with state.engine.begin() as conn:
            store.disable_user(conn, name=name)
            _audit(conn, principal, "user_disabled", name=name)
    except ValueError as exc:
        return _render(request, state, principal, error=str(exc).capitalize() + ".", status=422)
    return _done(request, state, principal, "disabled")


@router.post("/admin/users/unlock")
def unlock(
    request: Request,
    state: StateDep,
    principal: UserAdmin,
    scope: Annotated[str, Form(max_length=20)] = "",
    key: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Lift the login lock of a name or a client address and forget its failures."""
    if scope not in {s.value for s in Scope} or has_nul(key):
        return _render(request, state, principal, error="Choose a lock to lift.", status=422)
    with state.engine.begin() as conn:
        lifted = throttle_store.lift(
            conn,
            scope=Scope(scope),
            key=key,
            actor=principal.name,
            now=utcnow(),
            policies=throttle.policies(state.settings),
        )
    return _done(request, state, principal, "unlocked" if lifted else "not_locked")


def _done(request: Request, state: AppState, principal: Principal, notice: str) -> Response:
    if is_htmx(request):
        return _render(request, state, principal, notice=NOTICES[notice])
    return see_other(f"/admin/users?notice={notice}")


def _render(
    request: Request,
    state: AppState,
    principal: Principal,
    *,
    notice: str | None = None,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    now = utcnow()
    with state.engine.begin() as conn:
        users = store.list_users(conn)
        locks = throttle_store.locks(conn, now=now)
    policies = throttle.policies(state.settings)
    context = frame(
        principal,
        users=users,
        locks=[_lock_row(lock, now, policies) for lock in locks],
        locked_names={lock.key for lock in locks if lock.scope is Scope.NAME},
        roles=[r.value for r in Role],
        notice=notice,
        error=error,
        form=form or {"name": "", "role": Role.REVIEWER.value},
        min_password=store.MIN_PASSWORD_LENGTH,
    )
    return pages().render(request, "admin_users.html", context, status=status)


def _audit(conn: Connection, principal: Principal, action: str, **detail: str) -> None:
    audit.record(
        conn,
        entries=[AuditEntry(actor=principal.name, action=action, detail=detail, at=utcnow())],
    )


def _lock_row(lock: throttle.Counter, now: datetime, policies: throttle.Policies) -> dict[str, Any]:
    """What the Users page shows of a lock."""
    return {
        "scope": lock.scope.value,
        "key": lock.key,
        "failures": len(lock.recent(now, policies.of(lock.scope))),
        "locked_at": lock.locked_at,
        "locked_until": lock.locked_until,
        "ends": throttle.in_words(lock.locked_until - now) if lock.locked_until else "",
    }
