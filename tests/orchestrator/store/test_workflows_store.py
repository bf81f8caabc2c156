"""Workflow and task rows on the real PostgreSQL, one migrated schema per test.

States are produced by the real state machine from a real playbook, so the round trips
cover exactly what the orchestrator writes: JSONB inputs and outputs, attempt history,
errors and timezone-aware timestamps.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, select

from orchestrator.playbooks.loader import load_text
from orchestrator.store import workflows as store
from orchestrator.store.tables import tasks, workflows
from orchestrator.store.workflows import NewWorkflow
from orchestrator.workflow.machine import Environment, decide, task_id
from orchestrator.workflow.messages import (
    GoalAccepted,
    Input,
    RetryDue,
    TaskAttemptFailed,
    TaskSucceeded,
)
from orchestrator.workflow.state import TaskError, TaskStatus, WorkflowState, WorkflowStatus

pytestmark = pytest.mark.integration

PLAYBOOK = load_text(
    """
type: test.fanout
steps:
  - name: left
    capability: echo
    timeout: 30s
    retries: 1
    backoff: {initial: 1s, max: 2s}
    input: {text: $goal.text, nested: {list: [1, 2.5, "three"], flag: true}}
  - name: right
    capability: echo
    timeout: 10s
    retries: 2
    backoff: {initial: 2s, max: 4s}
    input: {text: $goal.text}
  - name: join
    capability: echo
    depends_on: [left, right]
    input: {left: $steps.left.output, right: $steps.right.output}
output:
  joined: $steps.join.output
""",
    source="test.fanout.yaml",
)
T0 = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
AGENT = {"capability": "echo", "version": "1.0", "instance": "host:1"}
USAGE = {"input_tokens": 12, "output_tokens": 3, "cost_usd": 0.0015, "duration_ms": 42.5}


def at(seconds: float) -> datetime:
    """A moment ``seconds`` after T0."""
    return T0 + timedelta(seconds=seconds)


def environment(now: datetime) -> Environment:
    """A deterministic environment: the retry jitter is always the midpoint."""
    return Environment(playbook=PLAYBOOK, now=now, random=lambda: 0.5)


def accept(
    engine: Engine, workflow_id: str, accepted_at: datetime = T0, goal_type: str = PLAYBOOK.type
) -> None:
    """Record an accepted workflow (of the test playbook unless told otherwise)."""
    with engine.begin() as conn:
        store.insert_accepted(
            conn,
            new=[
                NewWorkflow(
                    workflow_id,
                    goal_type,
                    {"text": f"hello {workflow_id}"},
                    accepted_at,
                    traceparent="00-0123456789abcdef0123456789abcdef-0123456789abcdef-01",
                    tracestate="vendor=value",
                )
            ],
        )


def apply(engine: Engine, workflow_id: str, event: Input, now: datetime) -> WorkflowState:
    """Lock, decide, save (one transaction, as the applier does); the decided state."""
    with engine.begin() as conn:
        before = store.lock(conn, ids=[workflow_id])
        decision = decide(before[workflow_id], event, environment(now))
        assert decision.applied, decision.note
        store.save(conn, before=before, after={workflow_id: decision.state}, now=now)
    return decision.state


def succeeded(workflow_id: str, step: str, attempt: int = 1) -> TaskSucceeded:
    """A result for one attempt of a step."""
    return TaskSucceeded(
        task_id=task_id(workflow_id, step),
        attempt=attempt,
        output={"step": step, "items": [{"id": 1, "score": 0.25}], "none": None},
        confidence=0.875,
        reasoning=("looked at it", "decided"),
        usage=USAGE,
        agent=AGENT,
    )


def load(engine: Engine, workflow_id: str) -> WorkflowState | None:
    """The stored workflow, read back in a fresh transaction."""
    with engine.connect() as conn:
        return store.get(conn, workflow_id=workflow_id)


def updated_at(engine: Engine, workflow_id: str) -> dict[str, datetime]:
    """``updated_at`` of the workflow row (key "") and of each task row (by step)."""
    with engine.connect() as conn:
        stamps = {
            "": conn.execute(
                select(workflows.c.updated_at).where(workflows.c.id == workflow_id)
            ).scalar_one()
        }
        for row in conn.execute(
            select(tasks.c.step, tasks.c.updated_at).where(tasks.c.workflow_id == workflow_id)
        ):
            stamps[row.step] = row.updated_at
    return stamps


@pytest.fixture
def other_connection(engine: Engine) -> Iterator[Connection]:
    """A second connection, for another transaction that holds row locks."""
    with engine.connect() as conn:
        yield conn


# --- insert_accepted -------------------------------------------------------------------


def test_insert_accepted_returns_only_new_ids(engine: Engine) -> None:
    def new(workflow_id: str, text: str) -> NewWorkflow:
        return NewWorkflow(workflow_id, PLAYBOOK.type, {"text": text}, T0)

    with engine.begin() as conn:
        first = store.insert_accepted(conn, new=[new("a", "one"), new("b", "one")])
        second = store.insert_accepted(conn, new=[new("b", "two"), new("c", "two")])
        third = store.insert_accepted(conn, new=[new("a", "three")])
        nothing = store.insert_accepted(conn, new=[])

    assert first == {"a", "b"}
    assert second == {"c"}
    assert third == set()
    assert nothing == set()
    stored = load(engine, "b")
    assert stored is not None
    assert stored.input == {"text": "one"}  # the first goal wins; a repeat changes nothing


def test_insert_accepted_with_one_id_twice_in_a_batch_keeps_the_first(engine: Engine) -> None:
    # A batch from Kafka can hold the same goal twice (a producer retry).
    with engine.begin() as conn:
        created = store.insert_accepted(
            conn,
            new=[
                NewWorkflow("dup", PLAYBOOK.type, {"text": "first"}, T0),
                NewWorkflow("dup", PLAYBOOK.type, {"text": "second"}, T0),
            ],
        )

    assert created == {"dup"}
    stored = load(engine, "dup")
    assert stored is not None
    assert stored.input == {"text": "first"}


def test_an_accepted_workflow_reads_back_as_accepted_without_tasks(engine: Engine) -> None:
    accept(engine, "wf")

    stored = load(engine, "wf")

    assert stored == WorkflowState(
        id="wf",
        type=PLAYBOOK.type,
        status=WorkflowStatus.ACCEPTED,
        input={"text": "hello wf"},
        accepted_at=T0,
        traceparent="00-0123456789abcdef0123456789abcdef-0123456789abcdef-01",
        tracestate="vendor=value",
    )
    assert load(engine, "missing") is None


# --- lock / save round trips -----------------------------------------------------------


def test_lock_and_save_round_trip_every_state_of_a_workflow(engine: Engine) -> None:
    accept(engine, "wf")
    left, right, join = (task_id("wf", s) for s in ("left", "right", "join"))
    steps: list[tuple[Input, datetime]] = [
        (GoalAccepted(), at(1)),
        (succeeded("wf", "left"), at(2)),
        (TaskAttemptFailed(right, 1, TaskError("Timeout", "upstream slow")), at(3)),
        (RetryDue(right), at(10)),
        (succeeded("wf", "right", attempt=2), at(11)),
        (succeeded("wf", "join"), at(12)),
    ]
    seen_statuses = []
    for event, now in steps:
        decided = apply(engine, "wf", event, now)
        with engine.begin() as conn:
            locked = store.lock(conn, ids=["wf"])
        assert locked == {"wf": decided}, f"after {type(event).__name__}"
        assert load(engine, "wf") == decided
        seen_statuses.append({t.step: t.status for t in decided.tasks.values()})

    assert seen_statuses[2]["right"] is TaskStatus.RETRY_WAIT
    final = load(engine, "wf")
    assert final is not None
    assert final.status is WorkflowStatus.COMPLETED
    assert final.output == {"joined": succeeded("wf", "join").output}
    assert final.started_at == at(1)
    assert final.finished_at == at(12)
    assert [t.id for t in final.tasks.values()] == [left, right, join]  # playbook order
    history = final.tasks["right"].attempts
    assert [(a.number, a.outcome) for a in history] == [(1, "failed"), (2, "completed")]
    assert history[0].error == TaskError("Timeout", "upstream slow")
    assert history[0].dispatched_at == at(1)
    assert history[1].dispatched_at == at(10)
    assert final.tasks["left"].usage == USAGE
    assert final.tasks["left"].agent == AGENT
    assert final.tasks["left"].reasoning == ("looked at it", "decided")
    assert final.tasks["join"].input == {
        "left": succeeded("wf", "left").output,
        "right": succeeded("wf", "right").output,
    }


def test_a_failed_workflow_round_trips_its_reason_and_error(engine: Engine) -> None:
    accept(engine, "wf")
    apply(engine, "wf", GoalAccepted(), at(1))
    error = TaskError("BadInput", "cannot parse", retryable=False)

    decided = apply(engine, "wf", TaskAttemptFailed(task_id("wf", "left"), 1, error), at(2))

    stored = load(engine, "wf")
    assert stored == decided
    assert stored.status is WorkflowStatus.FAILED
    assert stored.failed_step == "left"
    assert stored.error == error
    assert stored.reason is not None
    assert "cannot be retried" in stored.reason
    assert stored.tasks["left"].status is TaskStatus.FAILED
    assert stored.tasks["right"].status is TaskStatus.CANCELLED
    assert stored.tasks["right"].attempts[0].outcome == "cancelled"
    assert stored.tasks["join"].status is TaskStatus.CANCELLED


def test_insert_planned_round_trips_and_leaves_existing_ids_alone(engine: Engine) -> None:
    accept(engine, "existing")
    fresh = WorkflowState("fresh", PLAYBOOK.type, WorkflowStatus.ACCEPTED, {"text": "x"}, T0)
    planned = decide(fresh, GoalAccepted(), environment(at(1))).state
    existing_planned = planned.evolve(id="existing")

    with engine.begin() as conn:
        inserted = store.insert_planned(conn, states=[planned, existing_planned], now=at(1))
        assert store.insert_planned(conn, states=[], now=at(1)) == set()

    assert inserted == {"fresh"}
    assert load(engine, "fresh") == planned
    assert set(updated_at(engine, "fresh").values()) == {at(1)}
    untouched = load(engine, "existing")
    assert untouched is not None
    assert untouched.status is WorkflowStatus.ACCEPTED
    assert untouched.tasks == {}


def test_lock_of_nothing_or_unknown_ids_is_empty(engine: Engine) -> None:
    with engine.begin() as conn:
        assert store.lock(conn, ids=[]) == {}
        assert store.lock(conn, ids=["nope"]) == {}


def test_save_writes_only_the_rows_that_changed(engine: Engine) -> None:
    accept(engine, "wf")
    apply(engine, "wf", GoalAccepted(), at(1))
    assert updated_at(engine, "wf") == {"": at(1), "left": at(1), "right": at(1), "join": at(1)}

    # The left task completes; the workflow's own fields do not change.
    apply(engine, "wf", succeeded("wf", "left"), at(2))

    assert updated_at(engine, "wf") == {"": at(1), "left": at(2), "right": at(1), "join": at(1)}

    # Right completes too: join is dispatched, the workflow is still running.
    apply(engine, "wf", succeeded("wf", "right"), at(3))

    assert updated_at(engine, "wf") == {"": at(1), "left": at(2), "right": at(3), "join": at(3)}

    apply(engine, "wf", succeeded("wf", "join"), at(4))

    assert updated_at(engine, "wf") == {"": at(4), "left": at(2), "right": at(3), "join": at(4)}


def test_saving_an_unchanged_state_writes_nothing(engine: Engine) -> None:
    accept(engine, "wf")
    apply(engine, "wf", GoalAccepted(), at(1))

    with engine.begin() as conn:
        states = store.lock(conn, ids=["wf"])
        store.save(conn, before=states, after=dict(states), now=at(99))

    assert set(updated_at(engine, "wf").values()) == {at(1)}


# --- lock_due / lock_stale_accepted ----------------------------------------------------


def _due_fixture(engine: Engine) -> None:
    """lease: lease expired at 31; retry: retry due at 5; fresh: lease running until
    1001; waiting: retry due at 1004; done: completed; accepted: never planned."""
    for workflow_id in ("lease", "retry", "fresh", "waiting", "done", "accepted"):
        accept(engine, workflow_id)
    apply(engine, "lease", GoalAccepted(), at(1))  # left's lease ends at 31, right's at 11
    apply(engine, "lease", succeeded("lease", "right"), at(2))
    apply(engine, "retry", GoalAccepted(), at(1))
    right = task_id("retry", "right")
    apply(engine, "retry", TaskAttemptFailed(right, 1, TaskError("E", "boom")), at(2))
    apply(engine, "retry", succeeded("retry", "left"), at(2))
    apply(engine, "fresh", GoalAccepted(), at(991))
    apply(engine, "waiting", GoalAccepted(), at(1000))
    right = task_id("waiting", "right")
    apply(engine, "waiting", TaskAttemptFailed(right, 1, TaskError("E", "boom")), at(1001))
    apply(engine, "waiting", succeeded("waiting", "left"), at(1001))
    apply(engine, "done", GoalAccepted(), at(1))
    for step in ("left", "right", "join"):
        apply(engine, "done", succeeded("done", step), at(2))


def test_lock_due_finds_expired_leases_and_due_retries(engine: Engine) -> None:
    _due_fixture(engine)
    waiting = load(engine, "waiting")
    assert waiting is not None
    assert waiting.tasks["right"].next_attempt_at == at(1001 + 1.5)  # midpoint jitter of 2 s

    with engine.begin() as conn:
        due_early = store.lock_due(conn, now=at(30), limit=100)
    with engine.begin() as conn:
        due = store.lock_due(conn, now=at(31), limit=100)
    with engine.begin() as conn:
        due_late = store.lock_due(conn, now=at(1003), limit=100)

    assert set(due_early) == {"retry"}
    assert set(due) == {"lease", "retry"}  # a lease expiring exactly now is due
    assert due["lease"] == load(engine, "lease")
    assert set(due_late) == {"lease", "retry", "fresh", "waiting"}


def test_lock_due_skips_workflows_locked_by_another_transaction(
    engine: Engine, other_connection: Connection
) -> None:
    _due_fixture(engine)
    with other_connection.begin():
        store.lock(other_connection, ids=["lease"])  # e.g. the intake is applying a result

        with engine.begin() as conn:
            while_locked = store.lock_due(conn, now=at(31), limit=100)

    with engine.begin() as conn:
        after_release = store.lock_due(conn, now=at(31), limit=100)

    assert set(while_locked) == {"retry"}
    assert set(after_release) == {"lease", "retry"}


def test_lock_due_holds_the_row_locks_until_the_transaction_ends(
    engine: Engine, other_connection: Connection
) -> None:
    _due_fixture(engine)
    with engine.begin() as conn:
        store.lock_due(conn, now=at(31), limit=100)

        with other_connection.begin():
            assert store.lock(other_connection, ids=["lease", "retry"], skip_locked=True) == {}
            # A workflow not due was not locked.
            assert set(store.lock(other_connection, ids=["fresh"], skip_locked=True)) == {"fresh"}


def test_lock_stale_accepted_finds_old_unplanned_goals(
    engine: Engine, other_connection: Connection
) -> None:
    accept(engine, "old-1", at(0))
    accept(engine, "old-2", at(5))
    accept(engine, "locked", at(3))
    accept(engine, "recent", at(100))
    accept(engine, "planned", at(0))
    apply(engine, "planned", GoalAccepted(), at(1))

    with other_connection.begin():
        store.lock(other_connection, ids=["locked"])
        with engine.begin() as conn:
            stale = store.lock_stale_accepted(conn, accepted_before=at(50), limit=10)
        with engine.begin() as conn:
            limited = store.lock_stale_accepted(conn, accepted_before=at(50), limit=1)

    assert list(stale) == ["old-1", "old-2"]  # oldest first
    assert stale["old-1"].status is WorkflowStatus.ACCEPTED
    assert stale["old-1"].tasks == {}
    assert list(limited) == ["old-1"]
    with engine.begin() as conn:
        assert set(store.lock_stale_accepted(conn, accepted_before=at(5), limit=10)) == {
            "old-1",
            "old-2",
            "locked",
        }


def test_count_by_status(engine: Engine) -> None:
    for workflow_id in ("a", "b", "c"):
        accept(engine, workflow_id)
    apply(engine, "a", GoalAccepted(), at(1))

    with engine.connect() as conn:
        counts = store.count_by_status(conn, ids=["a", "b", "c", "unknown"])

    assert counts == {"running": 1, "accepted": 2}


# --- list_page ------------------------------------------------------------------------


def _listing_fixture(engine: Engine) -> list[str]:
    """Nine workflows; three share one accepted_at (ties broken by id). Newest first."""
    moments = {
        "w1": at(1),
        "w2": at(2),
        "w3": at(3),
        "w4a": at(4),
        "w4b": at(4),
        "w4c": at(4),
        "w5": at(5),
        "w6": at(6),
        "x7": at(7),
    }
    for workflow_id, moment in moments.items():
        accept(engine, workflow_id, moment, "other.type" if workflow_id == "x7" else PLAYBOOK.type)
    apply(engine, "w2", GoalAccepted(), at(10))
    apply(engine, "w5", GoalAccepted(), at(10))
    with engine.begin() as conn:
        before = store.lock(conn, ids=["x7"])
        # No playbook for other.type: planning fails the workflow with a reason.
        decision = decide(before["x7"], GoalAccepted(), Environment(None, at(10), lambda: 0.5))
        store.save(conn, before=before, after={"x7": decision.state}, now=at(10))
    return sorted(moments, key=lambda w: (moments[w], w), reverse=True)


def test_list_page_is_newest_first(engine: Engine) -> None:
    newest_first = _listing_fixture(engine)

    with engine.connect() as conn:
        page = store.list_page(conn, limit=50)

    assert [item.id for item in page.items] == newest_first
    assert newest_first[:4] == ["x7", "w6", "w5", "w4c"]
    assert page.next_cursor is None
    x7 = page.items[0]
    assert (x7.type, x7.status, x7.accepted_at) == ("other.type", WorkflowStatus.FAILED, at(7))
    assert x7.finished_at == at(10)
    assert x7.reason is not None
    assert "other.type" in x7.reason


def test_list_page_filters(engine: Engine) -> None:
    _listing_fixture(engine)

    def ids(**filters: str) -> list[str]:
        with engine.connect() as conn:
            return [item.id for item in store.list_page(conn, **filters).items]

    assert ids(status="running") == ["w5", "w2"]
    assert ids(status="failed") == ["x7"]
    assert ids(status="completed") == []
    assert ids(goal_type="other.type") == ["x7"]
    assert len(ids(goal_type=PLAYBOOK.type)) == 8
    assert ids(goal_id="w4b") == ["w4b"]
    assert ids(goal_id="w4b", status="running") == []
    assert ids(goal_type=PLAYBOOK.type, status="accepted") == [
        "w6",
        "w4c",
        "w4b",
        "w4a",
        "w3",
        "w1",
    ]


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 8, 9])
def test_cursor_pagination_returns_every_row_exactly_once(engine: Engine, limit: int) -> None:
    newest_first = _listing_fixture(engine)

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        with engine.connect() as conn:
            page = store.list_page(conn, limit=limit, cursor=cursor)
        pages += 1
        assert len(page.items) <= limit
        seen += [item.id for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
        assert pages <= len(newest_first), "pagination does not end"

    assert seen == newest_first
    assert pages == -(-len(newest_first) // limit)  # no empty trailing page


def test_cursor_pagination_keeps_the_filter(engine: Engine) -> None:
    _listing_fixture(engine)

    seen: list[str] = []
    cursor: str | None = None
    while True:
        with engine.connect() as conn:
            page = store.list_page(conn, status="accepted", limit=4, cursor=cursor)
        seen += [item.id for item in page.items]
        if (cursor := page.next_cursor) is None:
            break

    assert seen == ["w6", "w4c", "w4b", "w4a", "w3", "w1"]


def test_decode_cursor_reads_back_a_cursor_of_list_page(engine: Engine) -> None:
    _listing_fixture(engine)
    with engine.connect() as conn:
        page = store.list_page(conn, limit=3)

    assert page.next_cursor is not None
    assert store.decode_cursor(page.next_cursor) == (at(5), "w5")  # the last item shown


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "!!!",
        "not a cursor",
        "abc",  # bad base64 padding
        _b64(b"no separator"),
        _b64(b"yesterday|w1"),
        _b64(b"\xff\xfe|w1"),
    ],
    ids=["empty", "punctuation", "words", "padding", "no-separator", "no-date", "not-utf8"],
)
def test_decode_cursor_rejects_garbage(garbage: str) -> None:
    with pytest.raises(ValueError, match="invalid cursor"):
        store.decode_cursor(garbage)
