"""Tool servers as configuration: YAML files naming the MCP servers agents may call.

    # tools/helpdesk.yaml
    servers:
      helpdesk:                          # lower-case name; actions are mcp:helpdesk/<tool>
        command: python                  # stdio: a process started by the worker
        args: [-m, helpdesk_mcp]
        env: {HELPDESK_TOKEN: "${HELPDESK_TOKEN}"}
        timeout: 30s                     # per call (default 30s)
      weather:
        url: https://weather.example.com/mcp   # streamable HTTP
        headers: {Authorization: "Bearer ${WEATHER_TOKEN}"}

Secrets come from the worker's environment: ``${NAME}`` in ``env``, ``headers`` or
``args`` is replaced when the server is connected, and never logged (a URL cannot hold
one: it shows up in connection errors). A header or
variable whose name says it holds a secret (token, key, secret, password,
authorization) must be such a reference, so a file never needs to hold one.

``ToolSet`` keeps the servers of some directories current: at most every
``check_interval_s`` it looks at the files again; a changed valid file replaces its
servers, an invalid one is logged with file, field and line and its last good version
stays in force. Thread-safe.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from waypost.durations import parse_duration
from waypost.tools.errors import InvalidToolServers, ToolConfigError
from waypost.yamlfile import (
    Problem,
    Stat,
    YamlSyntaxError,
    named_entries,
    stat_of,
    unchanged_since_read,
)

log = logging.getLogger("waypost.tools")

SERVER_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SECRET_NAME = re.compile(r"token|key|secret|password|passwd|authorization|cookie", re.I)


class ToolServer(BaseModel):
    """One MCP server: ``command`` (stdio) or ``url`` (streamable HTTP)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(30.0, gt=0)
    source: str = ""

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_transport(self) -> ToolServer:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either command (stdio) or url (streamable HTTP), not both")
        if self.command is None and (self.args or self.env):
            raise ValueError("args and env are for stdio servers (command)")
        if self.url is None and self.headers:
            raise ValueError("headers are for streamable-HTTP servers (url)")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url {self.url!r} must start with http:// or https://")
        if self.url is not None and REFERENCE.search(self.url):
            # A URL shows up in connection errors, which reach logs and task failures.
            raise ValueError("url cannot hold a ${NAME} reference: pass secrets in headers")
        for kind, values in (("env", self.env), ("headers", self.headers)):
            for key, value in values.items():
                if SECRET_NAME.search(key) and not REFERENCE.search(value):
                    raise ValueError(
                        f"{kind}.{key} looks like a secret: write a reference to an "
                        f'environment variable ("${{NAME}}"), never the secret itself'
                    )
        return self

    @property
    def transport(self) -> str:
        """``stdio`` or ``http``."""
        return "stdio" if self.command is not None else "http"

    def references(self) -> list[str]:
        """The environment variables this server's settings refer to."""
        texts = [*self.args, *self.env.values(), *self.headers.values()]
        return sorted({name for text in texts for name in REFERENCE.findall(text)})


def resolve(text: str, environ: Mapping[str, str]) -> str:
    """``text`` with each ``${NAME}`` replaced from ``environ`` (KeyError naming a
    variable that is not set)."""
    return REFERENCE.sub(lambda match: environ[match.group(1)], text)


def load_text(text: str, *, source: str = "<text>") -> dict[str, ToolServer]:
    """The servers of one tool-server file, by name (``ToolConfigError`` listing every
    problem with its field and line)."""
    try:
        found, problems = named_entries(
            text,
            key="servers",
            layout="a tool-server file is a mapping with one key, servers: "
            "a mapping of server names to their settings",
            name=SERVER_NAME,
            bad_name="is not a server name: use lower-case letters, digits, '_' or '-', "
            "starting with a letter",
            build=lambda name, raw: ToolServer.model_validate(
                {**raw, "name": name, "source": source}
            ),
        )
    except YamlSyntaxError as exc:
        raise ToolConfigError(source, [exc.problem]) from None
    if problems:
        raise ToolConfigError(source, problems)
    return found


def tool_files(directories: Sequence[Path]) -> list[Path]:
    """The ``*.yaml``/``*.yml`` files of these directories, in path order."""
    return [
        path
        for directory in directories
        if directory.is_dir()
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    ]


@dataclass(frozen=True, slots=True)
class _File:
    stat: Stat
    servers: dict[str, ToolServer]  # the last good version ({} if never valid)
    error: ToolConfigError | None
    read_at_ns: int  # wall clock when it was read


class ToolSet:
    """The tool servers of some directories, reloaded without a restart when files change."""

    def __init__(
        self,
        directories: Sequence[Path],
        *,
        check_interval_s: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Load every file; raise ``InvalidToolServers`` if any is invalid."""
        self.directories = tuple(directories)
        self.check_interval_s = check_interval_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._files: dict[Path, _File] = {}
        self._servers: dict[str, ToolServer] = {}
        missing = [d for d in self.directories if not d.is_dir()]
        if missing:
            raise InvalidToolServers(
                [
                    ToolConfigError(str(d), [Problem("(directory)", "is not a directory")])
                    for d in missing
                ]
            )
        errors = self._reload()
        if errors:
            raise InvalidToolServers(errors)
        self._checked_at = monotonic()

    def current(self) -> dict[str, ToolServer]:
        """The servers in force, by name (looking at the files first if the interval
        passed)."""
        if self._monotonic() - self._checked_at >= self.check_interval_s and self._lock.acquire(
            blocking=False
        ):
            try:
                self._reload()
            finally:
                self._checked_at = self._monotonic()
                self._lock.release()
        return self._servers

    def reload(self) -> list[ToolConfigError]:
        """Look at the files now; the files that are invalid."""
        with self._lock:
            try:
                return self._reload()
            finally:
                self._checked_at = self._monotonic()

    def _reload(self) -> list[ToolConfigError]:
        seen = {path: stat for path in tool_files(self.directories) if (stat := stat_of(path))}
        files = {p: f for p, f in self._files.items() if p in seen}
        for path, stat in seen.items():
            known = files.get(path)
            if known is None or not unchanged_since_read(known.stat, known.read_at_ns, stat):
                files[path] = self._read(path, stat, known)
        servers: dict[str, ToolServer] = {}
        errors = [f.error for f in files.values() if f.error is not None]
        for path, file in sorted(files.items()):
            for name, server in file.servers.items():
                if name in servers:
                    clash = ToolConfigError(
                        str(path),
                        [
                            Problem(
                                f"servers.{name}",
                                f"server {name!r} is also defined in "
                                f"{servers[name].source}; this one is ignored",
                            )
                        ],
                    )
                    log.error("%s", clash)
                    errors.append(clash)
                    continue
                servers[name] = server
        if servers != self._servers:
            log.info("tool servers in force: %s", ", ".join(sorted(servers)) or "none")
        self._files, self._servers = files, servers
        return errors

    @staticmethod
    def _read(path: Path, stat: Stat, known: _File | None) -> _File:
        read_at_ns = time.time_ns()
        try:
            servers = load_text(path.read_text(encoding="utf-8"), source=str(path))
        except (OSError, UnicodeDecodeError) as exc:
            error = ToolConfigError(str(path), [Problem("(file)", f"cannot be read: {exc}")])
        except ToolConfigError as invalid:
            error = invalid
        else:
            return _File(stat, servers, None, read_at_ns)
        kept = known.servers if known is not None else {}
        log.error("%s\n%s", error, "keeping its last good version" if kept else "it does not apply")
        return _File(stat, kept, error, read_at_ns)
