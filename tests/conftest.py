"""Shared fixtures: the real embedded broker and PostgreSQL that `waypost up` uses.

One broker and one PostgreSQL serve the whole session; every test gets its own topic
namespace, consumer groups and database schema, so tests never see each other's data.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, text

from waypost.db import make_engine
from waypost.migrate import upgrade
from waypost.settings import CommonSettings
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


@pytest.fixture
def schema(postgres: EmbeddedPostgres) -> Iterator[str]:
    """A freshly migrated schema no other test uses (dropped afterwards)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = make_engine(postgres.url(), schema=name, pool_size=1)
    upgrade(engine, name)
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
