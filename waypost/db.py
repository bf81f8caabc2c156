"""The database engine: the only place Waypost creates one.

Every connection's ``search_path`` is the configured schema (then ``public``, where the
pgvector extension lives), so tests and installations can share one database.
"""

from __future__ import annotations

from typing import Any

import orjson
from psycopg.types.json import set_json_loads
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from waypost.errors import ConfigError


def normalize_url(url: str) -> str:
    """Use the psycopg 3 driver whatever form of PostgreSQL URL was given."""
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigError(
            f"WAYPOST_DATABASE_URL: {url!r} is not a database URL; "
            "expected postgresql://user:password@host:5432/dbname"
        ) from None
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(
            f"WAYPOST_DATABASE_URL: Waypost needs PostgreSQL, got {parsed.get_backend_name()!r}"
        )
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def make_engine(url: str, *, schema: str, pool_size: int = 5, app: str = "waypost") -> Engine:
    """An engine whose connections use ``schema`` (created lazily: nothing connects here)."""
    engine = create_engine(
        normalize_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        json_serializer=_dumps,
        connect_args={
            "options": f"-c search_path={schema},public",
            "application_name": app,
        },
    )
    event.listen(engine, "connect", _use_orjson)
    return engine


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _use_orjson(dbapi_connection: Any, _record: Any) -> None:
    # JSONB columns are parsed by psycopg; orjson is several times faster than json.
    set_json_loads(orjson.loads, dbapi_connection)


def ping(engine: Engine) -> bool:
    """True if the database answers."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True
