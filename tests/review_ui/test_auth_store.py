"""Users, sessions and API tokens on the real PostgreSQL: what is stored (hashes only),
which passwords are refused, who authenticates, and when sessions end (controlled ``now``)."""

from __future__ import annotations

import hashlib
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Connection, Engine, select

from review_ui.auth import bootstrap
from review_ui.auth import store as auth_store
from review_ui.auth.roles import Role
from review_ui.auth.tables import api_tokens, sessions, users

pytestmark = pytest.mark.integration

T0 = datetime(2030, 6, 1, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
IDLE_S = 1800.0
MAX_AGE_S = 12 * 3600.0


def rows(conn: Connection, table: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(select(table)).all()]


def add(conn: Connection, name: str = "ada", role: Role = Role.REVIEWER) -> auth_store.User:
    return auth_store.add_user(conn, name=name, password=PASSWORD, role=role)


# --- passwords ------------------------------------------------------------------------------


def test_a_password_is_stored_as_an_argon2id_hash_only(engine: Engine) -> None:
    with engine.begin() as conn:
        user = add(conn)
        (row,) = rows(conn, users)

    assert (user.name, user.role, user.disabled, user.last_login_at) == (
        "ada",
        Role.REVIEWER,
        False,
        None,
    )
    assert row["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in str(row)
    assert PasswordHasher().verify(row["password_hash"], PASSWORD)


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("", "at least 12 characters"),
        ("short pass", "at least 12 characters"),
        ("elevenchars", "at least 12 characters"),
        ("PasswordPassword", "well-known placeholder"),
        ("changemechangeme", "well-known placeholder"),
    ],
)
def test_weak_passwords_are_refused(engine: Engine, password: str, problem: str) -> None:
    with engine.begin() as conn:
        with pytest.raises(ValueError, match=f"password refused: .*{problem}"):
            auth_store.add_user(conn, name="ada", password=password, role=Role.ADMIN)
        add(conn, "bob")
        with pytest.raises(ValueError, match=problem):
            auth_store.set_password(conn, name="bob", password=password)
        assert auth_store.count_users(conn) == 1
    assert auth_store.password_problem("twelve chars") is None


def test_a_name_is_used_once(engine: Engine) -> None:
    with engine.begin() as conn:
        add(conn)
        with pytest.raises(ValueError, match="a user named 'ada' already exists"):
            add(conn, role=Role.ADMIN)
        with pytest.raises(ValueError, match="no user named 'nobody'"):
            auth_store.set_password(conn, name="nobody", password=PASSWORD)
        with pytest.raises(ValueError, match="no user named 'nobody'"):
            auth_store.disable_user(conn, name="nobody")


# --- authentication -------------------------------------------------------------------------


def test_the_right_password_authenticates_and_records_the_login(engine: Engine) -> None:
    with engine.begin() as conn:
        add(conn)
        user = auth_store.authenticate(conn, name="ada", password=PASSWORD, now=T0)
        found = auth_store.find_user(conn, name="ada")

    assert user is not None
    assert user.name == "ada"
    assert found is not None
    assert found.last_login_at == T0


def test_a_wrong_password_an_unknown_user_and_a_disabled_user_do_not_authenticate(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        add(conn)
        add(conn, "bob")
        auth_store.disable_user(conn, name="bob")

        assert auth_store.authenticate(conn, name="ada", password="wrong password!", now=T0) is None
        assert auth_store.authenticate(conn, name="ada", password=PASSWORD.upper(), now=T0) is None
        assert auth_store.authenticate(conn, name="nobody", password=PASSWORD, now=T0) is None
        assert auth_store.authenticate(conn, name="bob", password=PASSWORD, now=T0) is None
        assert auth_store.find_user(conn, name="ada").last_login_at is None  # type: ignore[union-attr]


def test_a_new_password_replaces_the_old_and_ends_the_sessions(engine: Engine) -> None:
    with engine.begin() as conn:
        user = add(conn)
        secret, _ = auth_store.start_session(conn, user=user, now=T0)

        auth_store.set_password(conn, name="ada", password="a brand new passphrase")

        assert auth_store.authenticate(conn, name="ada", password=PASSWORD, now=T0) is None
        assert auth_store.authenticate(conn, name="ada", password="a brand new passphrase", now=T0)
        assert (
            auth_store.find_session(conn, secret=secret, now=T0, idle_s=IDLE_S, max_age_s=MAX_AGE_S)
            is None
        )


def test_users_are_listed_by_name(engine: Engine) -> None:
    with engine.begin() as conn:
        add(conn, "zoe", Role.ANALYST)
        add(conn, "ada", Role.ADMIN)
        listed = auth_store.list_users(conn)

    assert [(u.name, u.role) for u in listed] == [("ada", Role.ADMIN), ("zoe", Role.ANALYST)]


# --- sessions -------------------------------------------------------------------------------


def find(conn: Connection, secret: str, now: datetime) -> auth_store.Session | None:
    return auth_store.find_session(conn, secret=secret, now=now, idle_s=IDLE_S, max_age_s=MAX_AGE_S)


def test_a_session_id_is_stored_only_as_its_sha256(engine: Engine) -> None:
    with engine.begin() as conn:
        user = add(conn)
        secret, session = auth_store.start_session(conn, user=user, now=T0)
        other, _ = auth_store.start_session(conn, user=user, now=T0)
        stored = rows(conn, sessions)

    assert secret != other
    assert len(secret) >= 40
    assert session.id_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert {r["id_hash"] for r in stored} == {session.id_hash, auth_store.digest(other)}
    assert all(secret not in str(r) for r in stored)
    assert session.csrf_token
    assert session.csrf_token != secret


def test_a_session_lives_while_used_and_ends_after_the_idle_timeout(engine: Engine) -> None:
    with engine.begin() as conn:
        user = add(conn)
        secret, _ = auth_store.start_session(conn, user=user, now=T0)

        at_limit = find(conn, secret, T0 + timedelta(seconds=IDLE_S))
        assert at_limit is not None
        assert at_limit.user.name == "ada"
        # That use moved last_seen forward: another idle period from now on.
        later = T0 + timedelta(seconds=IDLE_S * 1.9)
        assert find(conn, secret, later) is not None
        expired = find(conn, secret, later + timedelta(seconds=IDLE_S + 1))

        assert expired is None
        assert rows(conn, sessions) == []  # deleted, not just refused
        assert find(conn, secret, later) is None


def test_last_seen_is_written_at_most_once_a_minute(engine: Engine) -> None:
    with engine.begin() as conn:
        user = add(conn)
        secret, _ = auth_store.start_session(conn, user=user, now=T0)

        find(conn, secret, T0 + timedelta(seconds=59))
        assert rows(conn, sessions)[0]["last_seen_at"] == T0
        find(conn, secret, T0 + timedelta(seconds=61))
        assert rows(conn, sessions)[0]["last_seen_at"] == T0 + timedelta(seconds=61)


def test_a_session_ends_at_its_maximum_age_however_busy(engine: Engine) -> None:
    with engine.begin() as conn:
        user = add(conn)
        secret, _ = auth_store.start_session(conn, user=user, now=T0)
        moment = T0
        while moment < T0 + timedelta(seconds=MAX_AGE_S):
            assert find(conn, secret, moment) is not None
            moment += timedelta(seconds=IDLE_S / 2)

        assert find(conn, secret, T0 + timedelta(seconds=MAX_AGE_S + 1)) is None
        assert rows(conn, sessions) == []


def test_disabling_a_user_ends_their_sessions_and_logout_ends_one(engine: Engine) -> None:
    with engine.begin() as conn:
        ada, bob = add(conn), add(conn, "bob")
        ada_secret, _ = auth_store.start_session(conn, user=ada, now=T0)
        bob_secret, bob_session = auth_store.start_session(conn, user=bob, now=T0)

        auth_store.disable_user(conn, name="ada")
        auth_store.end_session(conn, id_hash=bob_session.id_hash)

        assert find(conn, ada_secret, T0) is None
        assert find(conn, bob_secret, T0) is None
        assert find(conn, "never issued", T0) is None
        assert auth_store.find_user(conn, name="ada").disabled  # type: ignore[union-attr]


# --- API tokens -----------------------------------------------------------------------------


def test_a_token_is_stored_only_as_its_sha256(engine: Engine) -> None:
    with engine.begin() as conn:
        secret, token = auth_store.create_token(conn, name="ci", role=Role.ANALYST)
        (row,) = rows(conn, api_tokens)

    assert secret.startswith("wp_")
    assert len(secret) > 40
    assert row["token_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(row)
    assert (token.name, token.role, token.disabled, token.last_used_at) == (
        "ci",
        Role.ANALYST,
        False,
        None,
    )


def test_a_token_authenticates_until_revoked(engine: Engine) -> None:
    with engine.begin() as conn:
        secret, token = auth_store.create_token(conn, name="ci", role=Role.REVIEWER)
        _, other = auth_store.create_token(conn, name="other", role=Role.ADMIN)

        found = auth_store.find_token(conn, secret=secret, now=T0)
        auth_store.disable_token(conn, token_id=token.id)
        revoked = auth_store.find_token(conn, secret=secret, now=T0)
        listed = auth_store.list_tokens(conn)

    assert found is not None
    assert (found.id, found.role) == (token.id, Role.REVIEWER)
    assert revoked is None
    assert [(t.id, t.disabled) for t in listed] == [(token.id, True), (other.id, False)]
    assert listed[0].last_used_at == T0


def test_an_unknown_token_finds_nothing(engine: Engine) -> None:
    with engine.begin() as conn:
        auth_store.create_token(conn, name="ci", role=Role.REVIEWER)

        assert auth_store.find_token(conn, secret="wp_guess", now=T0) is None
        assert auth_store.find_token(conn, secret="", now=T0) is None


# --- first start ----------------------------------------------------------------------------


def test_the_first_start_creates_an_admin_once(engine: Engine) -> None:
    generated = bootstrap.ensure_admin(engine, password=None)
    again = bootstrap.ensure_admin(engine, password="another long password")

    assert generated is not None
    assert again is None
    with engine.begin() as conn:
        admin = auth_store.authenticate(conn, name="admin", password=generated, now=T0)
        assert auth_store.count_users(conn) == 1
    assert admin is not None
    assert admin.role is Role.ADMIN


def test_the_cli_token_is_kept_private_and_replaced_once_revoked(
    engine: Engine, tmp_path: Path
) -> None:
    first = bootstrap.ensure_cli_token(engine, tmp_path)
    same = bootstrap.ensure_cli_token(engine, tmp_path)
    path = tmp_path / bootstrap.CLI_TOKEN_FILE

    assert same == first == bootstrap.read_cli_token(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with engine.begin() as conn:
        (token,) = auth_store.list_tokens(conn)
        assert token.role is Role.ADMIN
        auth_store.disable_token(conn, token_id=token.id)

    replaced = bootstrap.ensure_cli_token(engine, tmp_path)

    assert replaced != first
    with engine.begin() as conn:
        assert auth_store.find_token(conn, secret=replaced, now=T0) is not None
    assert bootstrap.read_cli_token(tmp_path / "missing") is None


def test_a_token_may_not_take_a_users_name_nor_a_user_a_live_tokens(engine: Engine) -> None:
    """A token acts under its name: sharing one with a user would let it act as them."""
    with engine.begin() as conn:
        add(conn, "rita")
        with pytest.raises(ValueError, match="a console user is named 'rita'"):
            auth_store.create_token(conn, name="rita", role=Role.ADMIN)
        _, bot = auth_store.create_token(conn, name="ci-bot", role=Role.REVIEWER)
        with pytest.raises(ValueError, match="an API token is named 'ci-bot'"):
            add(conn, "ci-bot")
        auth_store.disable_token(conn, token_id=bot.id)
        assert add(conn, "ci-bot").name == "ci-bot"  # a revoked token's name is free
