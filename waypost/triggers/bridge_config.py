"""Bridge files: YAML naming the MQTT topic filters and NATS subjects whose messages
become goals (``waypost bridge run``, docs/triggers.md, "MQTT and NATS bridges").

    # bridges/sensors.yaml
    bridges:
      sensor-alarms:                       # lower-case name
        mqtt:
          url: mqtt://mqtt.example.com:1883    # mqtts:// for TLS
          topics: [sensors/+/alarm]            # topic filters, subscribed with QoS 1
          client_id: waypost-sensor-alarms     # stable: the broker keeps its session
          username: bridge
          password: ${MQTT_PASSWORD}           # an environment variable, never the secret
          id: /event_id                        # optional: a JSON pointer to the sender's id
        goal:                                  # waypost/triggers/mapping.py
          type: support.ticket
          input: {subject: "Alarm on ${topic}", body: "${/text}"}
      orders:
        nats:
          url: nats://nats.example.com:4222
          subject: orders.created              # read through a JetStream durable consumer
          stream: ORDERS
          create_stream: true                  # make the stream if it does not exist
          durable: waypost-orders              # default: waypost-<name>
          token: ${NATS_TOKEN}
        goal: {type: billing.order, input: {order: "${/}"}}

Each bridge has exactly one of ``mqtt`` and ``nats``. A mapping may refer to the
variables ``bridge``, ``received_at``, ``message_id`` and ``topic`` (MQTT) or
``subject``, ``stream`` and ``sequence`` (NATS). Secrets (``password``, ``token``) are
``${NAME}`` references read from the bridge's environment at start, never logged. Every
problem is reported with its file, field and line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from waypost.durations import parse_duration
from waypost.errors import ConfigError
from waypost.triggers.errors import BridgeConfigError, InvalidBridgeFiles
from waypost.triggers.mapping import GoalMapping
from waypost.yamlfile import Problem, YamlSyntaxError, load_named_files, named_entries

BRIDGE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
SECRET_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_NATS_NAME = re.compile(r"^[A-Za-z0-9_-]{1,200}$")  # streams and durables: no '.', '*', '>'
COMMON_VARIABLES = ("bridge", "received_at", "message_id")
MQTT_VARIABLES = (*COMMON_VARIABLES, "topic")
NATS_VARIABLES = (*COMMON_VARIABLES, "subject", "stream", "sequence")


def _secret(value: str | None) -> str | None:
    if value is not None and not SECRET_REFERENCE.match(value):
        raise ValueError(
            'write a reference to an environment variable ("${NAME}"), never the secret itself'
        )
    return value


def _url(value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"{value!r} must be {' or '.join(s + '://host:port' for s in schemes)}")
    if parts.username is not None or "${" in value:
        # A URL shows up in connection errors and logs: credentials have their own fields.
        raise ValueError("a URL cannot hold credentials: use username/password or token")
    return value


class _Goal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    input: dict[str, Any] = Field(default_factory=dict)


class MqttSource(BaseModel):
    """Where an MQTT bridge subscribes, and as whom."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    topics: tuple[str, ...] = Field(min_length=1)
    client_id: str = Field("", max_length=200)
    username: str | None = None
    password: str | None = None
    protocol: Literal["5", "3.1.1"] = "5"
    session_expiry: float = Field(7 * 86400.0, gt=0)
    keepalive: int = Field(30, ge=5, le=3600)
    id: str | None = Field(None, pattern=r"^/")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _url(value, ("mqtt", "mqtts"))

    @field_validator("password")
    @classmethod
    def _check_secret(cls, value: str | None) -> str | None:
        return _secret(value)

    @field_validator("protocol", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value

    @field_validator("session_expiry", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("topics")
    @classmethod
    def _filters(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for topic in value:
            levels = topic.split("/")
            if not topic or any(
                ("+" in level and level != "+") or ("#" in level and level != "#")
                for level in levels
            ):
                raise ValueError(f"{topic!r} is not an MQTT topic filter")
            if "#" in levels[:-1]:
                raise ValueError(f"{topic!r}: '#' may only be the last level")
        return value

    @property
    def host(self) -> str:
        """The broker's host name."""
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        """The broker's port (1883, or 8883 for mqtts)."""
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        """True for an ``mqtts://`` URL."""
        return urlsplit(self.url).scheme == "mqtts"


class NatsSource(BaseModel):
    """Which JetStream stream and subject a NATS bridge reads, through which consumer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    subject: str = Field(min_length=1, max_length=200, pattern=r"^[^\s]+$")
    stream: str = Field(pattern=_NATS_NAME.pattern)
    create_stream: bool = False
    durable: str = Field("", pattern=r"^$|" + _NATS_NAME.pattern)
    ack_wait: float = Field(30.0, gt=0)
    batch: int = Field(64, ge=1, le=1000)
    user: str | None = None
    password: str | None = None
    token: str | None = None

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _url(value, ("nats", "tls"))

    @field_validator("password", "token")
    @classmethod
    def _check_secret(cls, value: str | None) -> str | None:
        return _secret(value)

    @field_validator("ack_wait", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value


class Bridge(BaseModel):
    """One bridge: the messages it reads and the goal each becomes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    mqtt: MqttSource | None = None
    nats: NatsSource | None = None
    goal: _Goal
    source: str = ""

    @model_validator(mode="after")
    def _complete(self) -> Bridge:
        if (self.mqtt is None) == (self.nats is None):
            raise ValueError("give exactly one of mqtt and nats")
        variables = self.variables
        unknown = [
            r for r in self.mapping().references() if not r.startswith("/") and r not in variables
        ]
        if unknown:
            raise ValueError(
                f"goal.input refers to ${{{unknown[0]}}}, which this bridge does not provide "
                f"(it has: {', '.join(variables)}; a JSON pointer starts with '/')"
            )
        if self.mqtt is not None and not self.mqtt.client_id:
            object.__setattr__(
                self, "mqtt", self.mqtt.model_copy(update={"client_id": f"waypost-{self.name}"})
            )
        if self.nats is not None and not self.nats.durable:
            object.__setattr__(
                self, "nats", self.nats.model_copy(update={"durable": f"waypost-{self.name}"})
            )
        return self

    @property
    def variables(self) -> tuple[str, ...]:
        """The variables its mapping may refer to."""
        return MQTT_VARIABLES if self.mqtt is not None else NATS_VARIABLES

    def mapping(self) -> GoalMapping:
        """The goal its messages become (ValueError for a bad goal type or reference)."""
        return GoalMapping(self.goal.type, self.goal.input)

    def secrets(self) -> dict[str, str]:
        """The environment variable behind each secret field (``password``, ``token``)."""
        found: dict[str, str] = {}
        for field_name in ("password", "token"):
            value = getattr(self.mqtt or self.nats, field_name, None)
            match = SECRET_REFERENCE.match(value) if value else None
            if match:
                found[field_name] = match.group(1)
        return found


@dataclass(frozen=True)
class Credentials:
    """A bridge's secrets, read from the environment (never logged)."""

    password: str | None = None
    token: str | None = None

    def __repr__(self) -> str:
        return "Credentials(***)"


def credentials(bridge: Bridge, environ: Mapping[str, str]) -> Credentials:
    """The secrets of ``bridge`` from ``environ``; ConfigError naming an unset variable."""
    values: dict[str, str] = {}
    for field_name, variable in bridge.secrets().items():
        if variable not in environ:
            raise ConfigError(
                f"{bridge.source}: bridges.{bridge.name}: {field_name} refers to the "
                f"environment variable {variable}, which is not set"
            )
        values[field_name] = environ[variable]
    return Credentials(**values)


def load_text(text: str, *, source: str = "<text>") -> dict[str, Bridge]:
    """The bridges of one file, by name (``BridgeConfigError`` listing every problem
    with its field and line)."""
    try:
        found, problems = named_entries(
            text,
            key="bridges",
            layout="a bridge file is a mapping with one key, bridges: a mapping of bridge "
            "names to their mqtt or nats source and goal",
            name=BRIDGE_NAME,
            bad_name="is not a bridge name: use lower-case letters, digits, '_' or '-', "
            "starting with a letter",
            build=lambda name, raw: Bridge.model_validate({**raw, "name": name, "source": source}),
        )
    except YamlSyntaxError as exc:
        raise BridgeConfigError(source, [exc.problem]) from None
    if problems:
        raise BridgeConfigError(source, problems)
    return found


def load_bridges(paths: Sequence[Path]) -> dict[str, Bridge]:
    """Every bridge of these files and directories, by name; ``InvalidBridgeFiles``
    naming every invalid file, field and line (or saying that there is no bridge)."""
    bridges, errors = load_named_files(
        paths,
        load=lambda text, source: load_text(text, source=source),
        error=BridgeConfigError,
        clash=lambda name, first: Problem(
            f"bridges.{name}", f"{name!r} is also defined in {first.source}"
        ),
        nothing="no bridge is configured there",
    )
    if errors:
        raise InvalidBridgeFiles(errors)
    return bridges
