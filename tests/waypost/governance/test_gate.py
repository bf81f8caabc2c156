"""Deciding and recording: one suite for the PostgreSQL ``Gate`` (a freshly migrated
schema per test) and the in-memory ``MemoryGate``, then what only the database does:
the audit rows, exact limits under concurrent workers, the database clock, pruning."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, event, func, select, text

from tests.waiting import wait_for
from waypost.governance import (
    Gate,
    Governor,
    MemoryGate,
    Policies,
    Proposal,
    Spend,
    Window,
    load_text,
    repository,
)
from waypost.governance.tables import agent_actions, agent_spend, policy_decisions
from waypost.outages import prune_every

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

POLICY = """\
name: reply
version: 5
applies_to: {agents: [reply]}
actions:
  allow: [send_email, search_kb, refund]
require_approval: [refund]
rate_limits:
  - {action: send_email, limit: 3, per: 1m}
  - {action: "*", limit: 100, per: 1h}
budgets:
  per_day: {tokens: 1000}
  per_workflow: {cost_usd: 1}
"""
RULES = Policies((load_text(POLICY, source="policies/reply.yaml"),))


@dataclass
class Clock:
    """The time the gate sees; tests move it."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


GateFactory = Callable[..., Governor]


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.integration)])
def make_gate(request: pytest.FixtureRequest) -> GateFactory:
    """Build a gate of this parameter's kind over some policies and a clock."""

    def build(policies: Policies = RULES, clock: Clock | None = None) -> Governor:
        if request.param == "memory":
            return MemoryGate(policies, clock=clock)
        engine: Engine = request.getfixturevalue("engine")
        return Gate(engine, policies, clock=clock)

    return build


def propose(action: str = "send_email", **fields: object) -> Proposal:
    values: dict[str, object] = {"agent": "reply", "capability": "reply", "action": action}
    values.update(fields)
    return Proposal(**values)  # type: ignore[arg-type]


# --- the same behaviour in memory and on PostgreSQL -----------------------------------------


def test_a_rate_window_counts_allowed_actions_and_frees_up_after_the_window(
    make_gate: GateFactory,
) -> None:
    clock = Clock()
    gate = make_gate(clock=clock)

    outcomes = [gate.decide(propose()).outcome for _ in range(4)]
    clock.now = T0 + timedelta(seconds=59)
    still_full = gate.decide(propose())
    clock.now = T0 + timedelta(seconds=60)  # the first three were at T0: out of the window
    freed = gate.decide(propose())

    assert outcomes == ["allow", "allow", "allow", "deny"]
    assert still_full.cause == "rate_limit"
    assert freed.outcome == "allow"


def test_refused_and_unapproved_actions_are_not_counted(make_gate: GateFactory) -> None:
    gate = make_gate(clock=Clock())

    for _ in range(5):
        assert gate.decide(propose("wire_money")).cause == "not_allowed"
        assert gate.decide(propose("refund")).outcome == "require_approval"

    assert [gate.decide(propose()).outcome for _ in range(3)] == ["allow"] * 3


def test_an_approved_action_is_allowed_and_counted(make_gate: GateFactory) -> None:
    gate = make_gate(clock=Clock())

    decision = gate.decide(propose("refund", approved_by="alice"))

    assert (decision.outcome, decision.cause) == ("allow", "approved")


def test_estimated_spend_is_reserved_and_budgets_stop_at_the_limit(
    make_gate: GateFactory,
) -> None:
    gate = make_gate(clock=Clock())
    search = propose("search_kb", estimate=Spend(tokens=400))

    first, second, third = (gate.decide(search) for _ in range(3))

    assert first.notices == ()
    assert [(n.level, n.crossed) for n in second.notices] == [("warning", True)]  # 800
    assert third.cause == "budget"  # 800 + 400 > 1000
    assert gate.decide(propose("search_kb", estimate=Spend(tokens=200))).outcome == "allow"
    assert gate.decide(propose("search_kb")).cause == "budget"  # 1000 of 1000: spent


def test_the_daily_budget_starts_again_on_the_next_utc_day(make_gate: GateFactory) -> None:
    clock = Clock(datetime(2030, 1, 1, 23, 59, tzinfo=UTC))
    gate = make_gate(clock=clock)
    gate.decide(propose("search_kb", estimate=Spend(tokens=1000)))
    assert gate.decide(propose("search_kb")).cause == "budget"

    clock.now = datetime(2030, 1, 2, 0, 0, tzinfo=UTC)

    assert gate.decide(propose("search_kb")).outcome == "allow"


def test_a_workflow_budget_is_kept_per_workflow(make_gate: GateFactory) -> None:
    gate = make_gate(clock=Clock())
    costly = Spend(cost_usd=0.6)

    assert gate.decide(propose("search_kb", workflow_id="w1", estimate=costly)).allowed
    assert gate.decide(propose("search_kb", workflow_id="w1", estimate=costly)).cause == "budget"
    assert gate.decide(propose("search_kb", workflow_id="w2", estimate=costly)).allowed


def test_usage_recorded_afterwards_counts_and_crosses_each_level_once(
    make_gate: GateFactory,
) -> None:
    gate = make_gate(clock=Clock())

    def record(tokens: int) -> list[tuple[str, str]]:
        notices = gate.record_usage(
            agent="reply", capability="reply", workflow_id="w1", spend=Spend(tokens=tokens)
        )
        return [(n.level, n.period) for n in notices if n.crossed]

    assert record(500) == []
    assert record(400) == [("warning", "day")]
    assert record(50) == []
    assert record(100) == [("exhausted", "day")]
    assert gate.decide(propose("search_kb")).cause == "budget"


def test_an_agent_without_policies_is_allowed_and_still_audited(make_gate: GateFactory) -> None:
    gate = make_gate(clock=Clock())

    decision = gate.decide(propose(agent="triage", capability="triage"))

    assert (decision.outcome, decision.cause, decision.rule) == ("allow", "no_policy", None)
    assert decision.audit_id is not None


# --- PostgreSQL only ------------------------------------------------------------------------


@pytest.mark.integration
def test_every_decision_is_audited_with_its_rule_version_and_context(engine: Engine) -> None:
    gate = Gate(engine, RULES, clock=Clock())
    proposal = propose(
        workflow_id="w1",
        task_id="t1",
        params_digest="ab" * 32,
        params_size=120,
        scopes=frozenset({"crm.contacts"}),
        estimate=Spend(tokens=10, cost_usd=0.25),
    )

    allowed = gate.decide(proposal)
    refused = gate.decide(propose("wire_money", workflow_id="w1"))

    with engine.connect() as connection:
        rows = repository.decisions(connection=connection, workflow_id="w1")
    newest, oldest = rows
    assert oldest.id == allowed.audit_id
    assert newest.id == refused.audit_id
    assert (oldest.at, oldest.agent, oldest.capability, oldest.action) == (
        T0,
        "reply",
        "reply",
        "send_email",
    )
    assert (oldest.workflow_id, oldest.task_id, oldest.outcome, oldest.cause) == (
        "w1",
        "t1",
        "allow",
        "allowed",
    )
    assert (oldest.policy, oldest.policy_file, oldest.policy_version, oldest.rule) == (
        "reply",
        "policies/reply.yaml",
        5,
        "actions.allow",
    )
    assert oldest.policy_digest == RULES.policies[0].digest
    assert oldest.reason == allowed.reason
    assert oldest.context_digest == allowed.context_digest
    assert oldest.detail["params_digest"] == "ab" * 32
    assert oldest.detail["scopes"] == ["crm.contacts"]
    assert oldest.detail["estimate"] == {"tokens": 10, "cost_usd": 0.25}
    assert oldest.detail["recent"] == [
        {"action": "*", "seconds": 3600.0, "count": 0},
        {"action": "send_email", "seconds": 60.0, "count": 0},
    ]
    assert oldest.detail["rule_line"] == 5
    assert (newest.outcome, newest.cause, newest.rule) == ("deny", "not_allowed", "actions.allow")
    with engine.connect() as connection:
        actions = connection.execute(select(agent_actions)).all()
        spend = connection.execute(select(agent_spend).order_by(agent_spend.c.period_kind)).all()
    assert [(a.action, a.at, a.workflow_id, a.task_id, a.decision_id) for a in actions] == [
        ("send_email", T0, "w1", "t1", allowed.audit_id)
    ]
    assert [(s.period_kind, s.period, s.tokens, s.cost_usd) for s in spend] == [
        ("day", "2030-01-01", 10, Decimal("0.25")),
        ("workflow", "w1", 10, Decimal("0.25")),
    ]


@pytest.mark.integration
def test_the_context_is_read_in_one_statement_with_exact_window_edges(engine: Engine) -> None:
    now = T0
    with engine.begin() as connection:
        connection.execute(
            agent_actions.insert(),
            [
                {"agent": "reply", "capability": "reply", "action": action, "at": at}
                for action, at in [
                    ("send_email", now - timedelta(seconds=60)),  # on the open end: out
                    ("send_email", now - timedelta(seconds=59)),
                    ("send_email", now),
                    ("search_kb", now - timedelta(minutes=30)),
                    ("search_kb", now + timedelta(seconds=1)),  # later than now: out
                ]
            ]
            + [{"agent": "other", "capability": "x", "action": "send_email", "at": now}],
        )
        repository.add_spend(
            connection=connection,
            agent="reply",
            day="2030-01-01",
            workflow_id="w1",
            spend=Spend(7, 0.5),
            now=now,
        )
    statements: list[str] = []

    with engine.connect() as connection:

        def count(*args: object) -> None:
            statements.append(str(args[2]))

        event.listen(connection, "before_cursor_execute", count)
        context = repository.read_context(
            connection=connection,
            proposal=propose(workflow_id="w1"),
            windows=[Window("send_email", 60.0), Window("*", 3600.0)],
            now=now,
            day="2030-01-01",
        )

    assert len(statements) == 1
    assert context.recent == {Window("send_email", 60.0): 2, Window("*", 3600.0): 4}
    assert context.spent_today == Spend(7, 0.5)
    assert context.spent_in_workflow == Spend(7, 0.5)


@pytest.mark.integration
def test_a_rate_limit_holds_exactly_under_four_concurrent_workers(engine: Engine) -> None:
    limit = 7
    document = f"""\
version: 1
applies_to: {{agents: [reply]}}
rate_limits: [{{action: send_email, limit: {limit}, per: 1h}}]
budgets: {{per_day: {{tokens: 100000}}}}
"""
    gate = Gate(engine, Policies((load_text(document),)))  # the database's clock
    start = threading.Barrier(4)
    outcomes: list[str] = []
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            for _ in range(10):
                decision = gate.decide(propose(estimate=Spend(tokens=1)))
                outcomes.append(decision.outcome)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert outcomes.count("allow") == limit
    assert outcomes.count("deny") == 40 - limit
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(agent_actions)).scalar() == limit
        assert connection.execute(select(agent_spend.c.tokens)).scalar() == limit
        audited = connection.execute(
            select(policy_decisions.c.outcome, func.count()).group_by(policy_decisions.c.outcome)
        ).all()
    assert dict(audited) == {"allow": limit, "deny": 40 - limit}


@pytest.mark.integration
def test_a_budget_holds_exactly_under_four_concurrent_workers(engine: Engine) -> None:
    document = """\
version: 1
applies_to: "*"
budgets: {per_workflow: {cost_usd: 1.0}}
"""
    gate = Gate(engine, Policies((load_text(document),)))
    start = threading.Barrier(4)
    allowed: list[bool] = []

    def worker() -> None:
        start.wait()
        for _ in range(5):
            proposal = propose(workflow_id="w1", estimate=Spend(cost_usd=0.1))
            allowed.append(gate.decide(proposal).allowed)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert allowed.count(True) == 10
    with engine.connect() as connection:
        spent = connection.execute(
            select(agent_spend.c.cost_usd).where(agent_spend.c.period_kind == "workflow")
        ).scalar_one()
    assert spent == Decimal("1.0")


@pytest.mark.integration
def test_without_an_injected_clock_decisions_take_the_database_time(engine: Engine) -> None:
    with engine.connect() as connection:
        before = connection.execute(text("SELECT clock_timestamp()")).scalar_one()

    decision = Gate(engine, RULES).decide(propose())

    assert before <= decision.at <= datetime.now(UTC) + timedelta(seconds=5)


@pytest.mark.integration
def test_actions_older_than_the_longest_window_are_pruned(engine: Engine) -> None:
    clock = Clock()
    gate = Gate(engine, RULES, clock=clock)
    gate.decide(propose("search_kb"))
    clock.now = T0 + timedelta(minutes=30)
    gate.decide(propose("search_kb"))

    clock.now = T0 + timedelta(hours=1, seconds=1)
    assert gate.prune() == 1
    assert gate.prune(keep=timedelta(minutes=1)) == 1
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(agent_actions)).scalar() == 0
        # The audit trail is not pruned with the counters.
        assert connection.execute(select(func.count()).select_from(policy_decisions)).scalar() == 2


@pytest.mark.integration
def test_agent_workers_prune_the_counters_on_a_schedule(engine: Engine) -> None:
    clock = Clock()
    gate = Gate(engine, RULES, clock=clock)
    gate.decide(propose("search_kb"))
    clock.now = T0 + timedelta(hours=2)
    stop = threading.Event()
    pruning = threading.Thread(target=prune_every, args=(0.05, stop, gate.prune, "counters"))
    pruning.start()

    def counters() -> int:
        with engine.connect() as connection:
            return int(
                connection.execute(select(func.count()).select_from(agent_actions)).scalar_one()
            )

    try:
        wait_for(lambda: counters() == 0, timeout=10, what="the counters to be pruned")
    finally:
        stop.set()
        pruning.join(5)
    assert not pruning.is_alive()
