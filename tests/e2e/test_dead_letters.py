"""Dead letters end to end: real orchestrator, agents, indexer and HTTP app processes on
the real broker and PostgreSQL, driven through the `waypost dlq` CLI as an analyst
would drive them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from orchestrator.dead_letters.records import REPLAY_COUNT, REPLAY_OF
from orchestrator.workflow.state import TaskStatus, WorkflowStatus
from tests.e2e.conftest import ROOT, Platform
from tests.waiting import wait_for
from waypost.bus.dead_letters import HEADER_PREFIX
from waypost.bus.kafka import KafkaBus
from waypost.bus.records import OutgoingRecord
from waypost.events import Event, GoalSubmitted, default_codec
from waypost.stack.broker import EmbeddedBroker
from waypost.stack.process import free_port

pytestmark = pytest.mark.e2e


class Console:
    """The HTTP app of a platform, and the CLI pointed at it."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.port = free_port()
        platform.env_overrides["WAYPOST_HTTP_PORT"] = str(self.port)
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = ""

    def start(self) -> None:
        self.platform.start("http", "serve")
        self.token = self.platform.api_token()
        wait_for(self._ready, timeout=60, what="the HTTP app")

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`waypost ARGS...` against this app, as the analyst's terminal runs it."""
        env = {
            **self.platform.env(),
            "WAYPOST_HTTP_URL": self.url,
            "WAYPOST_API_TOKEN": self.token,
        }
        done = subprocess.run(
            [sys.executable, "-m", "waypost", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check:
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    def dead_letters(self, *filters: str) -> list[dict[str, Any]]:
        listed = json.loads(self.cli("dlq", "ls", "--json", "--status", "any", *filters).stdout)
        items: list[dict[str, Any]] = listed["items"]
        return items


@pytest.fixture
def console(platform: Platform) -> Console:
    return Console(platform)


@pytest.mark.slow  # 15-20 s: `make test-slow` (CI runs it)
def test_a_poison_task_is_dead_lettered_after_its_attempts_and_blocks_nothing(
    platform: Platform, console: Console
) -> None:
    platform.start_orchestrator()
    platform.start_agents()
    platform.start("indexer", "indexer", "run")
    console.start()

    poison = platform.submit("test.echo", {"text": "poison", "fail": "retryable"})
    behind = [platform.submit("test.echo", {"text": f"behind {n}"}) for n in range(20)]

    wait_for(
        lambda: platform.statuses([*behind, poison]) == {"completed": 20, "failed": 1},
        timeout=90,
        what="the poison task to fail and the others to complete",
    )
    state = platform.workflow(poison)
    assert state is not None
    task = state.tasks["echo"]
    assert (task.status, task.attempt) == (TaskStatus.FAILED, 3)  # retries: 2
    dead = wait_for(lambda: console.dead_letters(f"--workflow={poison}"), what="the dead letter")
    assert len(dead) == 1
    assert (dead[0]["attempts"], dead[0]["reason"]) == (3, "exhausted")
    assert dead[0]["error_class"] == "RuntimeError"
    shown = json.loads(console.cli("dlq", "show", str(dead[0]["id"]), "--json").stdout)
    headers = {h["name"]: h["value"] for h in shown["headers"]}
    assert headers["waypost-attempt"] == "3"
    assert headers["waypost-task-id"] == task.id
    assert headers["ce_type"] == "waypost.task.dispatched"
    # The dead letter is the dispatch the agent received, byte for byte.
    (dispatched,) = [
        r
        for r in platform.read_topic(platform.topics.tasks("echo"), expect=23)
        if r.header("waypost-task-id") == task.id.encode() and r.header("waypost-attempt") == b"3"
    ]
    kept = [(h["name"], h["value"]) for h in shown["headers"]]
    assert [(n, v) for n, v in kept if not n.startswith(HEADER_PREFIX)] == [
        (n, v.decode()) for n, v in dispatched.headers
    ]
    assert shown["value"] == (dispatched.value or b"").decode()
    # Nothing waits behind it: every dispatched task has its result.
    with platform.engine.connect() as conn:
        busy = conn.execute(
            text("SELECT count(*) FROM tasks WHERE status IN ('dispatched', 'retry_wait')")
        ).scalar_one()
    assert busy == 0
    assert platform.outbox_backlog() == 0


@pytest.mark.slow  # 10-12 s: `make test-slow` (CI runs it)
def test_a_workflow_failed_by_a_bad_input_completes_after_an_edited_replay(
    platform: Platform, console: Console, tmp_path: Path
) -> None:
    platform.start_orchestrator()
    platform.start_agents()
    platform.start("indexer", "indexer", "run")
    console.start()

    workflow_id = platform.submit("test.echo", {"text": "hello", "fail": "permanent"})
    wait_for(
        lambda: platform.statuses([workflow_id]) == {"failed": 1},
        timeout=60,
        what="the workflow to fail",
    )
    failed = platform.workflow(workflow_id)
    assert failed is not None
    assert "dead-lettered" in (failed.reason or "")
    (dead,) = wait_for(
        lambda: console.dead_letters(f"--workflow={workflow_id}"), what="the dead letter"
    )
    shown = json.loads(console.cli("dlq", "show", str(dead["id"]), "--json").stdout)
    fixed = shown["payload"]
    fixed["input"]["fail"] = None
    edit = tmp_path / "fixed.json"
    edit.write_text(json.dumps(fixed))

    dry = console.cli("dlq", "replay", str(dead["id"]), "--edit", str(edit), "--dry-run")
    assert "1 sent" in dry.stdout
    assert "nothing was sent" in dry.stdout
    assert platform.statuses([workflow_id]) == {"failed": 1}
    replayed = console.cli("dlq", "replay", str(dead["id"]), "--edit", str(edit))
    assert "1 sent" in replayed.stdout

    wait_for(
        lambda: platform.statuses([workflow_id]) == {"completed": 1},
        timeout=60,
        what="the workflow to complete after the replay",
    )
    done = platform.workflow(workflow_id)
    assert done is not None
    assert done.status is WorkflowStatus.COMPLETED
    assert done.tasks["echo"].output == {"text": "hello", "attempt": 1}  # the replayed attempt
    again = console.cli("dlq", "replay", str(dead["id"]), "--edit", str(edit))
    assert "0 sent, 1 already replayed" in again.stdout


@pytest.mark.slow
def test_dead_letters_survive_a_broker_restart_and_a_race_replays_once(
    platform: Platform, console: Console, own_broker: EmbeddedBroker
) -> None:
    platform.bootstrap = own_broker.bootstrap
    KafkaBus(own_broker.bootstrap, platform.settings()).admin().ensure_topics(
        platform.topics.specs(["echo"], platform.settings())
    )
    # The orchestrator's relay sends what the app could not (its producer's first batch
    # after the restart times out: the broker forgot the producer id).
    platform.start_orchestrator()
    platform.start("indexer", "indexer", "run")
    console.start()
    goals = platform.topics.goals
    encoded = default_codec().encode(
        Event(GoalSubmitted(type="test.echo", input={"text": "kept"}), source="test")
    )
    failure = (
        (f"{HEADER_PREFIX}source-topic", goals.encode()),
        (f"{HEADER_PREFIX}error-class", b"OperationalError"),
        (f"{HEADER_PREFIX}error-message", b"the database was down"),
        (f"{HEADER_PREFIX}attempts", b"3"),
    )
    platform.publish(
        [
            OutgoingRecord(
                platform.topics.dlq(goals), encoded.key, encoded.value, encoded.headers + failure
            )
        ]
    )
    (dead,) = wait_for(lambda: console.dead_letters(), timeout=30, what="the dead letter")

    assert own_broker.process is not None
    own_broker.process.send_signal(signal.SIGKILL)
    own_broker.process.wait(10)
    own_broker.start()  # same port, empty: no topics, no records

    assert [d["id"] for d in console.dead_letters("--error", "OperationalError")] == [dead["id"]]
    headers = {"Authorization": f"Bearer {console.token}"}

    def replay(request_id: str) -> httpx.Response:
        body = {"ids": [dead["id"]], "request_id": request_id}
        return httpx.post(f"{console.url}/api/v1/dlq/replays", json=body, headers=headers)

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(replay, ["race-a", "race-b"]))
    assert [a.status_code for a in answers] == [202, 202]

    def finished() -> list[dict[str, Any]] | None:
        states = [
            httpx.get(f"{console.url}/api/v1/dlq/replays/{r}", headers=headers).json()
            for r in ("race-a", "race-b")
        ]
        return states if all(s["state"] == "done" for s in states) else None

    states = wait_for(finished, timeout=60, what="both replays to finish")
    assert sorted((s["counts"]["sent"], s["counts"]["noop"]) for s in states) == [(0, 1), (1, 0)]
    (record,) = platform.read_topic(goals, expect=1, timeout_s=60)
    assert record.value == encoded.value
    assert record.header(REPLAY_OF) == str(dead["id"]).encode()
    assert record.header(REPLAY_COUNT) == b"1"
    shown = json.loads(console.cli("dlq", "show", str(dead["id"]), "--json").stdout)
    assert sorted(r["outcome"] for r in shown["replays"]) == ["noop", "sent"]
