"""Where the ``pgserver`` user can reach PostgreSQL's files when Waypost runs as root.

PostgreSQL refuses to run as root, so as root it runs as an unprivileged user. That user
cannot enter a private home directory such as ``/root`` (mode 0700), which is where a
checkout -- its ``.venv`` with the pgserver wheel's binaries, and the default data
directory ``.waypost/`` -- often lives. We never loosen the permissions of someone's
directories; we relocate instead:

- the binaries are copied once to ``CACHE_ROOT/pginstall-<hash>`` (root-owned,
  world-readable), keyed by the pgserver version and the path they were copied from;
- the data lives in ``STATE_ROOT/<hash of the requested path>/postgres`` and the
  requested path becomes a symlink to it, so every start finds the same data there.

Whether a path is reachable is decided from permission bits on it and every directory
above it, applied to the user's uid and groups the way the kernel applies them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import pwd
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from waypost.errors import StackError

CACHE_ROOT = Path("/var/cache/waypost")
STATE_ROOT = Path("/var/lib/waypost")
# auditwheel moved libpq next to the package: the binaries find it through the RPATH
# $ORIGIN/../../../pgserver.libs, so a copy must keep the two side by side.
_LIBS = "pgserver.libs"
_COMPLETE = "COMPLETE"  # written last, before the atomic rename that publishes a copy
_READ, _EXEC = 4, 1


@dataclass(frozen=True)
class Account:
    """A user as permission checks see it: its uid and every group it belongs to."""

    name: str
    uid: int
    gids: frozenset[int]

    @classmethod
    def lookup(cls, name: str) -> Account:
        """The account called ``name`` (it must exist)."""
        entry = pwd.getpwnam(name)
        return cls(name, entry.pw_uid, frozenset(os.getgrouplist(name, entry.pw_gid)))


def first_closed(path: Path, account: Account) -> Path | None:
    """The first directory on the way to ``path`` (itself included) that ``account``
    cannot pass through, or None if it can reach ``path``."""
    # Both spellings: a symlinked component is entered through its target's ancestors.
    for spelling in dict.fromkeys([path.absolute(), path.resolve()]):
        for directory in [*reversed(spelling.parents), spelling]:
            if not _allows(directory, account, _EXEC):
                return directory
    return None


def tree_usable(root: Path, account: Account) -> bool:
    """True if ``account`` can reach ``root`` and read (and run) everything inside it."""
    if first_closed(root, account) is not None or not _allows(root, account, _READ):
        return False
    for directory, subdirectories, files in os.walk(root):
        for name in subdirectories:
            if not _allows(Path(directory, name), account, _READ | _EXEC):
                return False
        for name in files:
            path = Path(directory, name)
            try:
                runnable = path.stat().st_mode & stat.S_IXUSR
            except OSError:  # a dangling symlink: the copy is no worse
                return False
            if not _allows(path, account, _READ | (_EXEC if runnable else 0)):
                return False
    return True


def wheel_install() -> Path:
    """The ``pginstall`` directory (bin/, lib/, share/) of the installed pgserver wheel."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise StackError(
            "the pgserver package (embedded PostgreSQL) is not installed; run `make install` "
            "or set WAYPOST_DATABASE_URL to an existing PostgreSQL with pgvector"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def usable_install(install: Path, account: Account, cache_root: Path) -> Path:
    """``install`` if ``account`` can use it where it is, else a copy in ``cache_root``."""
    libs = install.parent.parent / _LIBS
    if tree_usable(install, account) and (not libs.is_dir() or tree_usable(libs, account)):
        return install
    return _cached_copy(install, libs, account, cache_root)


def relocated_data_dir(requested: Path, account: Account, state_root: Path) -> Path:
    """Keep the data of ``requested`` under ``state_root``; ``requested`` links there."""
    home = state_root / _digest(str(requested))
    real = home / "postgres"
    try:
        _public_dir(state_root)
        _public_dir(home)
        real.mkdir(exist_ok=True)
        # For whoever lists STATE_ROOT: which data directory each hash stands for.
        (home / "linked-from").write_text(f"{requested}\n")
    except OSError as exc:
        raise StackError(
            f"cannot create {real} ({exc}), where PostgreSQL's data for {requested} "
            f"would live because the '{account.name}' user it runs as cannot reach "
            f"{requested}; set WAYPOST_DATA_DIR to a directory other users can enter "
            "(e.g. /srv/waypost), or WAYPOST_DATABASE_URL to an existing PostgreSQL"
        ) from exc
    closed = first_closed(home, account)
    if closed is not None:
        raise StackError(
            f"{closed} is closed to the '{account.name}' user PostgreSQL runs as, so it "
            f"cannot reach its data in {real}; let other users enter {closed} (o+x), or set "
            "WAYPOST_DATA_DIR to a directory they can enter (e.g. /srv/waypost)"
        )
    _link(requested, real, account)
    return real


def _link(requested: Path, real: Path, account: Account) -> None:
    if requested.is_symlink():
        if requested.resolve() == real.resolve():
            return  # an earlier start linked it
        raise StackError(
            f"{requested} is a symlink to {os.readlink(requested)}, which the "
            f"'{account.name}' user PostgreSQL runs as cannot reach; point it at a directory "
            f"other users can enter, or remove it (the data then lives in {real})"
        )
    if requested.is_dir():
        try:
            requested.rmdir()  # an empty directory is safe to replace by the link
        except OSError:
            raise StackError(
                f"{requested} holds files, but the '{account.name}' user PostgreSQL runs as "
                f"cannot reach it; move its contents to {real} and remove it (Waypost then "
                "links it there), or set WAYPOST_DATA_DIR to a directory other users can "
                "enter (e.g. /srv/waypost)"
            ) from None
    elif requested.exists():
        raise StackError(f"{requested} is a file; remove it or set WAYPOST_DATA_DIR elsewhere")
    try:
        requested.symlink_to(real, target_is_directory=True)
    except FileExistsError:
        if requested.resolve() != real.resolve():  # not a concurrent start linking it too
            raise


def _cached_copy(install: Path, libs: Path, account: Account, cache_root: Path) -> Path:
    final = cache_root / f"pginstall-{_digest(f'{_version()} {install.resolve()}')}"
    copied = final / "pgserver" / "pginstall"
    if not (final / _COMPLETE).exists():
        try:
            _public_dir(cache_root)
            _copy(install, libs, final)
        except OSError as exc:
            raise StackError(
                f"cannot copy PostgreSQL's binaries from {install} to {final} ({exc}), where "
                f"the '{account.name}' user it runs as could use them; make {cache_root} "
                "writable, or set WAYPOST_DATABASE_URL to an existing PostgreSQL with pgvector"
            ) from exc
    closed = first_closed(copied / "bin", account)
    if closed is not None:
        raise StackError(
            f"{closed} is closed to the '{account.name}' user PostgreSQL runs as, so it cannot "
            f"run the binaries in {copied}; let other users enter {closed} (o+x), or set "
            "WAYPOST_DATABASE_URL to an existing PostgreSQL with pgvector"
        )
    return copied


def _copy(install: Path, libs: Path, final: Path) -> None:
    """Copy into a temporary sibling, then rename it into place: a process starting at
    the same time sees no copy or a whole one, never half of one."""
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        shutil.copytree(install, staging / "pgserver" / "pginstall", symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, staging / _LIBS, symlinks=True)
        (staging / _COMPLETE).write_text(f"copied from {install}\n")
        _open_tree(staging)
        if final.exists() and not (final / _COMPLETE).exists():
            shutil.rmtree(final)  # not ours (ours appear whole): left by hand or a crash
        try:
            staging.rename(final)
        except OSError:
            if not (final / _COMPLETE).exists():
                raise
            # Another process published the same copy first; use theirs.
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _open_tree(root: Path) -> None:
    """Root-owned and world-readable: others may read and run, only root may change."""
    for directory, _subdirectories, files in os.walk(root):
        Path(directory).chmod(0o755)
        for name in files:
            path = Path(directory, name)
            if not path.is_symlink():
                mode = path.stat().st_mode
                path.chmod(0o755 if mode & stat.S_IXUSR else 0o644)


def _public_dir(path: Path) -> None:
    """Create ``path`` (root-owned, enterable by everyone) unless it exists already."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir()
    except FileExistsError:
        return  # an administrator's choice of mode stands; reachability is checked later
    path.chmod(0o755)  # mkdir's mode is cut by the umask


def _allows(path: Path, account: Account, wanted: int) -> bool:
    try:
        status = path.stat()
    except OSError:
        return False
    if status.st_uid == account.uid:
        bits = status.st_mode >> 6
    elif status.st_gid in account.gids:
        bits = status.st_mode >> 3
    else:
        bits = status.st_mode
    return bits & wanted == wanted


def _version() -> str:
    try:
        return importlib.metadata.version("pgserver")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]
