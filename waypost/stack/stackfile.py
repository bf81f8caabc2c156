"""``stack.json``: where the stack that ``waypost up`` started can be reached."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from waypost.errors import StackNotFound
from waypost.settings import CommonSettings

FILE_NAME = "stack.json"


@dataclass(frozen=True, slots=True)
class Endpoints:
    """How to reach a running stack."""

    kafka_bootstrap: str
    database_url: str
    http_url: str
    pid: int | None = None


def write(data_dir: Path, endpoints: Endpoints) -> Path:
    """Record the endpoints of the stack this process runs (atomically)."""
    path = data_dir / FILE_NAME
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(endpoints), indent=2) + "\n")
    temporary.replace(path)
    return path


def remove(data_dir: Path) -> None:
    """Forget the stack (when it stops)."""
    (data_dir / FILE_NAME).unlink(missing_ok=True)


def read(data_dir: Path) -> Endpoints | None:
    """The endpoints of a running stack, or None if there is none."""
    path = data_dir / FILE_NAME
    try:
        data = json.loads(path.read_text())
        endpoints = Endpoints(**data)
    except (OSError, ValueError, TypeError):
        return None
    if endpoints.pid is not None and not _alive(endpoints.pid):
        return None
    return endpoints


def resolve(
    settings: CommonSettings, *, need: tuple[str, ...], http_url: str | None = None
) -> Endpoints:
    """Endpoints from settings, falling back to the running stack for unset ones."""
    running = read(settings.data_dir)
    kafka = settings.kafka_bootstrap or (running.kafka_bootstrap if running else None)
    database = settings.database_url or (running.database_url if running else None)
    http = http_url or (running.http_url if running else None)
    found = {"kafka_bootstrap": kafka, "database_url": database, "http_url": http}
    missing = [name for name in need if not found[name]]
    if missing:
        where = settings.data_dir / FILE_NAME
        settings_hint = " or ".join(f"WAYPOST_{name.upper()}" for name in missing)
        raise StackNotFound(
            f"no running Waypost stack found ({where} is missing or stale). "
            f"Start one with `waypost up`, point WAYPOST_DATA_DIR at its data directory, "
            f"or set {settings_hint}."
        )
    return Endpoints(kafka or "", database or "", http or "", running.pid if running else None)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
