"""The agent registry: rows in PostgreSQL (``waypost.agent_registry``), the heartbeat that keeps
them fresh, and `waypost agents ls` (through GET /api/v1/agents) on a running worker."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner, Result
from pydantic import BaseModel
from sqlalchemy import Engine, text

from orchestrator.playbooks.registry import PlaybookRegistry
from review_ui.app import create_app
from review_ui.auth import store as auth_store
from review_ui.auth.roles import Role
from tests.waiting import wait_for
from tests.waypost.runtime.harness import AgentRun
from waypost import NonRetryableError, agent, agent_registry
from waypost.agent_registry import AgentInstance, Announcement, Counters
from waypost.bus.kafka import KafkaBus
from waypost.cli.agents import age
from waypost.cli.main import main
from waypost.db import make_engine
from waypost.outages import Outages
from waypost.runtime.heartbeat import Heartbeat
from waypost.settings import AgentSettings, HttpSettings
from waypost.stack.broker import EmbeddedBroker
from waypost.stack.postgres import EmbeddedPostgres
from waypost.stack.process import free_port

pytestmark = pytest.mark.integration


def _announcement(capability: str = "triage", instance: str = "host-1:42") -> Announcement:
    return Announcement(
        capability=capability,
        instance=instance,
        version="1.2",
        description="Sorts tickets.",
        input_schema={"type": "object", "properties": {"subject": {"type": "string"}}},
        output_schema={"type": "object"},
        concurrency=4,
        host="host-1",
        pid=42,
        heartbeat_interval_s=5.0,
    )


def _rows(engine: Engine, **filters: Any) -> list[AgentInstance]:
    with engine.begin() as connection:
        return agent_registry.list_instances(connection, **filters)


# --- the table ------------------------------------------------------------------------------


def test_an_announced_worker_is_listed_up_with_its_schemas(engine: Engine) -> None:
    with engine.begin() as connection:
        agent_registry.announce(connection, announcement=_announcement(), counters=Counters())

    (row,) = _rows(engine)

    assert (row.capability, row.instance, row.version, row.host, row.pid) == (
        "triage",
        "host-1:42",
        "1.2",
        "host-1",
        42,
    )
    assert row.input_schema["properties"] == {"subject": {"type": "string"}}
    assert (row.concurrency, row.description) == (4, "Sorts tickets.")
    assert row.status == "up"
    assert 0 <= row.heartbeat_age_s < 5
    assert row.stopped_at is None
    assert (row.tasks_completed, row.tasks_failed, row.tasks_per_min) == (0, 0, 0.0)


def test_a_beat_updates_the_counters_and_a_stop_hides_the_row(engine: Engine) -> None:
    with engine.begin() as connection:
        agent_registry.announce(connection, announcement=_announcement(), counters=Counters())
        assert agent_registry.beat(
            connection,
            capability="triage",
            instance="host-1:42",
            counters=Counters(completed=7, failed=2, per_min=30.0),
        )
    (running,) = _rows(engine)
    with engine.begin() as connection:
        agent_registry.beat(
            connection,
            capability="triage",
            instance="host-1:42",
            counters=Counters(completed=9, failed=2, per_min=30.0),
            stopped=True,
        )

    assert (running.tasks_completed, running.tasks_failed, running.tasks_per_min) == (7, 2, 30.0)
    assert _rows(engine) == []
    (stopped,) = _rows(engine, include_stopped=True)
    assert stopped.status == "stopped"
    assert (stopped.tasks_completed, stopped.tasks_per_min) == (9, 0.0)


def test_a_beat_for_a_missing_row_says_so(engine: Engine) -> None:
    with engine.begin() as connection:
        assert not agent_registry.beat(
            connection, capability="triage", instance="nobody", counters=Counters()
        )


def test_announcing_again_replaces_the_row_and_forgets_long_gone_workers(
    engine: Engine,
) -> None:
    with engine.begin() as connection:
        agent_registry.announce(connection, announcement=_announcement(), counters=Counters(5, 1))
        agent_registry.announce(
            connection, announcement=_announcement(instance="gone:1"), counters=Counters()
        )
        agent_registry.beat(
            connection, capability="triage", instance="host-1:42", counters=Counters(), stopped=True
        )
        connection.execute(
            text(
                "UPDATE agent_instances SET last_heartbeat = now() - interval '2 days' "
                "WHERE instance = 'gone:1'"
            )
        )
        agent_registry.announce(connection, announcement=_announcement(), counters=Counters())

    (row,) = _rows(engine, include_stopped=True)
    assert (row.instance, row.status, row.tasks_completed) == ("host-1:42", "up", 0)


def test_a_worker_silent_for_three_intervals_is_stale(engine: Engine) -> None:
    with engine.begin() as connection:
        agent_registry.announce(connection, announcement=_announcement(), counters=Counters())
        connection.execute(
            text("UPDATE agent_instances SET last_heartbeat = now() - interval '16 seconds'")
        )

    (row,) = _rows(engine)

    assert row.status == "stale"
    assert row.heartbeat_age_s >= 16


def test_rows_are_filtered_by_capability_and_sorted(engine: Engine) -> None:
    with engine.begin() as connection:
        for capability, instance in (("triage", "b"), ("reply", "a"), ("triage", "a")):
            agent_registry.announce(
                connection,
                announcement=_announcement(capability, instance),
                counters=Counters(),
            )

    assert [(r.capability, r.instance) for r in _rows(engine)] == [
        ("reply", "a"),
        ("triage", "a"),
        ("triage", "b"),
    ]
    assert [r.instance for r in _rows(engine, capability="triage")] == ["a", "b"]


# --- the heartbeat --------------------------------------------------------------------------


@dataclass
class FakeWorker:
    """A worker's counters (what the heartbeat reads)."""

    completed: int = 0
    failed: int = 0


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_heartbeat_announces_then_counts_and_measures_the_recent_rate(
    engine: Engine,
) -> None:
    worker, clock = FakeWorker(), Clock()
    heartbeat = Heartbeat(engine, [(_announcement(), worker)], interval_s=5.0, clock=clock)

    assert heartbeat.beat()
    worker.completed, worker.failed, clock.now = 25, 5, 130.0
    assert heartbeat.beat()
    (row,) = _rows(engine)
    # A minute on, the window starts at the second beat: 120 results in 60 s.
    worker.completed, clock.now = 145, 190.0
    heartbeat.beat()
    (later,) = _rows(engine)

    assert (row.tasks_completed, row.tasks_failed, row.tasks_per_min) == (25, 5, 60.0)
    assert later.tasks_per_min == 120.0


def test_the_heartbeat_announces_a_row_that_went_missing(engine: Engine) -> None:
    heartbeat = Heartbeat(engine, [(_announcement(), FakeWorker())], interval_s=5.0)
    heartbeat.beat()
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM agent_instances"))

    heartbeat.beat()

    assert [r.instance for r in _rows(engine)] == ["host-1:42"]


def test_an_unreachable_database_is_reported_once_and_the_heartbeat_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nowhere = make_engine(
        f"postgresql://nobody@127.0.0.1:{free_port()}/none", schema="none", pool_size=1
    )
    outages = Outages()
    heartbeat = Heartbeat(
        nowhere, [(_announcement(), FakeWorker())], interval_s=5.0, outages=outages
    )
    try:
        with caplog.at_level(logging.WARNING):
            assert not heartbeat.beat()
            assert not heartbeat.beat()
    finally:
        nowhere.dispose()

    assert caplog.text.count("database unreachable, retrying until it is back") == 1
    assert (outages.reason() or "").startswith("database unreachable")


def test_a_schema_without_the_registry_table_says_to_migrate(
    postgres: EmbeddedPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    unmigrated = make_engine(postgres.url(), schema="never_migrated", pool_size=1)
    heartbeat = Heartbeat(unmigrated, [(_announcement(), FakeWorker())], interval_s=5.0)
    try:
        with caplog.at_level(logging.WARNING, logger="waypost.runtime.heartbeat"):
            assert not heartbeat.beat()
    finally:
        unmigrated.dispose()

    assert "run `waypost migrate`" in caplog.text


# --- a running worker and `waypost agents ls` -----------------------------------------------


class Ticket(BaseModel):
    subject: str
    fail: bool = False


class Sorted(BaseModel):
    queue: str


@agent("sorter", version="3", description="Puts tickets in queues.", concurrency=2)
def sorter(ticket: Ticket) -> Sorted:
    if ticket.fail:
        raise NonRetryableError("cannot sort this one")
    return Sorted(queue="billing")


@pytest.fixture
def api_url(
    make_settings: Callable[..., Any], engine: Engine, broker: EmbeddedBroker
) -> Iterator[str]:
    """The HTTP app on this test's schema, served by uvicorn on a free port."""
    settings: HttpSettings = make_settings(HttpSettings)
    app = create_app(
        settings,
        engine=engine,
        admin=KafkaBus(broker.bootstrap, settings).admin(),
        playbooks=PlaybookRegistry.load(),
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="http", daemon=True)
    thread.start()
    wait_for(lambda: server.started, what="the HTTP app")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def waypost(engine: Engine, api_url: str, tmp_path: Path) -> Callable[..., Result]:
    """Run a `waypost` command against the HTTP app, as a reviewer."""
    with engine.begin() as connection:
        token, _ = auth_store.create_token(connection, name="cli", role=Role.REVIEWER)
    env = {
        "WAYPOST_HTTP_URL": api_url,
        "WAYPOST_API_TOKEN": token,
        "WAYPOST_DATA_DIR": str(tmp_path),
    }

    def run(*args: str) -> Result:
        return CliRunner(env=env).invoke(main, list(args))

    return run


def test_a_running_worker_is_listed_with_its_heartbeat_and_throughput(
    make_settings: Callable[..., Any], engine: Engine, waypost: Callable[..., Result]
) -> None:
    settings = make_settings(AgentSettings, topic_partitions=1, agent_heartbeat_interval_s=0.2)
    run = AgentRun(settings, [sorter], instance="box-7:1234")
    try:
        run.start()
        wait_for(lambda: _rows(engine), what="the worker's announcement")
        first_beat = _rows(engine)[0].last_heartbeat
        run.dispatch(
            "sorter",
            *((f"t-{i}", 1, {"subject": "refund", "fail": i == 0}) for i in range(5)),
        )
        wait_for(
            lambda: [r for r in _rows(engine) if r.tasks_completed + r.tasks_failed == 5],
            what="the heartbeat to report five results",
        )
        listed = waypost("agents", "ls")
        as_json = waypost("agents", "ls", "--json")
        assert run.finish() == 0
        stopped = waypost("agents", "ls")
        everything = waypost("agents", "ls", "--all", "--capability", "sorter")
    finally:
        run.close()

    assert listed.exit_code == 0, listed.output
    header, line = listed.output.splitlines()
    assert header.split() == [
        "CAPABILITY",
        "VERSION",
        "INSTANCE",
        "STATUS",
        "HEARTBEAT",
        "CONC",
        "DONE",
        "FAILED",
        "TASKS/MIN",
        "AVG/MIN",
    ]
    cells = line.split()
    assert cells[:4] == ["sorter", "3", "box-7:1234", "up"]
    assert re.fullmatch(r"\d+s", cells[4])  # seconds ago, not minutes
    assert cells[5] == "ago"
    assert cells[6:9] == ["2", "4", "1"]
    assert float(cells[10]) > 0  # tasks per minute
    (item,) = json.loads(as_json.output)["items"]
    assert item["status"] == "up"
    assert (item["tasks_completed"], item["tasks_failed"]) == (4, 1)
    assert item["tasks_per_min"] > 0
    assert item["input_schema"]["required"] == ["subject"]
    assert item["output_schema"]["properties"]["queue"]["type"] == "string"
    assert (item["description"], item["concurrency"]) == ("Puts tickets in queues.", 2)
    assert item["instance"] == "box-7:1234"
    assert item["last_heartbeat"] > first_beat.isoformat()
    assert stopped.output == "no agent workers running (--all for stopped)\n"
    assert everything.output.splitlines()[1].split()[3] == "stopped"


def test_ages_read_like_a_person_would_say_them() -> None:
    assert [age(s) for s in (0.4, 59, 61, 3599, 7300, 200000)] == [
        "0s ago",
        "59s ago",
        "1m ago",
        "59m ago",
        "2h ago",
        "2d ago",
    ]
