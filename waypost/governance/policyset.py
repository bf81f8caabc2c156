"""The policies of some directories, re-read while the process runs.

``PolicySet.current()`` hands out an immutable ``Policies`` snapshot. At most every
``check_interval_s`` (and on ``reload()``) it looks at the files again: a file whose
modification time, size or inode changed is read, and if its bytes changed it is
parsed and validated. A valid file replaces its previous version; an invalid one is
logged with its file, fields and lines, and its last good version stays in force. A
deleted file's policy is dropped; a directory that disappeared keeps its policies
(an unmounted volume should not switch governance off) and is logged.

Thread-safe: one thread reloads while the others keep using the previous snapshot.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from waypost.governance.engine import Policies
from waypost.governance.errors import InvalidPolicies, PolicyError, Problem
from waypost.governance.loader import load_text
from waypost.governance.model import Policy
from waypost.yamlfile import Stat, stat_of, unchanged_since_read

log = logging.getLogger("waypost.governance")

_Stat = Stat


@dataclass(frozen=True, slots=True)
class Reload:
    """What one look at the files changed."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    failed: tuple[PolicyError, ...] = ()

    @property
    def changed_anything(self) -> bool:
        """True when the policies in force changed."""
        return bool(self.added or self.changed or self.removed)


@dataclass(slots=True)
class _File:
    stat: _Stat
    content: str  # SHA-256 of the bytes last read
    policy: Policy | None  # the last good version (None: never valid)
    error: PolicyError | None = None
    read_at_ns: int = 0  # wall clock when the bytes were read

    def unchanged(self, stat: _Stat) -> bool:
        """True if ``stat`` proves the file unchanged since it was read (if not, it is
        read again and compared by digest)."""
        return unchanged_since_read(self.stat, self.read_at_ns, stat)


@dataclass(slots=True)
class _State:
    files: dict[Path, _File] = field(default_factory=dict)
    missing: set[Path] = field(default_factory=set)  # directories, logged once


class PolicySet:
    """Policies loaded from directories, reloaded without a restart when files change."""

    def __init__(
        self,
        directories: Sequence[Path],
        *,
        check_interval_s: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Load every policy file; raise ``InvalidPolicies`` if any is invalid."""
        self.directories = tuple(directories)
        self.check_interval_s = check_interval_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._state = _State()
        self._snapshot = Policies()
        for directory in self.directories:
            if not directory.is_dir():
                raise InvalidPolicies(
                    [PolicyError(str(directory), [Problem("(directory)", "is not a directory")])]
                )
        report = self._reload()
        if report.failed:
            raise InvalidPolicies(list(report.failed))
        self._checked_at = monotonic()

    def current(self) -> Policies:
        """The policies in force (looking at the files first if the interval passed)."""
        if self._monotonic() - self._checked_at >= self.check_interval_s and self._lock.acquire(
            blocking=False
        ):
            try:
                self._reload()
            finally:
                self._checked_at = self._monotonic()
                self._lock.release()
        return self._snapshot

    def reload(self) -> Reload:
        """Look at the files now (for example on SIGHUP); say what changed."""
        with self._lock:
            try:
                return self._reload()
            finally:
                self._checked_at = self._monotonic()

    @property
    def errors(self) -> list[PolicyError]:
        """The files that are invalid right now (their last good version, if any, is used)."""
        with self._lock:
            return [f.error for f in self._state.files.values() if f.error is not None]

    def _reload(self) -> Reload:
        files = self._state.files
        seen: dict[Path, _Stat] = {}
        kept: set[Path] = set()  # the files of directories that went missing
        for directory in self.directories:
            if not directory.is_dir():
                if directory not in self._state.missing:
                    log.error("policy directory %s is missing; keeping its policies", directory)
                    self._state.missing.add(directory)
                kept.update(path for path in files if path.parent == directory)
                continue
            if directory in self._state.missing:
                log.info("policy directory %s is back", directory)
                self._state.missing.discard(directory)
            for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
                stat = stat_of(path)
                if stat is not None:  # else deleted since the glob
                    seen[path] = stat
        added: list[str] = []
        changed: list[str] = []
        failed: list[PolicyError] = []
        gone = [path for path in files if path not in seen and path not in kept]
        removed = [str(path) for path in gone]
        for path in gone:
            del files[path]
        for path, stat in seen.items():
            known = files.get(path)
            if known is not None and known.unchanged(stat):
                if known.error is not None:
                    failed.append(known.error)
                continue
            outcome = self._read(path, stat, known, taken=self._names(files, path))
            files[path] = outcome
            if outcome.error is not None:
                failed.append(outcome.error)
            elif known is None or known.policy is None:
                added.append(str(path))
            elif outcome.policy is not known.policy:
                changed.append(str(path))
        report = Reload(tuple(added), tuple(changed), tuple(removed), tuple(failed))
        if report.changed_anything:
            policies = [f.policy for _, f in sorted(files.items()) if f.policy is not None]
            self._snapshot = Policies(tuple(policies))
            for name in removed:
                log.info("policy file %s was removed; its policy no longer applies", name)
        return report

    def _read(self, path: Path, stat: _Stat, known: _File | None, *, taken: set[str]) -> _File:
        read_at_ns = time.time_ns()
        try:
            data = path.read_bytes()
        except OSError as exc:
            error = PolicyError(str(path), [Problem("(file)", f"cannot be read: {exc}")])
            return self._failed(path, stat, known, error, "", read_at_ns)
        content = hashlib.sha256(data).hexdigest()
        if known is not None and known.content == content:  # touched, not changed
            return _File(stat, content, known.policy, known.error, read_at_ns)
        try:
            policy = load_text(data.decode("utf-8"), source=str(path), default_name=path.stem)
        except UnicodeDecodeError as exc:
            error = PolicyError(str(path), [Problem("(file)", f"is not UTF-8: {exc}")])
            return self._failed(path, stat, known, error, content, read_at_ns)
        except PolicyError as invalid:
            return self._failed(path, stat, known, invalid, content, read_at_ns)
        if policy.name in taken:
            problem = Problem("name", f"policy name {policy.name!r} is used by another file")
            clash = PolicyError(str(path), [problem])
            return self._failed(path, stat, known, clash, content, read_at_ns)
        log.info(
            "policy %r version %d loaded from %s (digest %s)",
            policy.name,
            policy.version,
            path,
            policy.digest[:12],
        )
        return _File(stat, content, policy, None, read_at_ns)

    @staticmethod
    def _failed(
        path: Path,
        stat: _Stat,
        known: _File | None,
        error: PolicyError,
        content: str,
        read_at_ns: int,
    ) -> _File:
        kept = known.policy if known is not None else None
        if kept is not None:
            log.error("%s\nkeeping version %d of policy %r", error, kept.version, kept.name)
        else:
            log.error("%s\nno valid version of this file has been loaded; it does not apply", error)
        return _File(stat, content, kept, error, read_at_ns)

    @staticmethod
    def _names(files: dict[Path, _File], path: Path) -> set[str]:
        return {f.policy.name for p, f in files.items() if p != path and f.policy is not None}
