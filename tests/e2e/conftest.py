"""End-to-end fixtures: real `waypost` processes on the real broker and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from orchestrator.store import workflows as workflow_rows
from orchestrator.workflow.state import WorkflowState
from waypost.bus.kafka import KafkaBus
from waypost.bus.records import OutgoingRecord, ReceivedRecord
from waypost.events import Event, GoalSubmitted, default_codec, new_id
from waypost.settings import CommonSettings
from waypost.stack.postgres import EmbeddedPostgres
from waypost.stack.process import spawn, stop
from waypost.topics import Topics

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "tests" / "support" / "playbooks"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """Remember each phase's outcome on the item, so fixtures can show logs on failure."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


@dataclass
class Platform:
    """Waypost processes of one test, and helpers to drive and observe them."""

    bootstrap: str
    database_url: str
    schema: str
    namespace: str
    engine: Engine
    logs: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def topics(self) -> Topics:
        """This test's topic names."""
        return Topics(self.namespace)

    def env(self) -> dict[str, str]:
        """Environment of this test's processes."""
        return {
            **os.environ,
            "WAYPOST_KAFKA_BOOTSTRAP": self.bootstrap,
            "WAYPOST_DATABASE_URL": self.database_url,
            "WAYPOST_DATABASE_SCHEMA": self.schema,
            "WAYPOST_NAMESPACE": self.namespace,
            "WAYPOST_DATA_DIR": str(self.logs),
            "WAYPOST_PLAYBOOK_DIRS": str(PLAYBOOKS),
            "WAYPOST_KAFKA_SESSION_TIMEOUT_MS": "2000",
            "WAYPOST_RECONCILE_INTERVAL_S": "0.5",
            "WAYPOST_TOPIC_CHECK_INTERVAL_S": "1",
            "WAYPOST_GOAL_REPLAN_AFTER_S": "3",
            "WAYPOST_RELAY_GRACE_S": "1",
            "WAYPOST_LOG_LEVEL": "INFO",
            "PYTHONPATH": str(ROOT),
            **self.env_overrides,
        }

    def start(
        self, name: str, *args: str, metrics_port: int | None = None
    ) -> subprocess.Popen[bytes]:
        """Run `waypost ARGS...` as a child process named ``name`` (serving /metrics on
        ``metrics_port`` if given)."""
        env = self.env()
        if metrics_port is not None:
            env["WAYPOST_METRICS_PORT"] = str(metrics_port)
        with (self.logs / f"{name}.log").open("ab") as log:
            process = spawn([sys.executable, "-m", "waypost", *args], log=log, env=env, cwd=ROOT)
        self.processes[name] = process
        return process

    def start_orchestrator(self, name: str = "orchestrator") -> subprocess.Popen[bytes]:
        """An orchestrator process."""
        return self.start(name, "orchestrator", "run")

    def start_agents(
        self, name: str = "agents", module: str = "tests.support.agents"
    ) -> subprocess.Popen[bytes]:
        """An agent worker process."""
        return self.start(name, "agent", "run", module)

    def kill(self, name: str) -> None:
        """SIGKILL a process (no clean shutdown)."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop_all(self) -> None:
        """SIGTERM every process, by PID."""
        for process in reversed(list(self.processes.values())):
            stop(process, timeout=20)
        self.processes.clear()

    def submit(self, goal_type: str, goal_input: dict[str, Any], goal_id: str | None = None) -> str:
        """Produce a goal.submitted event straight to Kafka (as any client could)."""
        event = Event(
            GoalSubmitted(type=goal_type, input=goal_input), source="test", id=goal_id or new_id()
        )
        encoded = default_codec().encode(event)
        self.publish(
            [OutgoingRecord(self.topics.goals, encoded.key, encoded.value, encoded.headers)]
        )
        return event.id

    def publish(self, records: Sequence[OutgoingRecord]) -> None:
        """Publish raw records."""
        publisher = KafkaBus(self.bootstrap, self.settings()).publisher("test")
        publisher.send(records).raise_for_failures()
        publisher.close()

    def settings(self) -> CommonSettings:
        """Settings for in-test clients."""
        return CommonSettings(
            kafka_bootstrap=self.bootstrap,
            namespace=self.namespace,
            kafka_session_timeout_ms=2000,
        )

    def workflow(self, workflow_id: str) -> WorkflowState | None:
        """A workflow as stored."""
        with self.engine.connect() as conn:
            return workflow_rows.get(conn, workflow_id=workflow_id)

    def statuses(self, ids: Sequence[str]) -> dict[str, int]:
        """How many of these workflows are in each status."""
        with self.engine.connect() as conn:
            return workflow_rows.count_by_status(conn, ids=ids)

    def api_token(self, role: str = "admin") -> str:
        """A bearer token for this test's HTTP app."""
        from review_ui.auth import store as auth_store
        from review_ui.auth.roles import Role

        with self.engine.begin() as conn:
            secret, _ = auth_store.create_token(conn, name=f"test-{role}", role=Role(role))
        return secret

    def outbox_backlog(self) -> int:
        """Rows waiting in the outbox."""
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM outbox")).scalar_one())

    def read_topic(self, topic: str, *, expect: int, timeout_s: float = 20) -> list[ReceivedRecord]:
        """Every record of a topic, once at least ``expect`` arrived (a fresh group)."""
        from tests.waiting import wait_for

        subscriber = KafkaBus(self.bootstrap, self.settings()).subscriber(
            f"{self.namespace}.reader.{new_id()[:8]}", [topic], "test-reader"
        )
        records: list[ReceivedRecord] = []
        try:

            def enough() -> bool:
                records.extend(subscriber.poll(500, 0.2))
                return len(records) >= expect

            wait_for(enough, timeout=timeout_s, what=f"{expect} record(s) on {topic}")
            records.extend(subscriber.poll(500, 0.5))  # and anything right behind them
        finally:
            subscriber.close()
        return records


@pytest.fixture
def platform(
    request: pytest.FixtureRequest,
    broker: Any,
    postgres: EmbeddedPostgres,
    schema: str,
    namespace: str,
    engine: Engine,
    tmp_path: Path,
) -> Iterator[Platform]:
    """Waypost processes for one test; stopped afterwards, logs shown if the test failed."""
    running = Platform(broker.bootstrap, postgres.url(), schema, namespace, engine, tmp_path)
    yield running
    running.stop_all()
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for log in sorted(tmp_path.glob("*.log")):
            print(f"\n===== {log.name} =====\n{log.read_text(errors='replace')[-6000:]}")
