"""The agent worker and replayed dead letters: a task an analyst replayed on purpose
(``waypost-replay-of``) runs even after its deadline, because its workflow waits for it."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from tests.waypost.runtime.test_worker import NOW, TOPICS, TRACEPARENT, _only_result, _task, _worker
from waypost.bus.dead_letters import REPLAY_OF_HEADER
from waypost.bus.loop import Delivery
from waypost.bus.records import ReceivedRecord
from waypost.events import Event, Payload, TaskCompleted, default_codec

LATE = (NOW - timedelta(hours=2)).isoformat()


def _replayed(payload: Payload, replay_of: bytes = b"dl-42") -> Delivery:
    """The task as a replay delivers it: its original headers plus ``waypost-replay-of``."""
    encoded = default_codec().encode(
        Event(payload, source="waypost/orchestrator", traceparent=TRACEPARENT)
    )
    headers = (*encoded.headers, (REPLAY_OF_HEADER, replay_of))
    record = ReceivedRecord(TOPICS.tasks("echo"), 0, 7, encoded.key, encoded.value, headers)
    return Delivery(record, default_codec().decode(record.value, record.headers))


def test_a_replayed_task_runs_even_though_its_deadline_passed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    worker, bus = _worker()

    with caplog.at_level(logging.INFO, logger="waypost.runtime.worker"):
        worker.handle([_replayed(_task({"text": "fixed"}, deadline=LATE))])

    result = _only_result(bus)
    assert isinstance(result, TaskCompleted)
    assert (result.task_id, result.attempt, result.output) == (
        "task-1",
        2,
        {"text": "fixed", "attempt": 2},
    )
    assert "past its deadline: it is a replay of dead letter dl-42" in caplog.text


def test_a_replayed_task_within_its_deadline_runs_as_any_task() -> None:
    worker, bus = _worker()

    worker.handle([_replayed(_task({"text": "hi"}))])

    assert isinstance(_only_result(bus), TaskCompleted)
