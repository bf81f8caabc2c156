"""A bridged task's handler against a real ``a2a-sdk`` server over real HTTP (no broker):
each remote state, the reviewer's approval sent back once, redeliveries that go on with
the same remote task, timeouts, cancellation, secrets from the environment."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from tests.waiting import wait_for
from tests.waypost.a2a.remote_agent import TOKEN, RemoteServer, serving_remote
from waypost.a2a.bridge import BridgedInput, BridgeKit, Memory, bridge_agent
from waypost.a2a.config import Bridge
from waypost.a2a.errors import RemoteFailed, RemoteRefused, RemoteUnavailable
from waypost.a2a.follow import input_action
from waypost.a2a.metrics import BridgeMetrics
from waypost.a2a.store import Followed, MemoryFollowed
from waypost.governance.engine import digest_params
from waypost.governance.errors import ApprovalRequired
from waypost.sdk import AgentContext, Approval, TaskInfo
from waypost.telemetry import Tracing

ENV = {"REMOTE_TOKEN": TOKEN}


@pytest.fixture(scope="module")
def remote() -> Iterator[RemoteServer]:
    with serving_remote() as server:
        yield server


def _bridge(remote: RemoteServer, **fields: Any) -> Bridge:
    values: dict[str, Any] = {
        "capability": "refunds",
        "card": remote.url,
        "skill": "refund",
        "agent": "refund-desk",
        "headers": {"Authorization": "Bearer ${REMOTE_TOKEN}"},
        "poll_interval": 0.05,
        "timeout": 10,
        **fields,
    }
    return Bridge(**values)


class Runner:
    """Runs attempts of one Waypost task through a bridge agent, as the runtime would."""

    def __init__(
        self,
        bridge: Bridge,
        task_id: str,
        environ: dict[str, str] = ENV,
        kit: BridgeKit | None = None,
    ) -> None:
        self.agent = bridge_agent(bridge, kit or BridgeKit(environ))
        self.memory = Memory(MemoryFollowed())
        self.task_id = task_id
        self.notes: list[str] = []

    def context(self, attempt: int, approvals: tuple[Approval, ...] = ()) -> AgentContext:
        info = TaskInfo(
            workflow_id=f"wf-{self.task_id}",
            task_id=self.task_id,
            step="refund",
            capability=self.agent.capability,
            attempt=attempt,
            goal_type="test.a2a",
            deadline=datetime.now(UTC) + timedelta(minutes=5),
            approvals=approvals,
        )
        return AgentContext(task=info, resources={Memory: self.memory}, notes=self.notes)

    def run(self, task_input: dict[str, Any], *, attempt: int = 1, **context: Any) -> Any:
        ctx = context.pop("ctx", None) or self.context(attempt, **context)
        return self.agent.run(BridgedInput(**task_input), ctx).output.model_dump()


def _task_id(name: str) -> str:
    return f"{name}-{datetime.now(UTC).timestamp()}"


def test_a_completed_remote_task_is_the_output(remote: RemoteServer) -> None:
    runner = Runner(_bridge(remote), _task_id("echo"))

    output = runner.run({"mode": "echo", "n": 7})

    assert output == {"echo": {"mode": "echo", "n": 7}, "count": 3}
    assert remote.received.headers[-1] == f"Bearer {TOKEN}"  # resolved from the environment
    assert any(
        n.startswith("sent to remote agent 'refund-desk': remote task ") for n in runner.notes
    )
    assert runner.notes[-1] == "a2a a2a:refund-desk/refund: completed"


def test_the_same_attempt_delivered_again_is_answered_without_a_second_remote_task(
    remote: RemoteServer,
) -> None:
    runner = Runner(_bridge(remote), _task_id("again"))
    before = len(remote.received.tasks())

    first = runner.run({"mode": "echo", "n": 1})
    again = runner.run({"mode": "echo", "n": 1})

    assert first == again
    assert len(remote.received.tasks()) == before + 1


def test_a_failed_remote_task_is_a_retryable_failure_and_the_retry_starts_anew(
    remote: RemoteServer,
) -> None:
    runner = Runner(_bridge(remote), _task_id("fail"))
    before = len(remote.received.tasks())

    with pytest.raises(RemoteFailed, match=r"failed task .*: the ledger is down"):
        runner.run({"mode": "fail"})
    with pytest.raises(RemoteFailed):
        runner.run({"mode": "fail"}, attempt=2)

    assert len(remote.received.tasks()) == before + 2  # one remote task per attempt


def test_a_rejected_remote_task_is_not_retried(remote: RemoteServer) -> None:
    runner = Runner(_bridge(remote), _task_id("reject"))

    with pytest.raises(RemoteRefused, match=r"rejected task .*: not my job"):
        runner.run({"mode": "reject"})


def test_input_required_waits_for_a_reviewer_whose_approval_is_sent_back_once(
    remote: RemoteServer,
) -> None:
    bridge = _bridge(remote)
    runner = Runner(bridge, _task_id("ask"))

    with pytest.raises(ApprovalRequired) as raised:
        runner.run({"mode": "ask", "amount": 12})

    proposal = raised.value.proposal
    assert proposal is not None
    assert proposal.action == input_action(bridge) == "a2a:refund-desk/refund/input"
    remote_task = remote.received.tasks()[-1]
    expected = digest_params({"remote_task_id": remote_task, "question": "May I refund 12 EUR?"})
    assert proposal.params_digest == expected[0]
    assert str(raised.value) == "remote agent 'refund-desk' asks for input: May I refund 12 EUR?"

    # Retried without an approval (the reviewer chose "retry"): asks again, sends nothing.
    with pytest.raises(ApprovalRequired):
        runner.run({"mode": "ask", "amount": 12}, attempt=2)
    assert len(remote.received.of(remote_task)) == 1

    approval = Approval(proposal.action, proposal.params_digest, "rita", "esc-1")
    output = runner.run({"mode": "ask", "amount": 12}, attempt=3, approvals=(approval,))

    assert output == {"refunded": 12, "approved_by": "rita"}
    messages = remote.received.of(remote_task)
    assert messages[1:] == [
        {"decision": "approve", "approved_by": "rita", "escalation_id": "esc-1"}
    ]
    # The approved attempt delivered again: the same answer, no second follow-up.
    assert runner.run({"mode": "ask", "amount": 12}, attempt=3, approvals=(approval,)) == output
    assert len(remote.received.of(remote_task)) == 2
    assert any("sent the approval of rita (escalation esc-1)" in n for n in runner.notes)


def test_an_approval_of_another_question_is_not_sent(remote: RemoteServer) -> None:
    runner = Runner(_bridge(remote), _task_id("other"))
    with pytest.raises(ApprovalRequired) as raised:
        runner.run({"mode": "ask", "amount": 5})
    assert raised.value.proposal is not None
    wrong = Approval(raised.value.proposal.action, "0" * 64, "rita", "esc-9")

    with pytest.raises(ApprovalRequired):
        runner.run({"mode": "ask", "amount": 5}, attempt=2, approvals=(wrong,))

    assert len(remote.received.of(remote.received.tasks()[-1])) == 1


def test_a_slow_remote_task_times_out_retryably_and_the_retry_follows_the_same_task(
    remote: RemoteServer,
) -> None:
    runner = Runner(_bridge(remote, timeout=0.3), _task_id("hold"))
    before = len(remote.received.tasks())

    with pytest.raises(RemoteUnavailable, match="was still working when this attempt's time"):
        runner.run({"mode": "hold"})
    with pytest.raises(RemoteUnavailable):
        runner.run({"mode": "hold"}, attempt=2)

    assert len(remote.received.tasks()) == before + 1
    assert any(n.startswith("following remote task ") for n in runner.notes)


def test_cancelling_the_workflow_cancels_the_remote_task(remote: RemoteServer) -> None:
    runner = Runner(_bridge(remote), _task_id("cancel"))
    ctx = runner.context(1)
    before = len(remote.received.tasks())
    failure: list[BaseException] = []

    def attempt() -> None:
        try:
            runner.run({"mode": "hold"}, ctx=ctx)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=attempt)
    thread.start()
    wait_for(lambda: len(remote.received.tasks()) > before, what="the remote task")
    ctx.cancellation.set()
    thread.join(10)

    assert not thread.is_alive()
    assert isinstance(failure[0], RemoteRefused)
    assert remote.received.cancelled == [remote.received.tasks()[-1]]


def test_configuration_the_remote_side_cannot_serve_is_refused(remote: RemoteServer) -> None:
    with pytest.raises(RemoteRefused, match="environment variable REMOTE_TOKEN"):
        Runner(_bridge(remote), _task_id("env"), environ={}).run({"mode": "echo"})
    with pytest.raises(RemoteRefused, match="offers no skill 'payout'"):
        Runner(_bridge(remote, skill="payout"), _task_id("skill")).run({"mode": "echo"})


def test_an_unreachable_remote_agent_is_a_retryable_failure(remote: RemoteServer) -> None:
    from waypost.stack.process import free_port

    gone = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RemoteUnavailable, match="could not read its agent card"):
        Runner(_bridge(remote, card=gone), _task_id("gone")).run({"mode": "echo"})
    bridge = _bridge(remote, card=None, endpoint=gone + "/")
    with pytest.raises(RemoteUnavailable, match="could not send"):
        Runner(bridge, _task_id("gone2")).run({"mode": "echo"})


def test_an_endpoint_without_a_card_is_called_directly(remote: RemoteServer) -> None:
    bridge = _bridge(remote, card=None, endpoint=remote.url + "/", skill=None)

    assert Runner(bridge, _task_id("direct")).run({"mode": "echo"})["count"] == 3


def test_each_attempt_has_a_span_and_is_counted(remote: RemoteServer) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    registry = CollectorRegistry()
    kit = BridgeKit(ENV, Tracing(provider), BridgeMetrics(registry))

    Runner(_bridge(remote), _task_id("counted"), kit=kit).run({"mode": "echo"})
    with pytest.raises(RemoteFailed):
        Runner(_bridge(remote), _task_id("counted-fail"), kit=kit).run({"mode": "fail"})

    spans = [s for s in exporter.get_finished_spans() if s.name == "a2a delegate refund-desk"]
    assert [(s.attributes or {}).get("a2a.outcome") for s in spans] == ["completed", "failed"]
    assert (spans[0].attributes or {})["waypost.action"] == "a2a:refund-desk/refund"
    labels = {"agent": "refund-desk", "skill": "refund"}
    for outcome in ("completed", "failed"):
        counted = registry.get_sample_value(
            "waypost_a2a_delegations_total", {**labels, "outcome": outcome}
        )
        assert counted == 1
    assert registry.get_sample_value("waypost_a2a_delegation_duration_seconds_count", labels) == 2


def test_a_remote_agent_that_answers_with_a_message_has_finished(remote: RemoteServer) -> None:
    runner = Runner(_bridge(remote), _task_id("reply"))

    assert runner.run({"mode": "reply"}) == {"answer": 42}
    assert runner.memory.followed.find(runner.task_id) is None  # no remote task to follow
    assert any(n == "remote agent 'refund-desk' answered at once" for n in runner.notes)


def test_a_remembered_task_the_remote_agent_forgot_is_sent_again(remote: RemoteServer) -> None:
    runner = Runner(_bridge(remote), _task_id("forgotten"))
    runner.memory.followed.save(Followed(runner.task_id, "refunds", "no-such-task", "c-1", 1))

    assert runner.run({"mode": "echo", "n": 4})["echo"] == {"mode": "echo", "n": 4}
    assert any("remote task no-such-task is unknown to 'refund-desk'" in n for n in runner.notes)
    row = runner.memory.followed.find(runner.task_id)
    assert row is not None
    assert row.remote_task_id == remote.received.tasks()[-1]
