"""Webhooks as configuration: YAML files naming the hooks ``POST /hooks/{name}`` serves.

    # hooks/github.yaml
    hooks:
      github-issues:                     # lower-case name: POST /hooks/github-issues
        secret: ${GITHUB_HOOK_SECRET}    # an environment variable, never the secret itself
        scheme: github                   # github | stripe | hmac-sha256
        when: {X-GitHub-Event: [issues]} # optional: other events are answered 204
        goal:                            # waypost/triggers/mapping.py
          type: support.ticket
          input: {subject: "${/issue/title}", delivery: "${delivery_id}"}

Presets fix the headers: ``github`` (signature ``X-Hub-Signature-256``, delivery id from
``X-GitHub-Delivery``, no timestamp) and ``stripe`` (``Stripe-Signature`` with its signed
timestamp, delivery id at ``/id`` in the body). ``hmac-sha256`` needs
``signature_header``, a delivery id (``delivery_id_header``, or ``delivery_id``: a JSON
pointer into the body) and optionally ``timestamp_header``. ``tolerance`` (default
``5m``) bounds a signed timestamp's age; ``max_body`` (bytes, default 1 MiB) the body.

The secret is read from the environment given to ``HookSet`` when a file is loaded; a
hook whose variable is unset is an invalid file. ``HookSet`` keeps the hooks of some
directories current as ``ToolSet`` does tool servers: at most every
``check_interval_s`` it looks at the files again; a changed valid file replaces its
hooks, an invalid one is logged with file, field and line, and its last good version
stays in force. Thread-safe.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from waypost.durations import parse_duration
from waypost.reloading import ReloadingFiles
from waypost.triggers.errors import HookConfigError
from waypost.triggers.mapping import GoalMapping
from waypost.triggers.signatures import GITHUB_HEADER, STRIPE_HEADER, Scheme, SchemeName
from waypost.yamlfile import (
    Problem,
    YamlSyntaxError,
    named_entries,
)

log = logging.getLogger("waypost.hooks")

HOOK_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
SECRET_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_HEADER = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$"  # an HTTP field name (RFC 9110 token)
VARIABLES = ("hook", "delivery_id", "received_at")  # what a hook's mapping may refer to
GITHUB_DELIVERY = "X-GitHub-Delivery"


class _Goal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    input: dict[str, Any] = Field(default_factory=dict)


class Hook(BaseModel):
    """One webhook as its file states it (the secret as the name of its variable)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    secret: str = Field(description="${NAME}: the environment variable holding the secret")
    scheme: SchemeName
    signature_header: str | None = Field(None, pattern=_HEADER)
    timestamp_header: str | None = Field(None, pattern=_HEADER)
    tolerance: float = Field(300.0, gt=0)
    delivery_id_header: str | None = Field(None, pattern=_HEADER)
    delivery_id: str | None = Field(None, pattern=r"^/")
    when: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    max_body: int = Field(1 << 20, ge=1, le=64 << 20)
    goal: _Goal
    source: str = ""

    @field_validator("tolerance", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("when", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: (v,) if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("secret")
    @classmethod
    def _a_reference(cls, value: str) -> str:
        if not SECRET_REFERENCE.match(value):
            raise ValueError(
                'write a reference to an environment variable ("${NAME}"), never the secret itself'
            )
        return value

    @model_validator(mode="after")
    def _complete(self) -> Hook:
        if self.scheme != "hmac-sha256":
            fixed = [
                f
                for f in ("signature_header", "timestamp_header", "delivery_id_header")
                if getattr(self, f) is not None
            ] + (["delivery_id"] if self.delivery_id is not None else [])
            if fixed:
                raise ValueError(
                    f"the {self.scheme} preset fixes its headers and delivery id: remove "
                    + ", ".join(fixed)
                )
        else:
            if self.signature_header is None:
                raise ValueError("scheme hmac-sha256 needs signature_header")
            if (self.delivery_id_header is None) == (self.delivery_id is None):
                raise ValueError(
                    "scheme hmac-sha256 needs exactly one of delivery_id_header (a header) "
                    "and delivery_id (a JSON pointer into the body)"
                )
        for name in self.when:
            if not re.match(_HEADER, name):
                raise ValueError(f"when: {name!r} is not a header name")
        self.mapping()  # the goal type and the references are checked here
        unknown = [
            r
            for r in self.mapping().references()
            if not (r == "" or r.startswith("/") or r in VARIABLES)
        ]
        if unknown:
            raise ValueError(
                f"goal.input refers to ${{{unknown[0]}}}, which a webhook does not provide "
                f"(it has: {', '.join(VARIABLES)}; a JSON pointer starts with '/')"
            )
        return self

    def mapping(self) -> GoalMapping:
        """The goal this hook's deliveries become."""
        return GoalMapping(self.goal.type, self.goal.input)

    def signing(self) -> Scheme:
        """How this hook's deliveries are signed."""
        header = {"github": GITHUB_HEADER, "stripe": STRIPE_HEADER}.get(self.scheme)
        return Scheme(
            self.scheme,
            header or self.signature_header or "",
            self.timestamp_header,
            self.tolerance,
        )

    def delivery(self) -> tuple[str, str]:
        """Where a delivery's id is: ``("header", name)`` or ``("body", JSON pointer)``."""
        if self.scheme == "github":
            return ("header", GITHUB_DELIVERY)
        if self.scheme == "stripe":
            return ("body", "/id")
        if self.delivery_id_header is not None:
            return ("header", self.delivery_id_header)
        return ("body", self.delivery_id or "")

    def secret_variable(self) -> str:
        """The environment variable holding the secret."""
        match = SECRET_REFERENCE.match(self.secret)
        assert match is not None  # validated
        return match.group(1)


@dataclass(frozen=True, slots=True)
class ActiveHook:
    """A hook in force, with its secret (never shown: not in repr)."""

    hook: Hook
    secret: bytes = field(repr=False)


def load_text(
    text: str, *, environ: Mapping[str, str], source: str = "<text>"
) -> dict[str, ActiveHook]:
    """The hooks of one file, by name, with their secrets from ``environ``
    (``HookConfigError`` listing every problem with its field and line)."""
    try:
        found, problems = named_entries(
            text,
            key="hooks",
            layout="a hook file is a mapping with one key, hooks: a mapping of hook names "
            "to their settings",
            name=HOOK_NAME,
            bad_name="is not a hook name: use lower-case letters, digits, '_' or '-', "
            "starting with a letter",
            build=lambda name, raw: Hook.model_validate({**raw, "name": name, "source": source}),
        )
    except YamlSyntaxError as exc:
        raise HookConfigError(source, [exc.problem]) from None
    active: dict[str, ActiveHook] = {}
    for name, hook in found.items():
        secret = environ.get(hook.secret_variable())
        if not secret:
            problems.append(
                Problem(
                    f"hooks.{name}.secret",
                    f"the environment variable {hook.secret_variable()} is not set (or empty)",
                )
            )
            continue
        active[name] = ActiveHook(hook, secret.encode("utf-8"))
    if problems:
        raise HookConfigError(source, problems)
    return active


class HookSet:
    """The hooks of some directories, reloaded without a restart when files change
    (``waypost.reloading``)."""

    def __init__(
        self,
        directories: Sequence[Path],
        *,
        environ: Mapping[str, str],
        check_interval_s: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Load every file; invalid ones are logged and listed in ``errors``."""
        self.directories = tuple(directories)
        self._files: ReloadingFiles[ActiveHook, HookConfigError] = ReloadingFiles(
            directories,
            load=lambda text, source: load_text(text, environ=environ, source=source),
            error=HookConfigError,
            source_of=lambda active: active.hook.source,
            key="hooks",
            kind="hook",
            what="webhooks",
            log=log,
            check_interval_s=check_interval_s,
            monotonic=monotonic,
        )
        self.errors = self._files.missing()
        for error in self.errors:
            log.error("%s", error)
        self.errors += self._files.reload()

    def get(self, name: str) -> ActiveHook | None:
        """The hook in force of that name (looking at the files first if the interval
        passed)."""
        return self._files.current().get(name)

    def names(self) -> list[str]:
        """The names of the hooks in force."""
        return sorted(self._files.current())

    def reload(self) -> list[HookConfigError]:
        """Look at the files now; the files that are invalid."""
        return self._files.reload()
