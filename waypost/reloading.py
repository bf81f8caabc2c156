"""Named entries of YAML files in directories, reloaded without a restart (tool servers,
webhooks).

Every ``check_interval_s`` at most, the files whose stat changed (``stat_of`` and
``unchanged_since_read`` of ``waypost.yamlfile``: a rewrite in the same timestamp tick is
still seen) are read again. A file that turns invalid keeps its last good version and is
logged with its file, field and line; the same name in two files is in force from the
first file in path order, and the other is logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from waypost.yamlfile import Problem, Stat, stat_of, unchanged_since_read, yaml_files

T = TypeVar("T")
E = TypeVar("E", bound=Exception)


@dataclass(frozen=True, slots=True)
class _File(Generic[T, E]):
    stat: Stat
    entries: dict[str, T]  # the last good version ({} if never valid)
    error: E | None
    read_at_ns: int  # wall clock when it was read


class ReloadingFiles(Generic[T, E]):
    """The entries of the files in ``directories``, by name.

    ``load(text, source)`` reads one file and raises ``error(source, problems)``;
    ``source_of`` names the file an entry came from; ``key`` is the files' top-level key
    and ``kind`` what an entry is (for messages), ``what`` what they all are (for the log
    line saying which are in force)."""

    def __init__(
        self,
        directories: Sequence[Path],
        *,
        load: Callable[[str, str], dict[str, T]],
        error: type[E],
        source_of: Callable[[T], str],
        key: str,
        kind: str,
        what: str,
        log: logging.Logger,
        check_interval_s: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Nothing is read yet: call ``reload`` first."""
        self.directories = tuple(directories)
        self.check_interval_s = check_interval_s
        self._load, self._error, self._source_of = load, error, source_of
        self._key, self._kind, self._what, self._log = key, kind, what, log
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._files: dict[Path, _File[T, E]] = {}
        self._entries: dict[str, T] = {}
        self._checked_at = monotonic()

    def missing(self) -> list[E]:
        """An error for each directory that is not one."""
        return [
            self._error(str(d), [Problem("(directory)", "is not a directory")])
            for d in self.directories
            if not d.is_dir()
        ]

    def current(self) -> dict[str, T]:
        """The entries in force (looking at the files first if the interval passed)."""
        if self._monotonic() - self._checked_at >= self.check_interval_s and self._lock.acquire(
            blocking=False
        ):
            try:
                self._reload()
            finally:
                self._checked_at = self._monotonic()
                self._lock.release()
        return self._entries

    def reload(self) -> list[E]:
        """Look at the files now; the files that are invalid."""
        with self._lock:
            try:
                return self._reload()
            finally:
                self._checked_at = self._monotonic()

    def _reload(self) -> list[E]:
        paths = yaml_files([d for d in self.directories if d.is_dir()])
        seen = {path: stat for path in paths if (stat := stat_of(path))}
        files = {p: f for p, f in self._files.items() if p in seen}
        for path, stat in seen.items():
            known = files.get(path)
            if known is None or not unchanged_since_read(known.stat, known.read_at_ns, stat):
                files[path] = self._read(path, stat, known)
        entries: dict[str, T] = {}
        errors = [f.error for f in files.values() if f.error is not None]
        for path, file in sorted(files.items()):
            for name, entry in file.entries.items():
                if name in entries:
                    first = self._source_of(entries[name])
                    clash = self._error(
                        str(path),
                        [
                            Problem(
                                f"{self._key}.{name}",
                                f"{self._kind} {name!r} is also defined in {first}; "
                                "this one is ignored",
                            )
                        ],
                    )
                    self._log.error("%s", clash)
                    errors.append(clash)
                    continue
                entries[name] = entry
        if entries.keys() != self._entries.keys():
            self._log.info("%s in force: %s", self._what, ", ".join(sorted(entries)) or "none")
        self._files, self._entries = files, entries
        return errors

    def _read(self, path: Path, stat: Stat, known: _File[T, E] | None) -> _File[T, E]:
        read_at_ns = time.time_ns()
        try:
            entries = self._load(path.read_text(encoding="utf-8"), str(path))
        except (OSError, UnicodeDecodeError) as exc:
            error = self._error(str(path), [Problem("(file)", f"cannot be read: {exc}")])
        except self._error as invalid:
            error = invalid
        else:
            return _File(stat, entries, None, read_at_ns)
        kept = known.entries if known is not None else {}
        self._log.error(
            "%s\n%s", error, "keeping its last good version" if kept else "it does not apply"
        )
        return _File(stat, kept, error, read_at_ns)
