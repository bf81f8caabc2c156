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
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from waypost.durations import parse_duration
from waypost.reloading import ReloadingFiles
from waypost.tools.errors import InvalidToolServers, ToolConfigError
from waypost.yamlfile import (
    YamlSyntaxError,
    named_entries,
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


class ToolSet:
    """The tool servers of some directories, reloaded without a restart when files change
    (``waypost.reloading``)."""

    def __init__(
        self,
        directories: Sequence[Path],
        *,
        check_interval_s: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Load every file; raise ``InvalidToolServers`` if any is invalid."""
        self.directories = tuple(directories)
        self._files: ReloadingFiles[ToolServer, ToolConfigError] = ReloadingFiles(
            directories,
            load=lambda text, source: load_text(text, source=source),
            error=ToolConfigError,
            source_of=lambda server: server.source,
            key="servers",
            kind="server",
            what="tool servers",
            log=log,
            check_interval_s=check_interval_s,
            monotonic=monotonic,
        )
        missing = self._files.missing()
        if missing:
            raise InvalidToolServers(missing)
        errors = self._files.reload()
        if errors:
            raise InvalidToolServers(errors)

    def current(self) -> dict[str, ToolServer]:
        """The servers in force, by name (looking at the files first if the interval
        passed)."""
        return self._files.current()

    def reload(self) -> list[ToolConfigError]:
        """Look at the files now; the files that are invalid."""
        return self._files.reload()
