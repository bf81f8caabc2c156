"""stack.json: how commands find the stack that `waypost up` started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from waypost import endpoints
from waypost.endpoints import Endpoints
from waypost.errors import ConfigError, StackNotFound
from waypost.settings import CommonSettings

ENDPOINTS = Endpoints(
    kafka_bootstrap="127.0.0.1:9092",
    database_url="postgresql://waypost@127.0.0.1:5432/waypost",
    http_url="http://127.0.0.1:8000",
    pid=os.getpid(),
)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _settings(data_dir: Path, **values: str) -> CommonSettings:
    return CommonSettings(data_dir=data_dir, **values)  # type: ignore[arg-type]


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    path = endpoints.write(tmp_path, ENDPOINTS)

    assert path == tmp_path / "stack.json"
    assert json.loads(path.read_text())["kafka_bootstrap"] == "127.0.0.1:9092"
    assert endpoints.read(tmp_path) == ENDPOINTS
    assert not (tmp_path / "stack.tmp").exists()


def test_write_replaces_an_earlier_file(tmp_path: Path) -> None:
    endpoints.write(tmp_path, Endpoints("old:1", "postgresql://old", "http://old"))

    endpoints.write(tmp_path, ENDPOINTS)

    assert endpoints.read(tmp_path) == ENDPOINTS


def test_an_endpoint_without_a_pid_is_trusted(tmp_path: Path) -> None:
    unsupervised = Endpoints("k:1", "postgresql://d", "http://h")
    endpoints.write(tmp_path, unsupervised)

    assert endpoints.read(tmp_path) == unsupervised


def test_a_stack_whose_process_is_gone_is_not_running(tmp_path: Path) -> None:
    endpoints.write(tmp_path, Endpoints("k:1", "postgresql://d", "http://h", pid=_dead_pid()))

    assert endpoints.read(tmp_path) is None


def test_no_file_means_no_stack(tmp_path: Path) -> None:
    assert endpoints.read(tmp_path) is None


@pytest.mark.parametrize("content", ["{not json", "[]", '{"kafka_bootstrap": "k"}', '{"x": 1}'])
def test_a_damaged_file_means_no_stack(tmp_path: Path, content: str) -> None:
    (tmp_path / "stack.json").write_text(content)

    assert endpoints.read(tmp_path) is None


def test_remove_forgets_the_stack_and_tolerates_a_missing_file(tmp_path: Path) -> None:
    endpoints.write(tmp_path, ENDPOINTS)

    endpoints.remove(tmp_path)
    endpoints.remove(tmp_path)

    assert endpoints.read(tmp_path) is None


def test_resolve_falls_back_to_the_running_stack(tmp_path: Path) -> None:
    endpoints.write(tmp_path, ENDPOINTS)

    resolved = endpoints.resolve(
        _settings(tmp_path), need=("kafka_bootstrap", "database_url", "http_url")
    )

    assert resolved == ENDPOINTS


def test_resolve_prefers_explicit_settings(tmp_path: Path) -> None:
    endpoints.write(tmp_path, ENDPOINTS)
    settings = _settings(tmp_path, kafka_bootstrap="remote:9093")

    resolved = endpoints.resolve(settings, need=("kafka_bootstrap",), http_url="http://x:1")

    assert resolved.kafka_bootstrap == "remote:9093"
    assert resolved.database_url == ENDPOINTS.database_url
    assert resolved.http_url == "http://x:1"


def test_resolve_needs_no_stack_when_settings_say_everything(tmp_path: Path) -> None:
    settings = _settings(tmp_path, kafka_bootstrap="k:1", database_url="postgresql://d")

    resolved = endpoints.resolve(settings, need=("kafka_bootstrap", "database_url"))

    assert resolved == Endpoints("k:1", "postgresql://d", "", None)


def test_without_a_stack_resolve_names_the_variables_to_set(tmp_path: Path) -> None:
    with pytest.raises(StackNotFound) as caught:
        endpoints.resolve(_settings(tmp_path), need=("kafka_bootstrap", "database_url"))

    message = str(caught.value)
    assert "WAYPOST_KAFKA_BOOTSTRAP or WAYPOST_DATABASE_URL" in message
    assert str(tmp_path / "stack.json") in message
    assert "waypost up" in message
    assert "WAYPOST_DATA_DIR" in message
    assert isinstance(caught.value, ConfigError)


def test_resolve_names_only_what_is_missing(tmp_path: Path) -> None:
    settings = _settings(tmp_path, kafka_bootstrap="k:1")

    with pytest.raises(StackNotFound) as caught:
        endpoints.resolve(settings, need=("kafka_bootstrap", "database_url"))

    assert "set WAYPOST_DATABASE_URL." in str(caught.value)
    assert "WAYPOST_KAFKA_BOOTSTRAP" not in str(caught.value)


def test_a_stale_stack_is_not_used(tmp_path: Path) -> None:
    endpoints.write(tmp_path, Endpoints("k:1", "postgresql://d", "http://h", pid=_dead_pid()))

    with pytest.raises(StackNotFound):
        endpoints.resolve(_settings(tmp_path), need=("database_url",))
