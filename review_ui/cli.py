"""The HTTP app's part of the `waypost` command, plugged in by entry points
(pyproject.toml; see ``waypost.plugins``): `waypost serve`, and `waypost user ...` and
`waypost token ...` for console users and API tokens.

Each command imports what it runs only when it runs, so `waypost --help` stays quick.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sqlalchemy import Connection


@click.command()
def serve() -> None:
    """Serve the HTTP API (binds WAYPOST_HTTP_HOST:WAYPOST_HTTP_PORT, default 127.0.0.1:8000)."""
    from review_ui.main import main

    sys.exit(main())


@contextmanager
def _database() -> Iterator[Connection]:
    from waypost.db import make_engine
    from waypost.endpoints import DATABASE, resolve
    from waypost.settings import CommonSettings, load

    settings = load(CommonSettings)
    found = resolve(settings, need=(DATABASE,))
    engine = make_engine(found.database_url, schema=settings.database_schema, pool_size=1)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def _audit(conn: Connection, action: str, **detail: str) -> None:
    """Record a change made from the command line (the console records its own)."""
    from orchestrator.store import audit
    from orchestrator.store.audit import AuditEntry

    actor = f"cli:{getpass.getuser()}"
    audit.record(conn, entries=[AuditEntry(actor=actor, action=action, detail=detail)])


def _password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


_ROLES = click.Choice(["reviewer", "analyst", "admin"])


@click.group()
def user() -> None:
    """Console users (stored in the database; works against the running stack)."""


@user.command(name="add")
@click.argument("name")
@click.option("--role", type=_ROLES, required=True, help="reviewer, analyst or admin.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
def user_add(name: str, role: str, password_stdin: bool) -> None:
    """Add a user who can log in to the console."""
    from review_ui.auth import store
    from review_ui.auth.roles import Role

    password = _password(password_stdin)
    with _database() as conn:
        try:
            store.add_user(conn, name=name, password=password, role=Role(role))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        _audit(conn, "user_added", name=name, role=role)
    click.echo(f"added {name} ({role})")


@user.command(name="ls")
def user_ls() -> None:
    """List users."""
    from review_ui.auth import store

    with _database() as conn:
        users = store.list_users(conn)
    for found in users:
        last = found.last_login_at.isoformat(timespec="seconds") if found.last_login_at else "never"
        state = "disabled" if found.disabled else "active"
        click.echo(f"{found.name:24} {found.role.value:9} {state:9} last login {last}")
    if not users:
        click.echo("no users")


@user.command(name="disable")
@click.argument("name")
def user_disable(name: str) -> None:
    """Stop a user from logging in (ends their sessions)."""
    _set_disabled(name, disabled=True)


@user.command(name="enable")
@click.argument("name")
def user_enable(name: str) -> None:
    """Let a disabled user log in again (`waypost user passwd` sets a new password)."""
    _set_disabled(name, disabled=False)


def _set_disabled(name: str, *, disabled: bool) -> None:
    from review_ui.auth import store

    change, done = (store.disable_user, "disabled") if disabled else (store.enable_user, "enabled")
    with _database() as conn:
        try:
            change(conn, name=name)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        _audit(conn, f"user_{done}", name=name)
    click.echo(f"{done} {name}")


@user.command(name="unlock")
@click.argument("name")
def user_unlock(name: str) -> None:
    """Lift the login lock of NAME (after too many failed logins) and forget its failures.

    Locks also end by themselves after WAYPOST_THROTTLE_LOCK_S; admins can lift them on
    the console's Users page too. Audited as login_unlocked.
    """
    from review_ui.auth import throttle, throttle_store
    from waypost.events import utcnow
    from waypost.settings import HttpSettings, load

    with _database() as conn:
        lifted = throttle_store.lift(
            conn,
            scope=throttle.Scope.NAME,
            key=throttle.name_key(name),
            actor=f"cli:{getpass.getuser()}",
            now=utcnow(),
            policies=throttle.policies(load(HttpSettings)),
        )
    click.echo(f"unlocked {name}" if lifted is not None else f"{name} was not locked")


@user.command(name="passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
def user_passwd(name: str, password_stdin: bool) -> None:
    """Set a user's password (ends their sessions)."""
    from review_ui.auth import store

    password = _password(password_stdin)
    with _database() as conn:
        try:
            store.set_password(conn, name=name, password=password)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        _audit(conn, "password_changed", name=name)
    click.echo(f"password of {name} changed")


@click.group()
def token() -> None:
    """API tokens for the JSON API (`Authorization: Bearer <token>`)."""


@token.command(name="create")
@click.option("--role", type=_ROLES, required=True, help="reviewer, analyst or admin.")
@click.option("--name", default="api", show_default=True, help="A name to recognise it by.")
def token_create(role: str, name: str) -> None:
    """Create a token; it is printed once and cannot be shown again."""
    from review_ui.auth import store
    from review_ui.auth.roles import Role

    with _database() as conn:
        try:
            secret, created = store.create_token(conn, name=name, role=Role(role))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        _audit(conn, "token_created", name=name, role=role, token_id=str(created.id))
    click.echo(secret)
    click.echo(
        f"token {created.id} ({name}, {role}): keep it safe, it is not shown again", err=True
    )


@token.command(name="ls")
def token_ls() -> None:
    """List tokens (without their secrets)."""
    from review_ui.auth import store

    with _database() as conn:
        tokens = store.list_tokens(conn)
    for found in tokens:
        used = found.last_used_at.isoformat(timespec="seconds") if found.last_used_at else "never"
        state = "revoked" if found.disabled else "active"
        click.echo(f"{found.id:5} {found.name:24} {found.role.value:9} {state:8} last used {used}")


@token.command(name="revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke a token by its id (from `waypost token ls`)."""
    from review_ui.auth import store

    with _database() as conn:
        try:
            store.disable_token(conn, token_id=token_id)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        _audit(conn, "token_revoked", token_id=str(token_id))
    click.echo(f"revoked token {token_id}")
