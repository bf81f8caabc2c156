"""`waypost user ...` and `waypost token ...` against the real PostgreSQL (the schema of
the test, through WAYPOST_DATABASE_URL and WAYPOST_DATABASE_SCHEMA)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.store import audit
from review_ui.app import create_app
from review_ui.auth import store as auth_store
from review_ui.auth import throttle_store
from review_ui.auth.roles import Role
from review_ui.auth.throttle import Scope, name_key, policies
from waypost.bus.kafka import KafkaBus
from waypost.cli.main import main
from waypost.events import utcnow
from waypost.settings import HttpSettings
from waypost.stack.broker import EmbeddedBroker
from waypost.stack.postgres import EmbeddedPostgres

pytestmark = pytest.mark.integration

PASSWORD = "a long enough passphrase"


@pytest.fixture
def waypost(postgres: EmbeddedPostgres, schema: str, tmp_path: Path) -> Callable[..., Result]:
    """Run a `waypost` command on this test's schema (no running stack to fall back on)."""
    env = {
        "WAYPOST_DATABASE_URL": postgres.url(),
        "WAYPOST_DATABASE_SCHEMA": schema,
        "WAYPOST_DATA_DIR": str(tmp_path),
    }

    def run(*args: str, stdin: str | None = None) -> Result:
        return CliRunner(env=env).invoke(main, list(args), input=stdin)

    return run


@pytest.fixture
def client(
    make_settings: Callable[..., Any], engine: Engine, broker: EmbeddedBroker
) -> Iterator[TestClient]:
    """The HTTP app on the same schema, without credentials of its own."""
    settings: HttpSettings = make_settings(HttpSettings)
    app = create_app(
        settings,
        engine=engine,
        admin=KafkaBus(broker.bootstrap, settings).admin(),
        playbooks=PlaybookRegistry.load(),
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def authenticates(engine: Engine, name: str, password: str) -> bool:
    with engine.begin() as conn:
        return auth_store.authenticate(conn, name=name, password=password, now=utcnow()) is not None


# --- users ----------------------------------------------------------------------------------


def test_user_add_reads_the_password_from_stdin(
    waypost: Callable[..., Result], engine: Engine
) -> None:
    result = waypost(
        "user", "add", "alice", "--role", "reviewer", "--password-stdin", stdin=PASSWORD + "\n"
    )

    assert result.exit_code == 0, result.output
    assert result.stdout == "added alice (reviewer)\n"
    assert authenticates(engine, "alice", PASSWORD)
    with engine.begin() as conn:
        user = auth_store.find_user(conn, name="alice")
    assert user is not None
    assert user.role is Role.REVIEWER


def test_user_add_prompts_for_the_password_twice(
    waypost: Callable[..., Result], engine: Engine
) -> None:
    result = waypost("user", "add", "bob", "--role", "admin", stdin=f"{PASSWORD}\n{PASSWORD}\n")

    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # the prompt does not echo it
    assert authenticates(engine, "bob", PASSWORD)


def test_user_add_refuses_weak_passwords_taken_names_and_unknown_roles(
    waypost: Callable[..., Result], engine: Engine
) -> None:
    weak = waypost(
        "user", "add", "alice", "--role", "reviewer", "--password-stdin", stdin="short\n"
    )
    waypost("user", "add", "alice", "--role", "reviewer", "--password-stdin", stdin=PASSWORD)
    taken = waypost("user", "add", "alice", "--role", "admin", "--password-stdin", stdin=PASSWORD)
    role = waypost("user", "add", "carol", "--role", "owner", "--password-stdin", stdin=PASSWORD)

    assert weak.exit_code == 1
    assert "password refused: use at least 12 characters" in weak.output
    assert taken.exit_code == 1
    assert "a user named 'alice' already exists" in taken.output
    assert role.exit_code == 2
    assert "'owner' is not one of" in role.output
    with engine.begin() as conn:
        assert [u.name for u in auth_store.list_users(conn)] == ["alice"]


def test_user_ls_lists_users_and_their_state(
    waypost: Callable[..., Result], engine: Engine
) -> None:
    assert waypost("user", "ls").stdout == "no users\n"
    waypost("user", "add", "zoe", "--role", "analyst", "--password-stdin", stdin=PASSWORD)
    waypost("user", "add", "alice", "--role", "reviewer", "--password-stdin", stdin=PASSWORD)
    authenticates(engine, "alice", PASSWORD)

    result = waypost("user", "ls")

    assert result.exit_code == 0, result.output
    alice, zoe = result.stdout.splitlines()
    assert alice.split()[:4] == ["alice", "reviewer", "active", "last"]
    assert "never" not in alice
    assert zoe.split() == ["zoe", "analyst", "active", "last", "login", "never"]


def test_user_disable_stops_logins(waypost: Callable[..., Result], engine: Engine) -> None:
    waypost("user", "add", "alice", "--role", "reviewer", "--password-stdin", stdin=PASSWORD)

    result = waypost("user", "disable", "alice")
    unknown = waypost("user", "disable", "nobody")

    assert result.exit_code == 0, result.output
    assert result.stdout == "disabled alice\n"
    assert not authenticates(engine, "alice", PASSWORD)
    assert "disabled" in waypost("user", "ls").stdout
    assert unknown.exit_code == 1
    assert "no user named 'nobody'" in unknown.output


def test_user_enable_lets_a_disabled_user_log_in_again(
    waypost: Callable[..., Result], engine: Engine
) -> None:
    waypost("user", "add", "alice", "--role", "reviewer", "--password-stdin", stdin=PASSWORD)
    waypost("user", "disable", "alice")

    result = waypost("user", "enable", "alice")
    unknown = waypost("user", "enable", "nobody")

    assert result.exit_code == 0, result.output
    assert result.stdout == "enabled alice\n"
    assert authenticates(engine, "alice", PASSWORD)
    assert "active" in waypost("user", "ls").stdout
    assert unknown.exit_code == 1
    assert "no user named 'nobody'" in unknown.output


def test_user_passwd_changes_the_password(waypost: Callable[..., Result], engine: Engine) -> None:
    waypost("user", "add", "alice", "--role", "reviewer", "--password-stdin", stdin=PASSWORD)
    new = "another long passphrase"

    result = waypost("user", "passwd", "alice", "--password-stdin", stdin=new + "\n")
    weak = waypost("user", "passwd", "alice", "--password-stdin", stdin="weak\n")

    assert result.exit_code == 0, result.output
    assert result.stdout == "password of alice changed\n"
    assert authenticates(engine, "alice", new)
    assert not authenticates(engine, "alice", PASSWORD)
    assert weak.exit_code == 1
    assert authenticates(engine, "alice", new)


# --- tokens ---------------------------------------------------------------------------------


def test_token_create_prints_a_token_that_authenticates_until_revoked(
    waypost: Callable[..., Result], client: TestClient
) -> None:
    created = waypost("token", "create", "--role", "analyst", "--name", "ci")

    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert created.stdout == secret + "\n"  # only the secret on stdout, for scripts
    assert secret.startswith("wp_")
    assert "token 1 (ci, analyst): keep it safe" in created.stderr
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/escalations", headers=headers).status_code == 200
    # An analyst may read, not submit goals.
    assert (
        client.post("/api/v1/goals", headers=headers, json={"type": "x", "input": {}}).status_code
        == 403
    )

    listed = waypost("token", "ls")
    revoked = waypost("token", "revoke", "1")
    relisted = waypost("token", "ls")

    assert listed.stdout.split()[:4] == ["1", "ci", "analyst", "active"]
    assert secret not in listed.stdout
    assert revoked.exit_code == 0, revoked.output
    assert revoked.stdout == "revoked token 1\n"
    assert relisted.stdout.split()[:4] == ["1", "ci", "analyst", "revoked"]
    assert client.get("/api/v1/escalations", headers=headers).status_code == 401


def test_token_create_needs_a_known_role(waypost: Callable[..., Result]) -> None:
    result = waypost("token", "create", "--role", "root")

    assert result.exit_code == 2
    assert waypost("token", "ls").stdout == ""


def test_without_a_database_the_commands_say_how_to_find_one(tmp_path: Path) -> None:
    result = CliRunner(
        env={"WAYPOST_DATA_DIR": str(tmp_path), "WAYPOST_DATABASE_URL": None}
    ).invoke(main, ["user", "ls"])

    assert result.exit_code == 2  # a configuration error
    assert "no running Waypost stack found" in result.output
    assert "WAYPOST_DATABASE_URL" in result.output


def test_token_revoke_of_an_unknown_id_fails_instead_of_claiming_success(
    waypost: Callable[..., Result],
) -> None:
    # A mistyped id must not leave the operator believing the token they meant is revoked
    # (as `user disable` of an unknown name fails).
    waypost("token", "create", "--role", "admin", "--name", "ci")

    result = waypost("token", "revoke", "999")

    assert result.exit_code != 0
    assert "revoked token 999" not in result.stdout
    assert "999" in result.output
    assert waypost("token", "ls").stdout.split()[3] == "active"


def test_changes_made_from_the_command_line_are_audited(
    waypost: Callable[..., Result], engine: Engine
) -> None:
    from orchestrator.store import audit

    assert (
        waypost(
            "user", "add", "rob", "--role", "reviewer", "--password-stdin", stdin=PASSWORD
        ).exit_code
        == 0
    )
    assert waypost("user", "passwd", "rob", "--password-stdin", stdin=PASSWORD + "!").exit_code == 0
    assert waypost("user", "disable", "rob").exit_code == 0
    assert waypost("user", "enable", "rob").exit_code == 0
    created = waypost("token", "create", "--role", "analyst", "--name", "etl")
    assert created.exit_code == 0
    refused = waypost("token", "create", "--role", "admin", "--name", "rob")

    assert refused.exit_code == 1
    assert "a console user is named 'rob'" in refused.output
    with engine.connect() as conn:
        entries = list(reversed(audit.recent(conn)))
    assert [(e.action, dict(e.detail).get("name")) for e in entries] == [
        ("user_added", "rob"),
        ("password_changed", "rob"),
        ("user_disabled", "rob"),
        ("user_enabled", "rob"),
        ("token_created", "etl"),
    ]
    assert all(e.actor.startswith("cli:") for e in entries)


def test_user_unlock_lifts_a_login_lock_and_is_audited(
    waypost: Callable[..., Result], engine: Engine
) -> None:
    rules = policies(HttpSettings())
    now = utcnow()
    with engine.begin() as conn:
        for n in range(rules.name.lock_after):
            throttle_store.record_failure(
                conn,
                scope=Scope.NAME,
                key=name_key("alice"),
                now=now + timedelta(seconds=n),
                policies=rules,
                detail={"via": "test"},
            )
        locked = now + timedelta(seconds=rules.name.lock_after)
        assert [c.key for c in throttle_store.locks(conn, now=locked)] == ["alice"]

    result = waypost("user", "unlock", "alice")
    again = waypost("user", "unlock", "alice")

    assert result.exit_code == 0, result.output
    assert result.stdout == "unlocked alice\n"
    assert again.stdout == "alice was not locked\n"
    with engine.connect() as conn:
        assert throttle_store.locks(conn, now=utcnow()) == []
        unlocked = [e for e in audit.recent(conn, limit=10) if e.action == "login_unlocked"]
    assert len(unlocked) == 1
    assert unlocked[0].actor.startswith("cli:")
