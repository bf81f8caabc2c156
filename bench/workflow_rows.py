"""A million workflows for bench/console.py, bulk-loaded with COPY into a fresh schema.

The mix looks like a busy installation's last 90 days: eight goal types, most workflows
completed, some failed or cancelled, the last few minutes still running, a tenth started
by another workflow's event (the goal input's ``_trigger`` record), and inputs with a
subject, a body, a customer and an amount. The workflow table's indexes are dropped
before the load and built after it (as migration 0019 defines them: the metadata's
``Index`` entries), then the table is vacuumed and analysed, as autovacuum would have.
Some workflows get their tasks too, so a workflow's page has steps to show.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg
from sqlalchemy import Engine, text

from orchestrator.store.tables import tasks, workflows

GOAL_TYPES = (  # (type, share, steps)
    ("support.ticket", 30, ("classify", "draft", "send")),
    ("bench.review", 15, ("draft",)),
    ("billing.refund", 12, ("check", "refund", "notify")),
    ("order.fulfil", 12, ("reserve", "ship", "notify")),
    ("kyc.check", 8, ("collect", "verify")),
    ("report.weekly", 8, ("gather", "write")),
    ("cascade.followup", 10, ("follow_up",)),
    ("lead.enrich", 5, ("lookup", "score")),
)
TRIGGERS = (  # (event type, source) of the events that start triggered workflows
    ("waypost.workflow.completed", "waypost/orchestrator"),
    ("waypost.workflow.failed", "waypost/orchestrator"),
    ("shop.order.created", "shop/orders"),
    ("crm.lead.created", "crm/leads"),
)
SUBJECTS = (
    "Charged twice for my order",
    "Cannot log in after the update",
    "Parcel arrived damaged",
    "Refund for a cancelled subscription",
    "App crashes when I open settings",
    "Change my plan to annual",
    "Invoice missing for March",
    "Password reset loop",
    "Wrong size delivered",
    "Voucher code not accepted",
)
PRODUCTS = tuple(f"{a}{b}" for a in ("kettle", "router", "camera", "boiler") for b in range(250))
REASONS = (
    "step draft failed: TimeoutError: no result within 30s",
    "step check failed: ValueError: amount is negative",
    "rejected by reviewer: the tone is wrong",
)
DAYS = 90
TASK_SAMPLE = 20  # one workflow in this many gets its tasks


@dataclass(frozen=True, slots=True)
class Loaded:
    """What was loaded: ids to ask for, and the words a text search finds."""

    count: int
    with_tasks: list[str]
    rare_word: str  # in about one workflow in a thousand
    failed_type: str
    now: datetime


def load(engine: Engine, *, count: int, now: datetime, seed: int = 3) -> Loaded:
    """COPY ``count`` workflows (and the tasks of some) into the engine's schema, then
    build the workflow indexes, vacuum and analyse."""
    rng = random.Random(seed)
    started = time.monotonic()
    with engine.begin() as conn:
        for index in workflows.indexes:
            index.drop(conn)
    with_tasks: list[tuple[str, str]] = []
    with engine.begin() as conn:
        raw: Any = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        columns = (
            "id, type, status, input, reason, accepted_at, started_at, finished_at, updated_at"
        )
        task_columns = (
            "id, workflow_id, step, position, capability, status, attempt, max_attempts, "
            "input, output, attempts, finished_at, updated_at"
        )
        with raw.cursor() as cursor:
            with cursor.copy(f"COPY workflows ({columns}) FROM STDIN") as copy:
                for block, sampled in _blocks(rng, count, now):
                    copy.write(block)
                    with_tasks += sampled
            with cursor.copy(f"COPY tasks ({task_columns}) FROM STDIN") as copy:
                for workflow_id, goal_type in with_tasks:
                    copy.write(_task_lines(workflow_id, goal_type, now))
    _progress(f"copied {count} workflows in {time.monotonic() - started:.0f} s")
    started = time.monotonic()
    with engine.begin() as conn:
        conn.execute(text("SET maintenance_work_mem = '256MB'"))
        for index in workflows.indexes:
            index.create(conn)
    _progress(f"built {len(workflows.indexes)} indexes in {time.monotonic() - started:.0f} s")
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text(f"VACUUM ANALYZE {workflows.name}"))
        conn.execute(text(f"VACUUM ANALYZE {tasks.name}"))
    return Loaded(count, [w for w, _ in with_tasks], PRODUCTS[7], "billing.refund", now)


def _blocks(
    rng: random.Random, count: int, now: datetime
) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """COPY text in blocks of 10,000 rows, with (id, type) of the block's workflows
    that get their tasks."""
    weights = [share for _, share, _ in GOAL_TYPES]
    lines: list[str] = []
    sampled: list[tuple[str, str]] = []
    for number in range(count):
        goal_type, _, _ = rng.choices(GOAL_TYPES, weights)[0]
        workflow_id = f"{rng.getrandbits(128):032x}"
        if goal_type == "cascade.followup":
            workflow_id = f"cascade-{workflow_id}"
        accepted = now - timedelta(seconds=rng.random() * DAYS * 86400)
        status, started, finished, reason = _outcome(rng, now, accepted)
        goal_input: dict[str, Any] = {
            "subject": f"{rng.choice(SUBJECTS)} ({rng.choice(PRODUCTS)})",
            "body": "Hello, please have a look at my account.",
            "customer": f"cus_{rng.randrange(200_000):06d}",
            "amount": rng.randrange(1, 2000),
        }
        if goal_type == "cascade.followup" or rng.random() < 0.02:
            event_type, source = rng.choice(TRIGGERS)
            goal_input["_trigger"] = {
                "event_id": f"{rng.getrandbits(64):016x}",
                "event_type": event_type,
                "source": source,
                "topic": "workflow.events" if source.startswith("waypost") else "shop.events",
                "depth": 1,
            }
        lines.append(
            "\t".join(
                (
                    workflow_id,
                    goal_type,
                    status,
                    orjson.dumps(goal_input).decode(),
                    reason or r"\N",
                    accepted.isoformat(),
                    started.isoformat() if started else r"\N",
                    finished.isoformat() if finished else r"\N",
                    (finished or started or accepted).isoformat(),
                )
            )
        )
        if number % TASK_SAMPLE == 0:
            sampled.append((workflow_id, goal_type))
        if len(lines) == 10_000:
            yield "\n".join(lines) + "\n", sampled
            lines, sampled = [], []
            if number % 100_000 == 99_999:
                _progress(f"  {number + 1}/{count}")
    if lines:
        yield "\n".join(lines) + "\n", sampled


def _outcome(
    rng: random.Random, now: datetime, accepted: datetime
) -> tuple[str, datetime | None, datetime | None, str | None]:
    """(status, started, finished, reason) of a workflow accepted at ``accepted``."""
    started = accepted + timedelta(milliseconds=rng.randrange(5, 2000))
    runs = timedelta(seconds=rng.expovariate(1 / 120))
    if now - accepted < timedelta(minutes=10):
        status = rng.choices(("accepted", "planning", "running", "completed"), (1, 1, 6, 4))[0]
    else:
        status = rng.choices(("completed", "failed", "cancelled", "running"), (90, 6, 3, 1))[
            0
        ]  # running for long: waiting for a reviewer
    if status in ("accepted", "planning"):
        return status, None, None, None
    if status == "running":
        return status, started, None, None
    finished = min(started + runs, now)
    if status == "failed":
        return status, started, finished, rng.choice(REASONS)
    if status == "cancelled":
        return status, started, finished, "cancelled by ada: duplicate"
    return status, started, finished, None


def _task_lines(workflow_id: str, goal_type: str, now: datetime) -> str:
    """The COPY text of a workflow's tasks, all completed, one attempt each."""
    steps = next(s for t, _, s in GOAL_TYPES if t == goal_type)
    moment = now.isoformat()
    attempt = {"number": 1, "dispatched_at": moment, "finished_at": moment}
    attempts = orjson.dumps([{**attempt, "outcome": "completed", "error": None}]).decode()
    return "".join(
        "\t".join(
            (
                f"{workflow_id}:{step}",
                workflow_id,
                step,
                str(position),
                f"bench-{step}",
                "completed",
                "1",
                "3",
                '{"subject": "Charged twice"}',
                '{"text": "Done."}',
                attempts,
                moment,
                moment,
            )
        )
        + "\n"
        for position, step in enumerate(steps)
    )


def _progress(message: str) -> None:
    print(message, file=sys.stderr)
