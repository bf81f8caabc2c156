"""Stored playbook versions: every workflow keeps running on the version that planned it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert

from orchestrator.playbooks.model import Playbook
from orchestrator.store.tables import playbook_versions


def remember(conn: Connection, *, playbook: Playbook) -> None:
    """Store a playbook version (once; later calls change nothing)."""
    conn.execute(
        insert(playbook_versions)
        .values(
            digest=playbook.digest,
            type=playbook.type,
            version=playbook.version,
            document=dict(playbook.document),
            source=playbook.source,
        )
        .on_conflict_do_nothing(index_elements=["digest"])
    )


def document(conn: Connection, *, digest: str) -> tuple[Mapping[str, Any], str] | None:
    """A stored version's document and where it was loaded from, or None."""
    row = conn.execute(
        select(playbook_versions.c.document, playbook_versions.c.source).where(
            playbook_versions.c.digest == digest
        )
    ).first()
    return (row.document, row.source) if row is not None else None
