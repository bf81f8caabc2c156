"""Governance end to end: real orchestrator, agent and HTTP processes on the real broker
and PostgreSQL, with policy files written for the test (``WAYPOST_POLICY_DIRS``). The
agent (``tests/support/governed.py``) asks ``ctx.act`` before each action its goal names
and leaves a marker file for every action it takes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.workflow.state import TaskStatus, WorkflowStatus
from tests.e2e.conftest import PLAYBOOKS, ROOT, Platform
from tests.e2e.reviewing import serving
from tests.e2e.test_decisions import decide, escalation_of, finished
from tests.waiting import wait_for
from waypost.events import BudgetExhausted, Payload, PolicyDecided, default_codec
from waypost.governance import repository
from waypost.governance.engine import digest_params
from waypost.governance.repository import AuditedDecision

pytestmark = pytest.mark.e2e

E2E_PLAYBOOKS = ROOT / "tests" / "e2e" / "playbooks"
POLICY = """\
# The governed test agent: no deletions, refunds need a person, 1,000 tokens a workflow.
name: governed
version: 1
applies_to: {agents: [governed]}
actions:
  deny:
    - {action: delete_customer, reason: only the data team deletes customer records}
require_approval:
  - {action: refund, reason: refunds move money}
budgets:
  per_workflow: {tokens: 1000}
"""


def govern(platform: Platform, directory: Path, policy: str) -> None:
    """This test's processes load the test playbooks and ``policy`` (in ``directory``)."""
    directory.mkdir()
    (directory / "governed.yaml").write_text(policy)
    platform.env_overrides["WAYPOST_PLAYBOOK_DIRS"] = f"{PLAYBOOKS},{E2E_PLAYBOOKS}"
    platform.env_overrides["WAYPOST_POLICY_DIRS"] = str(directory)


@pytest.fixture
def api(platform: Platform, tmp_path: Path) -> Iterator[httpx.Client]:
    """Orchestrator, the governed agent (with this test's policies) and `waypost serve`;
    a client with an admin token."""
    govern(platform, tmp_path / "policies", POLICY)
    with serving(platform, ("tests.support.governed",)) as client:
        yield client


def submit(platform: Platform, markers: Path, *actions: dict[str, Any]) -> str:
    markers.mkdir()
    return platform.submit("test.governed", {"actions": list(actions), "marker_dir": str(markers)})


def taken(markers: Path) -> list[str]:
    """The actions the agent took, as ``action.attempt``, in name order."""
    return sorted(
        f"{name}.{attempt}"
        for name, _, attempt, _ in (p.name.split(".") for p in markers.iterdir())
    )


def audited(platform: Platform, workflow_id: str) -> list[AuditedDecision]:
    """The workflow's policy_decisions rows, oldest first."""
    with platform.engine.connect() as connection:
        return list(reversed(repository.decisions(connection=connection, workflow_id=workflow_id)))


def governance_events(platform: Platform, expect: int, workflow_id: str) -> list[Payload]:
    """This workflow's events on the governance topic, once ``expect`` arrived."""
    codec = default_codec()
    records = platform.read_topic(platform.topics.governance, expect=expect)
    payloads = [codec.decode(r.value, r.headers).payload for r in records]
    return [p for p in payloads if getattr(p, "workflow_id", None) == workflow_id]


def test_a_denied_action_never_runs_is_audited_announced_and_fails_the_workflow(
    platform: Platform, api: httpx.Client, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    workflow_id = submit(
        platform, markers, {"name": "search_kb"}, {"name": "delete_customer", "params": {"id": 7}}
    )

    state = finished(platform, workflow_id)

    reason = (
        "'delete_customer' is denied by policy 'governed' v1 actions.deny[0] "
        f"({tmp_path / 'policies' / 'governed.yaml'}:7): only the data team deletes "
        "customer records"
    )
    assert state.status is WorkflowStatus.FAILED
    assert state.failed_step == "act"
    assert state.error is not None
    assert (state.error.type, state.error.message, state.error.retryable) == (
        "ActionForbidden",
        reason,
        False,
    )
    shown = api.get(f"/api/v1/workflows/{workflow_id}").json()
    assert f"ActionForbidden: {reason}" in shown["reason"]
    assert taken(markers) == ["search_kb.1"]
    rows = audited(platform, workflow_id)
    assert [(r.action, r.outcome, r.cause) for r in rows] == [
        ("search_kb", "allow", "allowed"),
        ("delete_customer", "deny", "denied"),
    ]
    denied = rows[1]
    assert (denied.policy, denied.policy_version, denied.rule) == ("governed", 1, "actions.deny[0]")
    assert denied.detail["params_digest"] == digest_params({"id": 7})[0]
    events = governance_events(platform, 2, workflow_id)
    assert [(e.action, e.outcome, e.audit_id) for e in events] == [  # type: ignore[attr-defined]
        ("search_kb", "allow", rows[0].id),
        ("delete_customer", "deny", denied.id),
    ]
    assert all(isinstance(e, PolicyDecided) and e.agent == "governed" for e in events)


def test_an_exhausted_budget_stops_further_actions(
    platform: Platform, api: httpx.Client, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    workflow_id = submit(
        platform, markers, {"name": "summarize", "tokens": 1000}, {"name": "send_email"}
    )

    state = finished(platform, workflow_id)

    assert state.status is WorkflowStatus.FAILED
    assert state.error is not None
    assert state.error.type == "BudgetStopped"
    assert "has used up its per-workflow token budget: 1,000 tokens of 1,000 tokens" in (
        state.error.message
    )
    assert taken(markers) == ["summarize.1"]
    assert [(r.action, r.cause) for r in audited(platform, workflow_id)] == [
        ("summarize", "allowed"),
        ("send_email", "budget"),
    ]
    events = governance_events(platform, 4, workflow_id)
    assert [e.TYPE for e in events] == [
        "policy.decided",
        "budget.threshold_reached",
        "budget.exhausted",
        "policy.decided",
    ]
    exhausted = events[2]
    assert isinstance(exhausted, BudgetExhausted)
    assert (exhausted.period, exhausted.period_key, exhausted.limit) == (
        "workflow",
        workflow_id,
        1000,
    )


def test_an_action_needing_approval_waits_for_a_reviewer_and_runs_once_approved(
    platform: Platform, api: httpx.Client, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    workflow_id = submit(platform, markers, {"name": "refund", "params": {"amount": 120}})

    escalation = escalation_of(api, workflow_id)

    assert (escalation["kind"], escalation["status"], escalation["step"]) == (
        "policy_approval",
        "pending",
        "act",
    )
    assert escalation["reason"].startswith(
        "'refund' needs a human's approval under policy 'governed' v1 require_approval[0]"
    )
    assert escalation["reason"].endswith(": refunds move money")
    digest, size = digest_params({"amount": 120})
    action = escalation["content"]["proposed_action"]
    assert (action["name"], action["params_digest"], action["params_size"]) == (
        "refund",
        digest,
        size,
    )
    assert action["rule"]["path"] == "require_approval[0]"
    assert taken(markers) == []
    waiting = platform.workflow(workflow_id)
    assert waiting is not None
    assert waiting.status is WorkflowStatus.RUNNING
    assert waiting.tasks["act"].status is TaskStatus.AWAITING_REVIEW
    refused = api.post(
        f"/api/v1/escalations/{escalation['id']}/decision",
        json={
            "action": "edit",
            "version": escalation["version"],
            "digest": escalation["digest"],
            "output": {"taken": [], "attempt": 1},
        },
    )
    assert refused.status_code == 422, refused.text

    decide(api, escalation, "approve")

    state = finished(platform, workflow_id)
    assert state.status is WorkflowStatus.COMPLETED, state.reason
    assert state.output == {"act": {"taken": ["refund"], "attempt": 2}}
    assert taken(markers) == ["refund.2"]
    rows = audited(platform, workflow_id)
    assert [(r.action, r.outcome, r.cause) for r in rows] == [
        ("refund", "require_approval", "approval"),
        ("refund", "allow", "approved"),
    ]
    assert rows[1].detail["approved_by"] == "test-admin"
    assert rows[1].detail["params_digest"] == digest


@pytest.mark.slow  # 8-15 s: `make test-slow` (CI runs it)
def test_a_rate_limit_holds_across_four_agent_processes(platform: Platform, tmp_path: Path) -> None:
    govern(
        platform,
        tmp_path / "policies",
        "version: 1\napplies_to: {agents: [governed]}\n"
        "rate_limits:\n  - {action: send_email, limit: 3, per: 1h}\n",
    )
    platform.start_orchestrator()
    for number in range(4):
        platform.start_agents(f"governed-{number}", module="tests.support.governed")
    markers = tmp_path / "markers"
    markers.mkdir()
    ids = [
        platform.submit(
            "test.governed",
            {
                "actions": [{"name": "send_email", "params": {"to": f"c{n}@example.com"}}],
                "marker_dir": str(markers),
            },
        )
        for n in range(12)
    ]

    def all_finished() -> dict[str, int] | None:
        counts = platform.statuses(ids)
        done = counts.get("completed", 0) + counts.get("failed", 0)
        return counts if done == 12 else None

    counts = wait_for(all_finished, timeout=90, interval=0.2, what="all 12 workflows to finish")

    assert counts == {"completed": 3, "failed": 9}
    assert len(list(markers.iterdir())) == 3
    outcomes = [r.cause for wid in ids for r in audited(platform, wid)]
    assert sorted(outcomes) == ["allowed"] * 3 + ["rate_limit"] * 9
