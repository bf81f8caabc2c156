"""Settings from WAYPOST_* variables; every bad value becomes a ConfigError naming its variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from waypost.errors import ConfigError
from waypost.settings import (
    AgentSettings,
    CommonSettings,
    HttpSettings,
    OrchestratorSettings,
    StackSettings,
    load,
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read the real environment: start every test from none of ours."""
    for name in list(os.environ):
        if name.startswith("WAYPOST_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = load(CommonSettings)

    assert settings.data_dir == Path(".waypost")
    assert (settings.kafka_bootstrap, settings.database_url) == (None, None)
    assert (settings.namespace, settings.database_schema) == ("waypost", "waypost")
    assert settings.topic_partitions == 4
    assert settings.topic_partition_overrides == {}
    assert settings.kafka_client_config == {}
    assert settings.kafka_fetch_wait_max_ms == 50
    assert settings.log_level == "INFO"


def test_values_come_from_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYPOST_KAFKA_BOOTSTRAP", "broker:9092")
    monkeypatch.setenv("WAYPOST_DATABASE_URL", "postgresql://u:p@db/w")
    monkeypatch.setenv("WAYPOST_NAMESPACE", "team-a")
    monkeypatch.setenv("WAYPOST_TOPIC_PARTITIONS", "12")
    monkeypatch.setenv("WAYPOST_DATA_DIR", "/srv/waypost")
    monkeypatch.setenv("WAYPOST_LOG_LEVEL", "DEBUG")

    settings = load(CommonSettings)

    assert settings.kafka_bootstrap == "broker:9092"
    assert settings.database_url == "postgresql://u:p@db/w"
    assert settings.namespace == "team-a"
    assert settings.topic_partitions == 12
    assert settings.data_dir == Path("/srv/waypost")
    assert settings.log_level == "DEBUG"


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYPOST_NAMESPACE", "from-env")

    assert load(CommonSettings, namespace="explicit").namespace == "explicit"


def test_settings_are_frozen() -> None:
    settings = load(CommonSettings)

    with pytest.raises(ValueError, match="frozen"):
        settings.namespace = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a, b ,c", [Path("a"), Path("b"), Path("c")]),
        ("single", [Path("single")]),
        (" , ,", []),
        ('["x", "y,z"]', [Path("x"), Path("y,z")]),
    ],
)
def test_playbook_dirs_are_comma_separated_or_json(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: list[Path]
) -> None:
    monkeypatch.setenv("WAYPOST_PLAYBOOK_DIRS", value)

    assert load(OrchestratorSettings).playbook_dirs == expected
    assert load(HttpSettings).playbook_dirs == expected


def test_agent_modules_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYPOST_AGENT_MODULES", "agents.triage,tests.support.agents")

    assert load(StackSettings).agent_modules == ["agents.triage", "tests.support.agents"]


def test_dict_settings_are_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYPOST_TOPIC_PARTITION_OVERRIDES", '{"tasks.triage": 8}')
    monkeypatch.setenv(
        "WAYPOST_KAFKA_CLIENT_CONFIG", '{"security.protocol": "SASL_SSL", "retries": 5}'
    )

    settings = load(CommonSettings)

    assert settings.topic_partition_overrides == {"tasks.triage": 8}
    # librdkafka properties are strings, whatever JSON type they were written as.
    assert settings.kafka_client_config == {"security.protocol": "SASL_SSL", "retries": "5"}


def _config_error(cls: type[CommonSettings] = CommonSettings) -> str:
    with pytest.raises(ConfigError) as caught:
        load(cls)
    return str(caught.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WAYPOST_TOPIC_PARTITIONS", "0"),
        ("WAYPOST_TOPIC_PARTITIONS", "many"),
        ("WAYPOST_TOPIC_PARTITIONS", "2000"),
        ("WAYPOST_NAMESPACE", "Upper"),
        ("WAYPOST_NAMESPACE", "has.dot"),
        ("WAYPOST_NAMESPACE", "1starts-with-digit"),
        ("WAYPOST_DATABASE_SCHEMA", "drop table"),
        ("WAYPOST_DATABASE_SCHEMA", "Waypost"),
        ("WAYPOST_KAFKA_FETCH_WAIT_MAX_MS", "9"),
        ("WAYPOST_KAFKA_SESSION_TIMEOUT_MS", "999"),
        ("WAYPOST_CONSUME_BATCH_SIZE", "0"),
        ("WAYPOST_LOG_LEVEL", "TRACE"),
        ("WAYPOST_TOPIC_PARTITION_OVERRIDES", '{"tasks.triage": "lots"}'),
    ],
)
def test_a_bad_value_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    message = _config_error()

    assert message.startswith("invalid setting:")
    assert f"{variable}: " in message


def test_the_message_shows_the_bad_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYPOST_DATABASE_SCHEMA", "my-schema")

    message = _config_error()

    assert "must be a lower-case SQL identifier such as 'waypost'" in message
    assert "(got 'my-schema')" in message


def test_every_bad_value_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYPOST_TOPIC_PARTITIONS", "0")
    monkeypatch.setenv("WAYPOST_NAMESPACE", "Bad")

    message = _config_error()

    assert "WAYPOST_TOPIC_PARTITIONS" in message
    assert "WAYPOST_NAMESPACE" in message


def test_the_fetch_wait_minimum_is_ten_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYPOST_KAFKA_FETCH_WAIT_MAX_MS", "10")

    assert load(CommonSettings).kafka_fetch_wait_max_ms == 10


@pytest.mark.parametrize("schema", ["waypost", "_private", "tenant_42"])
def test_valid_schema_identifiers(monkeypatch: pytest.MonkeyPatch, schema: str) -> None:
    monkeypatch.setenv("WAYPOST_DATABASE_SCHEMA", schema)

    assert load(CommonSettings).database_schema == schema


def test_a_bad_json_list_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYPOST_PLAYBOOK_DIRS", "[not json")

    assert "WAYPOST_PLAYBOOK_DIRS: " in _config_error(OrchestratorSettings)


@pytest.mark.parametrize(
    "variable", ["WAYPOST_KAFKA_CLIENT_CONFIG", "WAYPOST_TOPIC_PARTITION_OVERRIDES"]
)
def test_malformed_json_in_a_dict_setting_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "security.protocol=SASL_SSL")

    assert f"{variable}" in _config_error()


def test_process_settings_have_their_own_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYPOST_AGENT_MAX_LOCAL_ATTEMPTS", "3")
    monkeypatch.setenv("WAYPOST_HTTP_PORT", "9000")
    monkeypatch.setenv("WAYPOST_RETRY_BACKOFF_MAX_S", "5")

    assert load(AgentSettings).agent_max_local_attempts == 3
    assert load(HttpSettings).http_port == 9000
    assert load(OrchestratorSettings).retry_backoff_max_s == 5.0
    assert load(StackSettings).http_port == 9000


@pytest.mark.parametrize(
    ("cls", "variable", "value"),
    [
        (AgentSettings, "WAYPOST_AGENT_MAX_LOCAL_ATTEMPTS", "0"),
        (HttpSettings, "WAYPOST_HTTP_PORT", "70000"),
        (OrchestratorSettings, "WAYPOST_RECONCILE_INTERVAL_S", "0"),
    ],
)
def test_process_settings_check_their_fields(
    monkeypatch: pytest.MonkeyPatch, cls: type[CommonSettings], variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    assert f"{variable}: " in _config_error(cls)
