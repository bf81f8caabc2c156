"""First start of an installation: an admin to log in with, and a token for the CLI."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sqlalchemy import Engine

from review_ui.auth import store
from review_ui.auth.roles import Role
from waypost.events import utcnow

ADMIN = "admin"
CLI_TOKEN_FILE = "api-token"  # noqa: S105 - a file name, not a secret


def ensure_admin(engine: Engine, *, password: str | None) -> str | None:
    """Create the ``admin`` user if there are no users; returns a generated password
    (to show once), or None if one was given or users already exist."""
    with engine.begin() as conn:
        if store.count_users(conn):
            return None
        generated = None if password else secrets.token_urlsafe(12)
        store.add_user(conn, name=ADMIN, password=password or generated or "", role=Role.ADMIN)
        return generated


def ensure_cli_token(engine: Engine, data_dir: Path) -> str:
    """The admin token the CLI uses against this stack, created on first start and kept
    (readable by its owner only) in the data directory."""
    path = data_dir / CLI_TOKEN_FILE
    with engine.begin() as conn:
        if path.exists():
            secret = path.read_text().strip()
            if store.find_token(conn, secret=secret, now=utcnow()) is not None:
                return secret
        secret, _ = store.create_token(conn, name="waypost-cli", role=Role.ADMIN)
    path.touch(mode=0o600)
    os.chmod(path, 0o600)
    path.write_text(secret + "\n")
    return secret


def read_cli_token(data_dir: Path) -> str | None:
    """The stack's CLI token, if it has one."""
    try:
        return (data_dir / CLI_TOKEN_FILE).read_text().strip() or None
    except OSError:
        return None
