"""Bridge files: YAML naming the capabilities whose tasks go to remote A2A agents.

    # bridges/refunds.yaml
    bridges:
      refunds:                                 # the capability (topic waypost.tasks.refunds)
        card: https://refunds.example.com      # its agent card (or the card's own URL)
        skill: refund                          # optional: asked for in the message metadata
        agent: refunds-co                      # governance name (default: the capability)
        headers: {Authorization: "Bearer ${REFUNDS_TOKEN}"}
        timeout: 5m                            # how long one attempt follows the remote task
        poll_interval: 1s                      # how often it asks the remote task's state
        concurrency: 4                         # tasks one worker follows at once
      quotes:
        endpoint: https://quotes.example.com/a2a   # the JSON-RPC endpoint, no card fetched

Each bridge's tasks are governed as the action ``a2a:<agent>/<skill>`` (``a2a:<agent>``
without a skill). Secrets come from the worker's environment, as in tool-server files
(``waypost.tools.config``): ``${NAME}`` in ``headers`` is replaced when the remote agent
is called and never logged; a URL cannot hold one, and a header whose name says it holds
a secret must be such a reference. A file is read when the bridge starts (restart it to
apply a change); every problem is reported with its file, field and line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from waypost.a2a.errors import BridgeConfigError, InvalidBridges
from waypost.durations import parse_duration

# One rule for secrets in config files: the tool-server files' (waypost/tools/config.py).
from waypost.tools.config import REFERENCE, SECRET_NAME
from waypost.yamlfile import Problem, YamlSyntaxError, load_named_files, named_entries

CAPABILITY = re.compile(r"^[a-z][a-z0-9_.-]{0,99}$")  # as waypost.sdk accepts it
AGENT_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")
SKILL = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
CARD_PATH = "/.well-known/agent-card.json"


class Bridge(BaseModel):
    """One bridged capability: where its remote agent is and how to follow its tasks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    capability: str
    card: str | None = None
    endpoint: str | None = None
    agent: str = ""
    skill: str | None = None
    description: str = ""
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(300.0, gt=0)
    poll_interval: float = Field(1.0, gt=0)
    concurrency: int = Field(4, ge=1, le=256)
    source: str = ""

    @field_validator("timeout", "poll_interval", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("agent")
    @classmethod
    def _agent_name(cls, value: str) -> str:
        if value and not AGENT_NAME.match(value):
            raise ValueError(
                f"{value!r} is not an agent name: use lower-case letters, digits, '.', '_' "
                "or '-', starting with a letter"
            )
        return value

    @field_validator("skill")
    @classmethod
    def _skill(cls, value: str | None) -> str | None:
        if value is not None and not SKILL.match(value):
            raise ValueError(
                f"{value!r} is not a skill id this bridge can govern: use lower-case letters, "
                "digits, '.', '_' or '-'"
            )
        return value

    @model_validator(mode="after")
    def _where(self) -> Bridge:
        if (self.card is None) == (self.endpoint is None):
            raise ValueError("give either card (the agent card's URL) or endpoint, not both")
        url = self.card or self.endpoint or ""
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r} must start with http:// or https://")
        if REFERENCE.search(url):
            # A URL shows up in connection errors, which reach logs and task failures.
            raise ValueError("a URL cannot hold a ${NAME} reference: pass secrets in headers")
        for key, value in self.headers.items():
            if SECRET_NAME.search(key) and not REFERENCE.search(value):
                raise ValueError(
                    f"headers.{key} looks like a secret: write a reference to an environment "
                    'variable ("${NAME}"), never the secret itself'
                )
        if self.poll_interval > self.timeout:
            raise ValueError("poll_interval cannot be longer than timeout")
        if not self.agent:
            object.__setattr__(self, "agent", self.capability)
        return self

    @property
    def action(self) -> str:
        """The governance action of this bridge's tasks: ``a2a:<agent>/<skill>``."""
        return f"a2a:{self.agent}/{self.skill}" if self.skill else f"a2a:{self.agent}"

    @property
    def card_url(self) -> str | None:
        """Where the agent card is (None: the bridge talks to ``endpoint`` directly)."""
        if self.card is None:
            return None
        return self.card if self.card.endswith(".json") else self.card.rstrip("/") + CARD_PATH

    def references(self) -> list[str]:
        """The environment variables this bridge's headers refer to."""
        return sorted({name for text in self.headers.values() for name in REFERENCE.findall(text)})


def load_text(text: str, *, source: str = "<text>") -> dict[str, Bridge]:
    """The bridges of one file, by capability (``BridgeConfigError`` listing every
    problem with its field and line)."""
    try:
        found, problems = named_entries(
            text,
            key="bridges",
            layout="a bridge file is a mapping with one key, bridges: a mapping of "
            "capabilities to their remote agents",
            name=CAPABILITY,
            bad_name="is not a capability name: use lower-case letters, digits, '.', '_' "
            "or '-', starting with a letter",
            build=lambda name, raw: Bridge.model_validate(
                {**raw, "capability": name, "source": source}
            ),
        )
    except YamlSyntaxError as exc:
        raise BridgeConfigError(source, [exc.problem]) from None
    if problems:
        raise BridgeConfigError(source, problems)
    return found


def load_bridges(paths: Sequence[Path]) -> dict[str, Bridge]:
    """Every bridge of these files and directories, by capability; ``InvalidBridges``
    naming every invalid file, field and line (or saying that there is no bridge)."""
    bridges, errors = load_named_files(
        paths,
        load=lambda text, source: load_text(text, source=source),
        error=BridgeConfigError,
        clash=lambda name, first: Problem(
            f"bridges.{name}", f"capability {name!r} is also bridged in {first.source}"
        ),
        nothing="no bridge is configured there",
    )
    if errors:
        raise InvalidBridges(errors)
    return bridges
