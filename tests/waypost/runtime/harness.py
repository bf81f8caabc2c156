"""Running agents on the real broker and PostgreSQL inside a test: dispatch tasks, read
results, and see what the agent group left uncommitted."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from tests.waiting import wait_for
from waypost.bus.kafka import KafkaAdmin, KafkaBus, KafkaPublisher, KafkaSubscriber
from waypost.bus.records import OutgoingRecord, ReceivedRecord
from waypost.events import Event, TaskDispatched, default_codec, utcnow
from waypost.runtime.main import WorkerEnvironment, serve
from waypost.sdk import Agent
from waypost.settings import AgentSettings
from waypost.topics import Topics


class RecordingBus:
    """A Kafka bus that keeps the subscribers it made, by group, to look at their
    rebalances (the cancellation listener has a group of its own)."""

    def __init__(self, inner: KafkaBus) -> None:
        self.inner = inner
        self.subscribers: list[KafkaSubscriber] = []
        self.groups: dict[str, list[KafkaSubscriber]] = {}

    def publisher(self, client_id: str) -> KafkaPublisher:
        return self.inner.publisher(client_id)

    def subscriber(self, group: str, topics: Sequence[str], client_id: str) -> KafkaSubscriber:
        made = self.inner.subscriber(group, topics, client_id)
        self.subscribers.append(made)
        self.groups.setdefault(group, []).append(made)
        return made

    def admin(self) -> KafkaAdmin:
        return self.inner.admin()


@dataclass
class AgentRun:
    """Agents served in a thread (``serve``, as `waypost agent run` does), plus a client
    side that dispatches tasks and reads results."""

    settings: AgentSettings
    agents: Sequence[Agent[Any, Any]]
    instance: str = "test-worker"
    stop: threading.Event = field(default_factory=threading.Event)
    exit_code: list[int] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _results: KafkaSubscriber | None = None
    received: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        assert self.settings.kafka_bootstrap is not None
        self.bus = KafkaBus(self.settings.kafka_bootstrap, self.settings)
        self.served = RecordingBus(self.bus)
        self.topics = Topics(self.settings.namespace)
        self.environment = WorkerEnvironment(
            self.settings, self.settings.database_url, self.instance
        )
        capabilities = [agent.capability for agent in self.agents]
        self.bus.admin().ensure_topics(self.topics.specs(capabilities, self.settings))

    def start(self) -> None:
        """Serve the agents in a thread until ``finish``."""

        def run() -> None:
            self.exit_code.append(
                serve(
                    self.agents,
                    bus=self.served,
                    settings=self.settings,
                    environment=self.environment,
                    stop=self.stop,
                )
            )

        self._thread = threading.Thread(target=run, name="agent-run", daemon=True)
        self._thread.start()

    def finish(self, timeout_s: float = 60.0) -> int:
        """Ask the agents to stop (as SIGTERM does) and wait until ``serve`` returned."""
        self.stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            assert not self._thread.is_alive(), "serve() did not return"
        self.environment.close()
        return self.exit_code[0] if self.exit_code else 0

    def close(self) -> None:
        """Release the result reader (and stop the agents if still running)."""
        if not self.stop.is_set():
            self.finish()
        if self._results is not None:
            self._results.close()

    def dispatch(self, capability: str, *tasks: tuple[str, int, dict[str, Any]]) -> None:
        """Publish (task id, attempt, input) tasks, as the orchestrator's relay would."""
        records = []
        for task_id, attempt, task_input in tasks:
            payload = TaskDispatched(
                workflow_id=f"wf-{task_id}",
                task_id=task_id,
                step="step",
                capability=capability,
                attempt=attempt,
                goal_type="test.runtime",
                input=task_input,
                deadline=(utcnow() + timedelta(minutes=5)).isoformat(),
            )
            encoded = default_codec().encode(Event(payload, source="test"))
            records.append(
                OutgoingRecord(
                    self.topics.tasks(capability), encoded.key, encoded.value, encoded.headers
                )
            )
        publisher = self.bus.publisher("test-dispatch")
        try:
            publisher.send(records).raise_for_failures()
        finally:
            publisher.close()

    def results(self, count: int, *, timeout: float = 60.0) -> list[Event]:
        """Every result received so far, waiting until there are at least ``count``."""
        if self._results is None:
            self._results = self.bus.subscriber(
                f"{self.topics.namespace}.check-{uuid.uuid4().hex[:6]}",
                [self.topics.results],
                "test-results",
            )
        reader = self._results

        def enough() -> bool:
            for record in reader.poll(100, 0.2):
                self.received.append(default_codec().decode(record.value, record.headers))
            return len(self.received) >= count

        wait_for(enough, timeout=timeout, interval=0, what=f"{count} result(s)")
        return list(self.received)

    def leftovers(self, capability: str, *, timeout: float = 60.0) -> list[ReceivedRecord]:
        """What a new member of the capability's group receives (the uncommitted tasks),
        up to a marker record published now; call after ``finish``."""
        marker = OutgoingRecord(self.topics.tasks(capability), b"marker", b"marker")
        member = self.bus.subscriber(
            self.topics.agent_group(capability), [self.topics.tasks(capability)], "test-after"
        )
        try:
            publisher = self.bus.publisher("test-marker")
            try:
                publisher.send([marker]).raise_for_failures()
            finally:
                publisher.close()
            found: list[ReceivedRecord] = []

            def marker_seen() -> bool:
                found.extend(member.poll(100, 0.2))
                return any(record.value == b"marker" for record in found)

            wait_for(marker_seen, timeout=timeout, interval=0, what="the marker record")
        finally:
            member.close()
        return [record for record in found if record.value != b"marker"]


def task_ids(records: Sequence[ReceivedRecord]) -> list[tuple[str, int]]:
    """(task id, attempt) of task records."""
    found = []
    for record in records:
        task = default_codec().decode(record.value, record.headers).payload
        assert isinstance(task, TaskDispatched)
        found.append((task.task_id, task.attempt))
    return found


def payloads(events: Sequence[Event], kind: type[Any]) -> list[Any]:
    """The payloads of one type."""
    return [event.payload for event in events if isinstance(event.payload, kind)]
