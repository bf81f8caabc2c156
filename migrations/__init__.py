"""Alembic migrations: the only way Waypost's database schema changes.

Run them with ``waypost migrate`` (``waypost up`` does it on start). Every table lives in
the schema named by ``WAYPOST_DATABASE_SCHEMA``; the pgvector extension in ``public``.
"""
