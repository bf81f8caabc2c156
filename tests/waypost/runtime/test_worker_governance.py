"""Governance in the agent runtime, in memory: ``ctx.act`` through a ``MemoryGate``, the
worker's results and governance events, and policies loaded at start-up. Pure: the
in-memory bus and gate, a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.governed import governed
from waypost import AgentContext, Approval, TaskInfo
from waypost.bus.base import TopicSpec
from waypost.bus.loop import Delivery
from waypost.bus.memory import MemoryBus
from waypost.bus.records import ReceivedRecord
from waypost.errors import ConfigError
from waypost.events import (
    ApprovalGrant,
    BudgetExhausted,
    BudgetThresholdReached,
    Event,
    Payload,
    PolicyDecided,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
    default_codec,
)
from waypost.governance import (
    ActionForbidden,
    ApprovalRequired,
    BudgetStopped,
    MemoryGate,
    Policies,
    RateLimited,
    Spend,
    load_text,
)
from waypost.governance.acting import TaskGovernance
from waypost.governance.engine import digest_params
from waypost.runtime.main import WorkerEnvironment, load_governor
from waypost.runtime.worker import AgentWorker
from waypost.settings import AgentSettings
from waypost.topics import Topics

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
TOPICS = Topics("ns")
POLICY = """\
name: governed
version: 2
applies_to: {agents: [governed]}
actions:
  allow: [search_kb, send_email, refund, delete_customer]
  deny:
    - {action: delete_customer, reason: only the data team deletes customer records}
require_approval:
  - {action: refund, reason: refunds move money}
rate_limits:
  - {action: send_email, limit: 1, per: 1h}
budgets:
  per_workflow: {tokens: 1000}
scopes:
  refund: [billing]
"""
RULES = Policies((load_text(POLICY, source="policies/governed.yaml"),))
TASK = TaskInfo("wf-1", "task-1", "act", "governed", 1, "test.governed", NOW)


def _gate() -> MemoryGate:
    return MemoryGate(RULES, clock=lambda: NOW)


def _context(gate: MemoryGate, approvals: tuple[Approval, ...] = ()) -> AgentContext:
    governance = TaskGovernance(
        gate,
        agent="governed",
        capability="governed",
        workflow_id="wf-1",
        task_id="task-1",
        approvals=approvals,
    )
    task = TaskInfo("wf-1", "task-1", "act", "governed", 1, "test.governed", NOW, approvals)
    return AgentContext(task=task, governance=governance)


# --- ctx.act ------------------------------------------------------------------------------


def test_without_policies_act_allows_everything_and_records_nothing() -> None:
    ctx = AgentContext(task=TASK)

    decision = ctx.act("drop_database", {"name": "prod"}, tokens=10**9)

    assert (decision.outcome, decision.cause) == ("allow", "no_policy")
    assert "WAYPOST_POLICY_DIRS" in decision.reason
    assert decision.audit_id is None


@pytest.mark.parametrize("governed_context", [False, True])
def test_a_malformed_proposal_is_refused_with_or_without_policies(governed_context: bool) -> None:
    ctx = _context(_gate()) if governed_context else AgentContext(task=TASK)

    with pytest.raises(ValueError, match="lower-case letters"):
        ctx.act("Send Email")
    with pytest.raises(TypeError, match="must be JSON values"):
        ctx.act("send_email", {"when": object()})
    with pytest.raises(ValueError, match="cannot be negative"):
        ctx.act("send_email", tokens=-1)


def test_an_allowed_action_returns_the_decision_and_is_audited_and_announced() -> None:
    gate = _gate()
    ctx = _context(gate)

    decision = ctx.act("search_kb", {"query": "refund"}, tokens=100)

    assert (decision.outcome, decision.cause) == ("allow", "allowed")
    ((proposal, audited),) = gate.decisions
    assert audited == decision
    assert proposal.params_digest == digest_params({"query": "refund"})[0]
    assert (proposal.workflow_id, proposal.task_id, proposal.estimate.tokens) == (
        "wf-1",
        "task-1",
        100,
    )
    assert ctx.governance is not None
    (event,) = ctx.governance.events
    assert isinstance(event, PolicyDecided)
    assert (event.action, event.outcome, event.agent) == ("search_kb", "allow", "governed")


def test_a_denied_action_raises_with_the_policys_reason() -> None:
    ctx = _context(_gate())

    with pytest.raises(ActionForbidden) as caught:
        ctx.act("delete_customer", {"id": 42})

    assert str(caught.value) == (
        "'delete_customer' is denied by policy 'governed' v2 actions.deny[0] "
        "(policies/governed.yaml:7): only the data team deletes customer records"
    )
    assert ctx.governance is not None
    (event,) = ctx.governance.events
    assert isinstance(event, PolicyDecided)
    assert (event.outcome, event.cause) == ("deny", "denied")


def test_an_action_outside_its_scopes_is_forbidden() -> None:
    with pytest.raises(ActionForbidden, match=r"data scope 'crm\.contacts'"):
        _context(_gate()).act("refund", {"amount": 5}, scopes=["crm.contacts"])


def test_a_full_rate_window_raises_a_retryable_refusal() -> None:
    gate = _gate()
    _context(gate).act("send_email", {"to": "a"})

    with pytest.raises(RateLimited) as caught:
        _context(gate).act("send_email", {"to": "b"})

    assert not isinstance(caught.value, ActionForbidden | BudgetStopped)


def test_approval_is_required_until_the_same_action_with_the_same_params_is_approved() -> None:
    gate = _gate()
    params = {"amount": 120, "customer": 42}

    with pytest.raises(ApprovalRequired) as caught:
        _context(gate).act("refund", params, scopes=["billing.invoices"])

    proposal = caught.value.proposal
    assert proposal is not None
    assert (proposal.action, proposal.params_digest) == ("refund", digest_params(params)[0])
    approval = Approval("refund", proposal.params_digest, "ada", "esc-1")
    approved = _context(gate, (approval,))
    decision = approved.act("refund", params, scopes=["billing.invoices"])
    assert (decision.outcome, decision.cause) == ("allow", "approved")
    assert "approved by ada" in decision.reason
    assert approved.approvals == (approval,)
    with pytest.raises(ApprovalRequired):  # other parameters need their own approval
        approved.act("refund", {**params, "amount": 9999}, scopes=["billing.invoices"])


def test_an_estimate_past_the_budget_stops_the_action() -> None:
    gate = _gate()
    ctx = _context(gate)
    ctx.act("search_kb", tokens=900)

    with pytest.raises(BudgetStopped, match="per-workflow token budget"):
        ctx.act("search_kb", tokens=200)

    assert ctx.governance is not None
    assert [type(e).__name__ for e in ctx.governance.events] == [
        "PolicyDecided",
        "BudgetThresholdReached",
        "PolicyDecided",
    ]


def test_settling_records_only_what_the_actions_did_not_reserve() -> None:
    gate = _gate()
    ctx = _context(gate)
    ctx.act("search_kb", tokens=500)
    governance = ctx.governance
    assert governance is not None

    governance.settle(Spend(tokens=1200), at=NOW)

    assert governance.reserved.tokens == 1200
    levels = [e for e in governance.events if not isinstance(e, PolicyDecided)]
    assert [type(e) for e in levels] == [BudgetThresholdReached, BudgetExhausted]
    assert all(e.spent == 500 and e.projected == 1200 for e in levels)  # type: ignore[attr-defined]
    governance.settle(Spend(tokens=1200), at=NOW)  # nothing more was spent
    assert len(governance.events) == 3


# --- the worker ---------------------------------------------------------------------------


def _worker(gate: MemoryGate | None) -> tuple[AgentWorker, MemoryBus]:
    bus = MemoryBus()
    bus.admin().ensure_topics([TopicSpec(TOPICS.results, 1), TopicSpec(TOPICS.governance, 1)])
    worker = AgentWorker(
        agent=governed,
        publisher=bus.publisher("worker"),
        codec=default_codec(),
        topics=TOPICS,
        instance="host:7",
        resources={},
        governor=gate,
        clock=lambda: NOW,
    )
    return worker, bus


def _delivery(task_input: dict[str, Any], **changes: Any) -> Delivery:
    fields: dict[str, Any] = {
        "workflow_id": "wf-1",
        "task_id": "task-1",
        "step": "act",
        "capability": "governed",
        "attempt": 1,
        "goal_type": "test.governed",
        "input": task_input,
        "deadline": (NOW + timedelta(seconds=30)).isoformat(),
    }
    event = Event(TaskDispatched(**{**fields, **changes}), source="waypost/orchestrator")
    encoded = default_codec().encode(event)
    record = ReceivedRecord(
        TOPICS.tasks("governed"), 0, 0, encoded.key, encoded.value, encoded.headers
    )
    return Delivery(record, default_codec().decode(record.value, record.headers))


def _published(bus: MemoryBus, topic: str) -> list[Payload]:
    codec = default_codec()
    return [codec.decode(r.value, r.headers).payload for r in bus.broker.records(topic)]


def _actions(*names: str, **fields: Any) -> dict[str, Any]:
    return {"actions": [{"name": name, **fields} for name in names]}


def test_a_denied_action_fails_the_task_with_the_reason_and_is_announced(tmp_path: Path) -> None:
    gate = _gate()
    worker, bus = _worker(gate)

    worker.handle(
        [_delivery({**_actions("search_kb", "delete_customer"), "marker_dir": str(tmp_path)})]
    )

    (result,) = _published(bus, TOPICS.results)
    assert isinstance(result, TaskFailed)
    assert (result.error.type, result.error.retryable) == ("ActionForbidden", False)
    assert result.error.message.startswith("'delete_customer' is denied by policy 'governed' v2")
    assert result.approval is None
    assert sorted(p.name.split(".")[0] for p in tmp_path.iterdir()) == ["search_kb"]
    events = _published(bus, TOPICS.governance)
    assert [(e.action, e.outcome) for e in events] == [  # type: ignore[attr-defined]
        ("search_kb", "allow"),
        ("delete_customer", "deny"),
    ]
    key = bus.broker.records(TOPICS.governance)[0].key
    assert key == b"governed"
    assert (worker.handled, worker.failed, worker.completed) == (1, 1, 0)


def test_an_action_needing_approval_fails_the_attempt_naming_it_and_runs_once_approved(
    tmp_path: Path,
) -> None:
    gate = _gate()
    worker, bus = _worker(gate)
    task_input = {
        "actions": [{"name": "refund", "params": {"amount": 120}, "scopes": ["billing"]}],
        "marker_dir": str(tmp_path),
    }

    worker.handle([_delivery(task_input)])

    (asked,) = _published(bus, TOPICS.results)
    assert isinstance(asked, TaskFailed)
    assert (asked.error.type, asked.error.retryable) == ("ApprovalRequired", False)
    assert asked.approval is not None
    assert (asked.approval.action, asked.approval.params_digest) == (
        "refund",
        digest_params({"amount": 120})[0],
    )
    assert asked.approval.scopes == ["billing"]
    assert asked.approval.rule is not None
    assert (asked.approval.rule.policy, asked.approval.rule.path) == (
        "governed",
        "require_approval[0]",
    )
    assert asked.approval.reason == asked.error.message
    assert asked.reasoning == ["refund with ['amount']"]
    assert list(tmp_path.iterdir()) == []

    grant = ApprovalGrant(
        action="refund",
        params_digest=asked.approval.params_digest,
        approved_by="ada",
        escalation_id="esc-1",
    )
    worker.handle([_delivery(task_input, attempt=2, approvals=[grant])])

    done = _published(bus, TOPICS.results)[-1]
    assert isinstance(done, TaskCompleted)
    assert done.output == {"taken": ["refund"], "attempt": 2}
    assert [p.read_text() for p in tmp_path.iterdir()] == ["1 approval(s)\n"]
    decisions = _published(bus, TOPICS.governance)
    assert [e.cause for e in decisions] == ["approval", "approved"]  # type: ignore[attr-defined]


def test_usage_beyond_the_reservations_is_recorded_and_crosses_budget_levels() -> None:
    gate = _gate()
    worker, bus = _worker(gate)

    worker.handle([_delivery({**_actions("search_kb", tokens=100), "used_tokens": 1000})])

    assert isinstance(_published(bus, TOPICS.results)[0], TaskCompleted)
    events = _published(bus, TOPICS.governance)
    assert [e.TYPE for e in events] == [
        "policy.decided",
        "budget.threshold_reached",
        "budget.exhausted",
    ]
    exhausted = events[-1]
    assert isinstance(exhausted, BudgetExhausted)
    assert (exhausted.period, exhausted.period_key, exhausted.projected) == (
        "workflow",
        "wf-1",
        1000.0,
    )

    worker.handle([_delivery(_actions("search_kb"), task_id="task-2")])

    stopped = _published(bus, TOPICS.results)[-1]
    assert isinstance(stopped, TaskFailed)
    assert (stopped.error.type, stopped.error.retryable) == ("BudgetStopped", False)
    assert "has used up its per-workflow token budget" in stopped.error.message


def test_a_rate_limited_action_is_a_retryable_failure() -> None:
    worker, bus = _worker(_gate())

    worker.handle([_delivery(_actions("send_email", "send_email"))])

    (result,) = _published(bus, TOPICS.results)
    assert isinstance(result, TaskFailed)
    assert (result.error.type, result.error.retryable) == ("RateLimited", True)


def test_without_a_governor_nothing_goes_to_the_governance_topic(tmp_path: Path) -> None:
    worker, bus = _worker(None)

    worker.handle([_delivery({**_actions("delete_customer"), "marker_dir": str(tmp_path)})])

    assert isinstance(_published(bus, TOPICS.results)[0], TaskCompleted)
    assert _published(bus, TOPICS.governance) == []
    assert len(list(tmp_path.iterdir())) == 1


# --- loading the policies -----------------------------------------------------------------


def _environment(settings: AgentSettings) -> WorkerEnvironment:
    return WorkerEnvironment(settings, None, "host:7")


def test_no_policy_directories_means_no_governor() -> None:
    settings = AgentSettings(policy_dirs=[])

    assert load_governor(settings, _environment(settings)) is None


def test_policies_without_a_database_are_decided_in_memory(tmp_path: Path) -> None:
    (tmp_path / "governed.yaml").write_text(POLICY)
    settings = AgentSettings(policy_dirs=[tmp_path], database_url=None)

    governor = load_governor(settings, _environment(settings))

    assert isinstance(governor, MemoryGate)


def test_an_invalid_policy_file_stops_the_worker_naming_the_file_and_field(
    tmp_path: Path,
) -> None:
    (tmp_path / "broken.yaml").write_text("version: 0\napplies_to: '*'\n")
    settings = AgentSettings(policy_dirs=[tmp_path])

    with pytest.raises(ConfigError) as caught:
        load_governor(settings, _environment(settings))

    message = str(caught.value)
    assert message.startswith("WAYPOST_POLICY_DIRS: invalid policies:")
    assert f"{tmp_path / 'broken.yaml'}: version (line 1): 0 is less than the minimum of 1" in (
        message
    )


def test_the_policy_directories_are_comma_separated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAYPOST_POLICY_DIRS", f"{tmp_path}/a, {tmp_path}/b")

    settings = AgentSettings()

    assert settings.policy_dirs == [tmp_path / "a", tmp_path / "b"]
    assert settings.policy_check_interval_s == 2.0
