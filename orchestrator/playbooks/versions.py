"""Which playbook version decides for a workflow: the one that planned it."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import Connection

from orchestrator.errors import PlaybookError
from orchestrator.playbooks.loader import load_document
from orchestrator.playbooks.model import Playbook
from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.store import playbooks as stored
from orchestrator.workflow.state import WorkflowState

log = logging.getLogger(__name__)


class PlaybookVersions:
    """Current playbooks plan new workflows; a running workflow keeps the version that
    planned it, loaded from the database if it has since changed."""

    def __init__(self, registry: PlaybookRegistry) -> None:
        self.registry = registry
        self._older: dict[str, Playbook | None] = {}

    def for_state(self, conn: Connection, state: WorkflowState) -> Playbook | None:
        """The playbook that decides for ``state`` (None if there is none)."""
        digest = state.playbook_digest
        if digest is None:  # not planned yet: the current version will plan it
            return self.registry.get(state.type)
        current = self.registry.by_digest(digest)
        if current is not None:
            return current
        if digest not in self._older:
            self._older[digest] = self._load(conn, digest)
        return self._older[digest]

    def remember(self, conn: Connection, playbooks: Iterable[Playbook]) -> None:
        """Store the versions that planned workflows in this transaction."""
        for playbook in {p.digest: p for p in playbooks if p.digest}.values():
            stored.remember(conn, playbook=playbook)

    def _load(self, conn: Connection, digest: str) -> Playbook | None:
        found = stored.document(conn, digest=digest)
        if found is None:
            log.error("playbook version %s is not stored; its workflows cannot progress", digest)
            return None
        document, source = found
        try:
            return load_document(document, source=f"{source} (stored version {digest[:12]})")
        except PlaybookError as exc:
            log.error("stored playbook version %s no longer loads: %s", digest, exc)
            return None
