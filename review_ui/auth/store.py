"""Users, sessions and API tokens: every query on the auth tables.

Passwords are stored as argon2id hashes; session ids and API tokens only as SHA-256
digests, so a database dump reveals no usable credential.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Row, delete, func, insert, select, update

from review_ui.auth.roles import Role
from review_ui.auth.tables import api_tokens, sessions, users

_hasher = PasswordHasher()
# A hash to verify against when the user does not exist, so a login for an unknown name
# takes as long as one with a wrong password (no user enumeration by timing).
_DUMMY_HASH = _hasher.hash("not a real password")
MIN_PASSWORD_LENGTH = 12
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


@dataclass(frozen=True, slots=True)
class User:
    """A person who can log in."""

    id: int
    name: str
    role: Role
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in browser."""

    id_hash: str
    user: User
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class Token:
    """An API token (its secret is never stored)."""

    id: int
    name: str
    role: Role
    disabled: bool
    created_at: datetime
    last_used_at: datetime | None


def digest(secret: str) -> str:
    """SHA-256 of a session id or token: what the database keeps."""
    return hashlib.sha256(secret.encode()).hexdigest()


def password_problem(password: str) -> str | None:
    """Why a password is not good enough, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"use at least {MIN_PASSWORD_LENGTH} characters"
    if password.lower() in {"changemechangeme", "passwordpassword", "adminadminadmin"}:
        return "choose a password that is not a well-known placeholder"
    return None


def add_user(conn: Connection, *, name: str, password: str, role: Role) -> User:
    """Create a user (ValueError if the name is taken or the password too weak)."""
    problem = password_problem(password)
    if problem is not None:
        raise ValueError(f"password refused: {problem}")
    if not _NAME.match(name):
        raise ValueError(
            "a user name is 1-64 letters, digits, '.', '_', '@' or '-', starting with a "
            "letter or digit"
        )
    if find_user(conn, name=name) is not None:
        raise ValueError(f"a user named {name!r} already exists")
    if _active_token_named(conn, name):
        raise ValueError(
            f"an API token is named {name!r}, and a token acts under its name: revoke it "
            "or pick another user name"
        )
    row = conn.execute(
        insert(users)
        .values(name=name, password_hash=_hasher.hash(password), role=role.value)
        .returning(*users.c)
    ).one()
    return _user(row)


def set_password(conn: Connection, *, name: str, password: str) -> None:
    """Change a user's password and log out all their sessions."""
    problem = password_problem(password)
    if problem is not None:
        raise ValueError(f"password refused: {problem}")
    user = find_user(conn, name=name)
    if user is None:
        raise ValueError(f"no user named {name!r}")
    conn.execute(
        update(users).where(users.c.id == user.id).values(password_hash=_hasher.hash(password))
    )
    conn.execute(delete(sessions).where(sessions.c.user_id == user.id))


def disable_user(conn: Connection, *, name: str) -> None:
    """Stop a user from logging in, and end their sessions."""
    _set_disabled(conn, name, disabled=True)


def enable_user(conn: Connection, *, name: str) -> None:
    """Let a disabled user log in again (with the password they had)."""
    _set_disabled(conn, name, disabled=False)


def _set_disabled(conn: Connection, name: str, *, disabled: bool) -> None:
    user = find_user(conn, name=name)
    if user is None:
        raise ValueError(f"no user named {name!r}")
    conn.execute(update(users).where(users.c.id == user.id).values(disabled=disabled))
    if disabled:
        conn.execute(delete(sessions).where(sessions.c.user_id == user.id))


def find_user(conn: Connection, *, name: str) -> User | None:
    """The user with this name, or None."""
    if "\x00" in name:  # PostgreSQL text cannot hold NUL: no stored name has one
        return None
    row = conn.execute(select(users).where(users.c.name == name)).first()
    return _user(row) if row is not None else None


def list_users(conn: Connection) -> list[User]:
    """Every user, by name."""
    return [_user(r) for r in conn.execute(select(users).order_by(users.c.name)).all()]


def count_users(conn: Connection) -> int:
    """How many users exist."""
    return int(conn.execute(select(func.count()).select_from(users)).scalar_one())


def authenticate(conn: Connection, *, name: str, password: str, now: datetime) -> User | None:
    """The user if the password is right and the account enabled, else None."""
    row = (
        None if "\x00" in name else conn.execute(select(users).where(users.c.name == name)).first()
    )
    try:
        _hasher.verify(row.password_hash if row is not None else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row.disabled:
        return None
    conn.execute(update(users).where(users.c.id == row.id).values(last_login_at=now))
    return _user(row)


def start_session(conn: Connection, *, user: User, now: datetime) -> tuple[str, Session]:
    """A new session for a user: (the cookie value, the session)."""
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    conn.execute(
        insert(sessions).values(
            id_hash=digest(secret),
            user_id=user.id,
            csrf_token=csrf,
            created_at=now,
            last_seen_at=now,
        )
    )
    return secret, Session(digest(secret), user, csrf, now, now)


def find_session(
    conn: Connection, *, secret: str, now: datetime, idle_s: float, max_age_s: float
) -> Session | None:
    """The live session behind a cookie value; expired ones are deleted."""
    row = conn.execute(
        select(
            sessions.c.id_hash,
            sessions.c.csrf_token,
            sessions.c.created_at.label("session_created_at"),
            sessions.c.last_seen_at,
            *users.c,
        )
        .join(users, users.c.id == sessions.c.user_id)
        .where(sessions.c.id_hash == digest(secret))
    ).first()
    if row is None:
        return None
    expired = (
        row.last_seen_at < now - timedelta(seconds=idle_s)
        or row.session_created_at < now - timedelta(seconds=max_age_s)
        or row.disabled
    )
    if expired:
        conn.execute(delete(sessions).where(sessions.c.id_hash == row.id_hash))
        return None
    if row.last_seen_at < now - timedelta(seconds=60):  # one write a minute is enough
        conn.execute(
            update(sessions).where(sessions.c.id_hash == row.id_hash).values(last_seen_at=now)
        )
    return Session(
        row.id_hash, _user(row), row.csrf_token, row.session_created_at, row.last_seen_at
    )


def end_session(conn: Connection, *, id_hash: str) -> None:
    """Log a session out."""
    conn.execute(delete(sessions).where(sessions.c.id_hash == id_hash))


def create_token(conn: Connection, *, name: str, role: Role) -> tuple[str, Token]:
    """A new API token: (its secret, shown once; the token). A token acts under its
    name, so it may not take a console user's (ValueError)."""
    if find_user(conn, name=name) is not None:
        raise ValueError(
            f"a console user is named {name!r}, and a token acts under its name: pick "
            f"another token name (e.g. {name}-bot)"
        )
    secret = "wp_" + secrets.token_urlsafe(32)
    row = conn.execute(
        insert(api_tokens)
        .values(name=name, token_hash=digest(secret), role=role.value)
        .returning(*api_tokens.c)
    ).one()
    return secret, _token(row)


def _active_token_named(conn: Connection, name: str) -> bool:
    query = select(api_tokens.c.id).where(
        api_tokens.c.name == name, api_tokens.c.disabled.is_(False)
    )
    return conn.execute(query.limit(1)).first() is not None


def find_token(conn: Connection, *, secret: str, now: datetime) -> Token | None:
    """The enabled token with this secret, or None."""
    row = conn.execute(select(api_tokens).where(api_tokens.c.token_hash == digest(secret))).first()
    if row is None or row.disabled:
        return None
    if row.last_used_at is None or row.last_used_at < now - timedelta(seconds=60):
        conn.execute(update(api_tokens).where(api_tokens.c.id == row.id).values(last_used_at=now))
    return _token(row)


def list_tokens(conn: Connection) -> list[Token]:
    """Every API token (without secrets)."""
    return [_token(r) for r in conn.execute(select(api_tokens).order_by(api_tokens.c.id)).all()]


def disable_token(conn: Connection, *, token_id: int) -> None:
    """Revoke an API token (ValueError if there is no such token)."""
    revoked = conn.execute(
        update(api_tokens).where(api_tokens.c.id == token_id).values(disabled=True)
    )
    if revoked.rowcount == 0:
        raise ValueError(f"no token with id {token_id}; `waypost token ls` lists them")


def _user(row: Row[Any]) -> User:
    return User(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        disabled=row.disabled,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
    )


def _token(row: Row[Any]) -> Token:
    return Token(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        disabled=row.disabled,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )
