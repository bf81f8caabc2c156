"""The HTTP app's own tables: users, sessions, API tokens and login throttling (Alembic
creates them)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False, unique=True),
    Column("password_hash", Text, nullable=False, comment="argon2id"),
    Column("role", Text, nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("last_login_at", DateTime(timezone=True)),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", Text, primary_key=True, comment="SHA-256 of the cookie value"),
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Index("sessions_user", "user_id"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("token_hash", Text, nullable=False, unique=True, comment="SHA-256 of the token"),
    Column("role", Text, nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("last_used_at", DateTime(timezone=True)),
)

_TS = DateTime(timezone=True)

login_throttle = Table(
    "login_throttle",
    metadata,
    Column("scope", Text, primary_key=True, comment="name | client"),
    Column(
        "key",
        Text,
        primary_key=True,
        comment="the name as typed (whether a user has it or not), or the client address",
    ),
    Column(
        "failures",
        ARRAY(_TS),
        nullable=False,
        server_default=text("'{}'"),
        comment="failed attempts (and attempts being checked) in the window, oldest first",
    ),
    Column("last_failure_at", _TS, comment="the newest of failures (for pruning)"),
    Column("locked_at", _TS),
    Column("locked_until", _TS, comment="every attempt is refused until then"),
    CheckConstraint("scope IN ('name', 'client')", name="login_throttle_scope"),
    Index("login_throttle_last_failure", "last_failure_at"),
    Index("login_throttle_locked_until", "locked_until"),
)
