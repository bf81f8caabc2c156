"""First start of an installation: an admin to log in with, and a token for the CLI.

``prepare`` is the console's ``waypost.bootstrap`` provider (see ``waypost.plugins``):
``waypost up`` calls it once the migrations ran.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sqlalchemy import Engine

from review_ui.auth import store
from review_ui.auth.roles import Role
from waypost.endpoints import CLI_TOKEN_FILE, cli_token_path, read_cli_token
from waypost.events import utcnow
from waypost.plugins import FreshDatabase, Prepared

__all__ = [
    "ADMIN",
    "CLI_TOKEN_FILE",
    "ensure_admin",
    "ensure_cli_token",
    "prepare",
    "read_cli_token",
]

ADMIN = "admin"


def prepare(database: FreshDatabase) -> Prepared:
    """Create the first admin (when there are no users) and the CLI's token; say how to
    log in."""
    settings = database.settings
    given = settings.admin_password.get_secret_value() if settings.admin_password else None
    generated = ensure_admin(database.engine, password=given)
    token = ensure_cli_token(database.engine, database.data_dir)
    if generated is not None:
        login = f"{ADMIN} / {generated}  (shown once: change it with `waypost user passwd admin`)"
    elif given is not None:
        login = f"{ADMIN} / the password in WAYPOST_ADMIN_PASSWORD (first start only)"
    else:
        login = "your console users (`waypost user ls`; `waypost user passwd NAME` resets one)"
    return Prepared(login=login, api_token=token)


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
    (readable by its owner only) in the data directory, where the CLI reads it
    (``waypost.endpoints.read_cli_token``)."""
    path = cli_token_path(data_dir)
    with engine.begin() as conn:
        secret = read_cli_token(data_dir)
        if secret is not None and store.find_token(conn, secret=secret, now=utcnow()) is not None:
            return secret
        secret, _ = store.create_token(conn, name="waypost-cli", role=Role.ADMIN)
    path.touch(mode=0o600)
    os.chmod(path, 0o600)
    path.write_text(secret + "\n")
    return secret
