"""Where the platform is: the broker, the database and the HTTP app.

Settings come first (``WAYPOST_KAFKA_BOOTSTRAP``, ``WAYPOST_DATABASE_URL``, ...); what
they leave unset is taken from the stack that ``waypost up`` runs, which records its
endpoints in ``<data dir>/stack.json`` while it runs. Every service ``main()`` and CLI
command finds its endpoints here; ``waypost up`` writes and removes the file through
this module too. The stack also keeps the CLI's API token beside it (``api-token``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from waypost.errors import StackNotFound
from waypost.settings import CommonSettings

FILE_NAME = "stack.json"
CLI_TOKEN_FILE = "api-token"  # noqa: S105 - a file name, not a secret
KAFKA = "kafka_bootstrap"
DATABASE = "database_url"
HTTP = "http_url"


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
    """Endpoints from settings, falling back to the running stack for unset ones;
    StackNotFound, saying how to start or point at one, if one of ``need`` is neither."""
    running = read(settings.data_dir)
    kafka = settings.kafka_bootstrap or (running.kafka_bootstrap if running else None)
    database = settings.database_url or (running.database_url if running else None)
    http = http_url or (running.http_url if running else None)
    found = {KAFKA: kafka, DATABASE: database, HTTP: http}
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


def cli_token_path(data_dir: Path) -> Path:
    """Where the stack keeps the API token the CLI uses against it (owner-readable)."""
    return data_dir / CLI_TOKEN_FILE


def read_cli_token(data_dir: Path) -> str | None:
    """The stack's CLI token, if it has one."""
    try:
        return cli_token_path(data_dir).read_text().strip() or None
    except OSError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
