"""Decision logs and the ops server of the processes without an HTTP app."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import Counter

from waypost.errors import ConfigError
from waypost.telemetry import Tracing
from waypost.telemetry.logs import JsonFormatter, TextFormatter, digest, log_decision, summary
from waypost.telemetry.metrics import new_registry
from waypost.telemetry.server import Health, OpsServer


class Capture(logging.Handler):
    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured() -> Iterator[tuple[Capture, Capture]]:
    as_json, as_text = Capture(JsonFormatter("agents")), Capture(TextFormatter("agents"))
    logger = logging.getLogger("waypost.decisions")
    logger.addHandler(as_json)
    logger.addHandler(as_text)
    previous = logger.level
    logger.setLevel(logging.INFO)
    yield as_json, as_text
    logger.setLevel(previous)
    logger.removeHandler(as_json)
    logger.removeHandler(as_text)


def test_a_decision_line_carries_its_fields_and_the_span_it_was_made_in(
    captured: tuple[Capture, Capture],
) -> None:
    as_json, as_text = captured
    tracing = Tracing(TracerProvider())
    with tracing.span("process t") as span:
        log_decision("agent", {"agent": "triage", "confidence": 0.4})
    line = json.loads(as_json.lines[-1])
    context = span.get_span_context()
    assert line["logger"] == "waypost.decisions"
    assert line["process"] == "agents"
    assert line["decision"] == {
        "kind": "agent",
        "agent": "triage",
        "confidence": 0.4,
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
    }
    assert line["trace_id"] == f"{context.trace_id:032x}"
    text = as_text.lines[-1]
    assert " agents INFO waypost.decisions: agent decision {" in text
    assert json.loads(text[text.index("{") :])["agent"] == "triage"


def test_digests_are_canonical_and_summaries_short() -> None:
    assert digest({"b": 1, "a": [1, 2]}) == digest({"a": [1, 2], "b": 1})
    assert digest({"a": 1}) != digest({"a": 2})
    assert digest({}).startswith("sha256:")
    assert summary(["one", "two"]) == "one | two"
    assert len(summary(["x" * 2000])) == 500


def test_the_ops_server_serves_metrics_and_health() -> None:
    registry = new_registry()
    Counter("waypost_test_things", "Things.", registry=registry).inc(3)
    stop = threading.Event()
    health = Health(stop, check=lambda: None)
    server = OpsServer("127.0.0.1", 0, registry, health)
    base = f"http://127.0.0.1:{server.port}"
    try:
        metrics = httpx.get(f"{base}/metrics")
        assert metrics.status_code == 200
        assert "waypost_test_things_total 3.0" in metrics.text
        assert "process_cpu_seconds_total" in metrics.text
        assert httpx.get(f"{base}/healthz").status_code == 200
        starting = httpx.get(f"{base}/readyz")
        assert (starting.status_code, starting.json()["reason"]) == (503, "starting")
        health.mark_ready()
        assert httpx.get(f"{base}/readyz").json() == {"status": "ok"}
        stop.set()
        assert httpx.get(f"{base}/healthz").status_code == 503
        assert httpx.get(f"{base}/nope").status_code == 404
    finally:
        server.close()


def test_a_busy_metrics_port_stops_start_up_naming_the_setting() -> None:
    registry = new_registry()
    first = OpsServer("127.0.0.1", 0, registry, Health(threading.Event()))
    try:
        with pytest.raises(ConfigError, match="WAYPOST_METRICS_PORT"):
            OpsServer("127.0.0.1", first.port, registry, Health(threading.Event()))
    finally:
        first.close()
