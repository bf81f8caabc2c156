"""Every setting of every process the chart runs can be set from values.

The settings come from the classes themselves (`waypost.docgen.CLASSES`, the class each
command loads), not from a list kept here: a field added to a settings class fails these
tests until the chart can set it. Each container of the maximal render is started the
way a process starts, by loading its settings class from the environment the kubelet
would give it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pytest
from pydantic import TypeAdapter

from tests.helm.chart import CHART_DIR, Rendered, command, environment, load_values
from waypost.docgen import CLASSES
from waypost.settings import (
    AgentSettings,
    CommonSettings,
    ListenerSettings,
    PlaybookSettings,
    load,
)

# Commands the chart does not run: `waypost up` is the embedded stack for one machine.
NOT_DEPLOYED = {"up"}

# Settings that have values of their own instead of a key under `config`.
DEDICATED = {
    "kafka_bootstrap": "kafka.bootstrap",
    "kafka_client_config": "kafka.clientConfig",  # with kafka.sasl, kafka.clientConfigSecret
    "database_url": "database.existingSecret",  # or database.url
    "metrics_host": "metrics.bindAddress",
    "metrics_port": "metrics.port",
    "otel_exporter_otlp_endpoint": "otel.endpoint",
    "otel_service_name": "otel.serviceNamePrefix",
    "playbook_dirs": "playbooks.files",  # and playbooks.existingConfigMaps
    "policy_dirs": "policies.files",  # and policies.existingConfigMaps, per pool too
    "http_host": "console.bindAddress",
    "http_port": "console.port",
    "agent_instance": "agentDefaults",  # each worker is named after its pod
}

# Settings a command is not given, on purpose.
WITHHELD = {
    # The console serves /metrics, /healthz and /readyz on its own HTTP port.
    "serve": {"metrics_host", "metrics_port"},
    # Migrations touch only the database: no broker, no metrics server, no spans.
    # The topic Job talks to Kafka only: no metrics server, no spans, no playbook files
    # (it runs before the release's ConfigMaps exist; the built-in playbooks and the
    # pools' modules name its topics).
    "topics": {"metrics_host", "metrics_port", "otel_exporter_otlp_endpoint", "otel_service_name"},
    "migrate": {
        "kafka_bootstrap",
        "kafka_client_config",
        "metrics_host",
        "metrics_port",
        "otel_exporter_otlp_endpoint",
        "otel_service_name",
    },
}

Settings = type[CommonSettings]


def _env_name(cls: Settings, field: str) -> str:
    alias = cls.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else f"WAYPOST_{field.upper()}"


def _class_of(cmd: str) -> Settings:
    for cls, commands in CLASSES:
        if cmd in commands:
            return cls
    raise AssertionError(f"`waypost {cmd}` loads no class listed in waypost.docgen.CLASSES")


def _deployed_classes() -> set[Settings]:
    return {cls for cls, commands in CLASSES if set(commands) - NOT_DEPLOYED}


def _deployed_fields() -> set[str]:
    return {field for cls in _deployed_classes() for field in cls.model_fields}


def _config_schema() -> dict[str, Any]:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    properties: dict[str, Any] = schema["properties"]["config"]["properties"]
    return properties


def _processes(rendered: Rendered) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(object name, command, container) of every Waypost container."""
    for manifest, pod in rendered.workloads():
        for container in pod["containers"]:
            yield manifest["metadata"]["name"], command(container), container


@dataclass(frozen=True)
class Started:
    """A container of the maximal render, started as far as loading its settings."""

    name: str
    command: str
    settings: CommonSettings


@pytest.fixture(scope="module")
def started(maximal_render: Rendered) -> list[Started]:
    """Each container's settings, loaded from its environment and nothing else."""
    loaded = []
    for name, cmd, container in _processes(maximal_render):
        with mock.patch.dict(os.environ, environment(container), clear=True):
            settings = load(_class_of(cmd))  # as the process does in main()
        loaded.append(Started(name, cmd, settings))
    return loaded


def test_the_chart_runs_a_process_of_every_settings_class(maximal_render: Rendered) -> None:
    run = {_class_of(cmd) for _, cmd, _ in _processes(maximal_render)}

    assert run == _deployed_classes()


def test_every_setting_is_set_from_the_maximal_values(started: list[Started]) -> None:
    for process in started:
        cls = type(process.settings)
        given = process.settings.model_fields_set
        unset = set(cls.model_fields) - given - WITHHELD.get(process.command, set())
        names = sorted(_env_name(cls, f) for f in unset)
        assert not names, (
            f"{process.name} (`waypost {process.command}`) cannot be given "
            f"{', '.join(names)} from values: add the setting to config in "
            "values.schema.json (or a value of its own) and set it in "
            "tests/helm/values-maximal.yaml"
        )


def test_withheld_settings_are_really_not_given(started: list[Started]) -> None:
    for process in started:
        withheld = WITHHELD.get(process.command, set())
        assert not process.settings.model_fields_set & withheld, process.name


def test_config_values_reach_the_processes_unchanged(
    started: list[Started], maximal_values: dict[str, Any]
) -> None:
    for process in started:
        for key, raw in maximal_values["config"].items():
            field = type(process.settings).model_fields.get(key)
            if field is None:
                continue  # a setting of another process
            assert field.annotation is not None
            wanted = TypeAdapter(field.annotation).validate_python(raw)
            assert getattr(process.settings, key) == wanted, (process.name, key)


def test_dedicated_values_reach_the_processes(
    started: list[Started], maximal_values: dict[str, Any]
) -> None:
    kafka = maximal_values["kafka"]
    for process in started:
        settings, name = process.settings, process.name
        assert settings.database_url == "<secret wp-database/url>", name
        if process.command == "migrate":
            continue
        assert settings.kafka_bootstrap == kafka["bootstrap"], name
        assert settings.kafka_client_config == {
            **kafka["clientConfig"],
            "sasl.username": "<secret waypost-kafka/user>",
            "sasl.password": "<secret waypost-kafka/pass>",
        }, name
        if process.command == "topics":
            continue
        assert settings.otel_exporter_otlp_endpoint == maximal_values["otel"]["endpoint"]
        assert (settings.otel_service_name or "").startswith("acme-waypost-"), name
        if isinstance(settings, ListenerSettings):
            assert (settings.http_host, settings.http_port) == ("::", 8080)
        else:
            assert (settings.metrics_host, settings.metrics_port) == ("::", 9465), name
        if isinstance(settings, AgentSettings):
            assert settings.agent_instance == "pod-0"
            assert all(str(d).startswith("/etc/waypost/policies/") for d in settings.policy_dirs)
        if isinstance(settings, PlaybookSettings):
            assert all(str(d).startswith("/etc/waypost/playbooks/") for d in settings.playbook_dirs)


def test_config_accepts_exactly_the_settings_without_a_value_of_their_own() -> None:
    fields = _deployed_fields()
    config = set(_config_schema())

    assert config - fields == set(), "config in values.schema.json has keys that are no setting"
    assert fields - config == set(DEDICATED), (
        "settings neither under config in values.schema.json nor with a value of their own"
    )


def test_the_dedicated_values_exist() -> None:
    values = load_values(CHART_DIR / "values.yaml")
    for setting, path in DEDICATED.items():
        node: Any = values
        for key in path.split("."):
            assert isinstance(node, dict), f"{setting}: no value {path}"
            assert key in node, f"{setting}: no value {path}"
            node = node[key]


def _expected_schema(cls: Settings, field: str) -> dict[str, Any]:
    """A setting's JSON schema as the chart states it: the type and limits pydantic
    derives, without what only documents (title, description, default, format), and
    without null (an unset value is simply left out of `config`)."""
    alias = cls.model_fields[field].validation_alias
    key = alias if isinstance(alias, str) else field  # pydantic names aliased fields so
    schema = dict(cls.model_json_schema()["properties"][key])
    for key in ("title", "description", "default", "format"):
        schema.pop(key, None)
    if "anyOf" in schema:
        (kept,) = [s for s in schema.pop("anyOf") if s != {"type": "null"}]
        schema.update(kept)
    return schema


def test_config_types_and_limits_match_the_settings_classes() -> None:
    owners = {f: cls for cls in _deployed_classes() for f in cls.model_fields}
    for key, stated in _config_schema().items():
        expected = _expected_schema(owners[key], key)
        assert stated == expected, (
            f"values.schema.json config.{key} differs from the settings class; it should "
            f"be {json.dumps(expected)}"
        )
