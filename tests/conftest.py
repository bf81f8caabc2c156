"""Shared fixtures: the real embedded broker and PostgreSQL that `waypost up` uses.

One broker and one PostgreSQL serve the whole session; every test gets its own topic
namespace, consumer groups and database schema, so tests never see each other's data.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, text

from waypost.db import make_engine
from waypost.migrate import upgrade
from waypost.settings import CommonSettings
from waypost.stack import pgfiles
from waypost.stack.broker import EmbeddedBroker, tansu_binary
from waypost.stack.postgres import EmbeddedPostgres
from waypost.stack.process import free_port

S = TypeVar("S", bound=CommonSettings)

# Short group timeouts: Tansu's JoinGroup waits about half the session timeout.
TEST_SESSION_TIMEOUT_MS = 2000


@pytest.fixture(scope="session")
def stack_dir() -> Iterator[Path]:
    """A data directory outside root's home (PostgreSQL runs as another user)."""
    path = Path(tempfile.mkdtemp(prefix="waypost-test-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(stack_dir: Path) -> Iterator[EmbeddedPostgres]:
    """The embedded PostgreSQL 16 + pgvector, started once per session."""
    with (stack_dir / "postgres.log").open("ab") as log:
        server = EmbeddedPostgres(stack_dir / "postgres", log)
        server.start()
        yield server
        server.stop()


@pytest.fixture(scope="session")
def broker(stack_dir: Path) -> Iterator[EmbeddedBroker]:
    """The embedded Tansu broker, started once per session."""
    with (stack_dir / "tansu.log").open("ab") as log:
        server = EmbeddedBroker(tansu_binary(None), free_port(), log)
        server.start()
        yield server
        server.stop()


@pytest.fixture
def own_broker() -> Iterator[EmbeddedBroker]:
    """A broker of this test's own, to kill or restart (the session's is shared)."""
    server = EmbeddedBroker(tansu_binary(None), free_port(), None)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_postgres() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of this test's own, to restart or kill (the session's is shared)."""
    path = Path(tempfile.mkdtemp(prefix="waypost-own-pg-", dir="/tmp"))
    path.chmod(0o755)  # PostgreSQL runs as another user when the tests run as root
    with (path / "postgres.log").open("ab") as log:
        server = EmbeddedPostgres(path / "postgres", log)
        server.start()
        yield server
        server.stop()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def namespace() -> str:
    """A topic/group namespace no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class MigratedSchema:
    """The DDL of a schema the migrations built (its name in it is ``name``), and the
    revision they reached: replayed under another name, it is a migrated schema."""

    ddl: str
    name: str
    revision: str


@pytest.fixture(scope="session")
def migrated(postgres: EmbeddedPostgres) -> MigratedSchema:
    """The migrations run once per session into a template schema, dumped with pg_dump
    (tests/migrations checks the migrations themselves on fresh schemas)."""
    name = f"tpl_{uuid.uuid4().hex[:16]}"
    engine = make_engine(postgres.url(), schema=name, pool_size=1)
    try:
        revision = upgrade(engine, name)
        dump = subprocess.run(
            [
                str(pgfiles.wheel_install() / "bin" / "pg_dump"),
                "--schema-only",
                "--no-owner",
                "--no-privileges",
                f"--schema={name}",
                f"--dbname={postgres.url()}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
    finally:
        engine.dispose()
    # psql meta-commands (\\restrict) and session settings are not DDL of the schema.
    ddl = "\n".join(
        line
        for line in dump.splitlines()
        if not line.startswith("\\")
        and not line.startswith("SET ")
        and "set_config('search_path'" not in line
    )
    assert revision is not None
    return MigratedSchema(ddl, name, revision)


@pytest.fixture
def schema(postgres: EmbeddedPostgres, migrated: MigratedSchema) -> Iterator[str]:
    """A freshly migrated schema no other test uses (dropped afterwards): the session's
    migrated template replayed under the test's own name."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = make_engine(postgres.url(), schema=name, pool_size=1)
    with engine.begin() as connection:
        connection.exec_driver_sql(migrated.ddl.replace(migrated.name, name))
        connection.execute(
            text(f'INSERT INTO "{name}".alembic_version (version_num) VALUES (:revision)'),
            {"revision": migrated.revision},
        )
    yield name
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    engine.dispose()


@pytest.fixture
def engine(postgres: EmbeddedPostgres, schema: str) -> Iterator[Engine]:
    """An engine on this test's schema."""
    engine = make_engine(postgres.url(), schema=schema)
    yield engine
    engine.dispose()


@pytest.fixture
def make_settings(
    broker: EmbeddedBroker,
    postgres: EmbeddedPostgres,
    schema: str,
    namespace: str,
    stack_dir: Path,
) -> Callable[..., Any]:
    """Build any settings class pointed at this test's broker, database, schema, namespace."""

    def build(cls: type[S], **overrides: Any) -> S:
        values: dict[str, Any] = {
            "kafka_bootstrap": broker.bootstrap,
            "database_url": postgres.url(),
            "database_schema": schema,
            "namespace": namespace,
            "data_dir": stack_dir,
            "kafka_session_timeout_ms": TEST_SESSION_TIMEOUT_MS,
            **overrides,
        }
        return cls(**values)

    return build


class _HashOnce(PasswordHasher):
    """argon2id as the console stores passwords, but each password hashed once per test
    session: a hash takes ~150 ms, and the tests add the same few passwords to a fresh
    schema thousands of times. Verifying (logins, throttling's timing) is untouched."""

    def __init__(self) -> None:
        super().__init__()
        self._hashes: dict[str | bytes, str] = {}

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        if salt is not None:
            return super().hash(password, salt=salt)
        if password not in self._hashes:
            self._hashes[password] = super().hash(password)
        return self._hashes[password]


@pytest.fixture(scope="session", autouse=True)
def _hash_each_password_once() -> Iterator[None]:
    from review_ui.auth import store

    original = store._hasher
    store._hasher = _HashOnce()
    yield
    store._hasher = original
