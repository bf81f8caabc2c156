"""Which playbook version decides for a workflow: the one that planned it."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable

from sqlalchemy import Connection

from orchestrator.errors import PlaybookError
from orchestrator.playbooks.loader import load_document
from orchestrator.playbooks.model import Playbook
from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.store import playbooks as stored
from orchestrator.workflow.state import WorkflowState

log = logging.getLogger(__name__)
_KEEP = 1024  # older versions and plans kept loaded (each LLM plan is a version of its own)


class PlaybookVersions:
    """Current playbooks plan new workflows; a running workflow keeps the version that
    planned it, loaded from the database if it has since changed."""

    def __init__(self, registry: PlaybookRegistry) -> None:
        self.registry = registry
        self._older: OrderedDict[str, Playbook] = OrderedDict()

    def for_state(self, conn: Connection, state: WorkflowState) -> Playbook | None:
        """The playbook that decides for ``state`` (None if there is none)."""
        digest = state.playbook_digest
        if digest is None:  # not planned yet: the current version will plan it
            return self.registry.get(state.type)
        current = self.registry.by_digest(digest)
        if current is not None:
            return current
        if digest in self._older:
            self._older.move_to_end(digest)
            return self._older[digest]
        found = self._load(conn, digest)
        if found is not None:  # a version not stored yet may be stored later
            self._keep(digest, found)
        return found

    def adopt(self, conn: Connection, playbook: Playbook) -> None:
        """Store the version a plan made, and keep it loaded: its workflow runs on it."""
        stored.remember(conn, playbook=playbook)
        self._keep(playbook.digest, playbook)

    def _keep(self, digest: str, playbook: Playbook) -> None:
        self._older[digest] = playbook
        self._older.move_to_end(digest)
        while len(self._older) > _KEEP:
            self._older.popitem(last=False)

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
