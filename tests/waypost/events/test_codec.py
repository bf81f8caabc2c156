"""The event codec: CloudEvents binary mode over Kafka, bodies checked against schemas/."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from waypost.bus.records import Headers
from waypost.errors import InvalidEvent, UndecodableEvent
from waypost.events import (
    PAYLOAD_TYPES,
    AgentInfo,
    ApprovalGrant,
    ApprovalRequest,
    BudgetExhausted,
    BudgetThresholdReached,
    Codec,
    DecisionQualityDrifted,
    DecisionRecorded,
    EncodedEvent,
    ErrorInfo,
    Event,
    GoalSubmitted,
    NoticeInfo,
    Payload,
    PolicyDecided,
    RuleInfo,
    TaskAttemptRef,
    TaskCompleted,
    TaskDispatched,
    TaskEscalated,
    TaskFailed,
    Usage,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
    default_codec,
    new_traceparent,
)

CODEC = Codec()
TIME = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
DIGEST = "ab" * 32
TASK = {
    "workflow_id": "wf-1",
    "task_id": "task-1",
    "step": "triage",
    "capability": "triage",
    "attempt": 2,
}
AGENT = AgentInfo(capability="triage", version="1.2", instance="host:42")
RULE = RuleInfo(
    policy="support-reply", file="policies/reply.yaml", version=3, digest=DIGEST, path="x", line=4
)
BUDGET: dict[str, Any] = {
    "agent": "reply",
    "capability": "reply",
    "workflow_id": "wf-1",
    "task_id": "task-1",
    "at": "2024-05-06T07:08:09.123456+00:00",
    "period": "workflow",
    "period_key": "wf-1",
    "resource": "tokens",
    "limit": 1000.0,
    "spent": 700.0,
    "projected": 1000.0,
    "rule": RULE,
}

# One valid body of every event type, by type.
SAMPLES: dict[str, Payload] = {
    "goal.submitted": GoalSubmitted(type="support.ticket", input={"subject": "s", "body": "b"}),
    "task.dispatched": TaskDispatched(
        **TASK,
        goal_type="support.ticket",
        input={"subject": "s"},
        deadline="2024-05-06T07:09:09.123456Z",
    ),
    "task.completed": TaskCompleted(
        **TASK,
        output={"category": "billing"},
        confidence=0.8,
        reasoning=["4 of 5 neighbours say billing"],
        usage=Usage(input_tokens=10, output_tokens=3, cost_usd=0.01, duration_ms=12.5),
        agent=AGENT,
    ),
    "task.failed": TaskFailed(
        **TASK,
        error=ErrorInfo(type="RuntimeError", message="boom", retryable=True),
        reasoning=["tried"],
        agent=AGENT,
    ),
    "task.escalated": TaskEscalated(
        **TASK,
        escalation_id="esc-1",
        reason="low confidence",
        version=1,
        digest=DIGEST,
        priority=3,
        due_at="2024-05-07T00:00:00Z",
    ),
    "decision.recorded": DecisionRecorded(
        escalation_id="esc-1",
        workflow_id="wf-1",
        task_id="task-1",
        action="edit",
        reviewer="ada",
        version=1,
        digest=DIGEST,
        output={"category": "shipping"},
        comment="was shipping",
    ),
    "workflow.started": WorkflowStarted(
        workflow_id="wf-1", type="support.ticket", steps=["triage", "reply"]
    ),
    "workflow.completed": WorkflowCompleted(
        workflow_id="wf-1", type="support.ticket", output={"reply": "hi"}, duration_ms=120.0
    ),
    "workflow.failed": WorkflowFailed(
        workflow_id="wf-1",
        type="support.ticket",
        reason="step 'triage' failed",
        step="triage",
        error=ErrorInfo(type="RuntimeError", message="boom", retryable=False),
    ),
    "workflow.cancelled": WorkflowCancelled(
        workflow_id="wf-1",
        type="support.ticket",
        reason="the customer withdrew the ticket",
        cancelled_by="olga",
        tasks=[
            TaskAttemptRef(
                workflow_id="wf-1",
                task_id="task-1",
                step="triage",
                capability="triage",
                attempt=2,
            )
        ],
    ),
    "policy.decided": PolicyDecided(
        agent="reply",
        capability="reply",
        workflow_id="wf-1",
        task_id="task-1",
        at="2024-05-06T07:08:09.123456+00:00",
        action="send_email",
        outcome="deny",
        cause="rate_limit",
        reason="too many",
        rule=RULE,
        context_digest=DIGEST,
        audit_id=7,
        notices=[
            NoticeInfo(
                level="warning",
                period="day",
                resource="cost_usd",
                limit=5.0,
                spent=3.9,
                projected=4.1,
                rule=RULE,
            )
        ],
    ),
    "budget.threshold_reached": BudgetThresholdReached(**BUDGET),
    "budget.exhausted": BudgetExhausted(**BUDGET),
    "decision_quality.drifted": DecisionQualityDrifted(
        capability="reply",
        version="2.1",
        verdict="rejected",
        rate=0.35,
        threshold=0.2,
        count=7,
        decided=20,
        window_start=TIME - timedelta(days=7),
        window_end=TIME,
    ),
}


def _event(payload: Payload, **attributes: object) -> Event:
    defaults: dict[str, object] = {"source": "waypost/test", "id": "event-1", "time": TIME}
    return Event(payload, **{**defaults, **attributes})  # type: ignore[arg-type]


def _headers(encoded: EncodedEvent) -> dict[str, str]:
    return {name: value.decode() for name, value in encoded.headers}


def _replace_header(headers: Headers, name: str, value: bytes | None) -> Headers:
    kept = tuple((n, v) for n, v in headers if n != name)
    return kept if value is None else (*kept, (name, value))


def test_samples_cover_every_event_type() -> None:
    assert set(SAMPLES) == set(PAYLOAD_TYPES)
    for event_type, payload in SAMPLES.items():
        assert type(payload) is PAYLOAD_TYPES[event_type]


@pytest.mark.parametrize("event_type", sorted(PAYLOAD_TYPES))
def test_every_event_type_survives_a_round_trip(event_type: str) -> None:
    event = _event(
        SAMPLES[event_type], subject="subject-1", traceparent=new_traceparent(), tracestate="a=b"
    )

    encoded = CODEC.encode(event)
    decoded = CODEC.decode(encoded.value, encoded.headers)

    assert decoded == event
    assert type(decoded.payload) is type(event.payload)


@pytest.mark.parametrize("event_type", sorted(PAYLOAD_TYPES))
def test_headers_carry_the_cloudevents_attributes(event_type: str) -> None:
    event = _event(SAMPLES[event_type])

    headers = _headers(CODEC.encode(event))

    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_id"] == "event-1"
    assert headers["ce_type"] == f"waypost.{event_type}"
    assert headers["ce_source"] == "waypost/test"
    assert headers["ce_dataschema"] == f"https://schemas.waypost.dev/{event_type}.v1.json"
    assert headers["content-type"] == "application/json"


def test_ce_time_is_rfc3339_utc_with_microseconds() -> None:
    in_berlin = TIME.astimezone(timezone(timedelta(hours=2)))
    encoded = CODEC.encode(_event(SAMPLES["workflow.started"], time=in_berlin))

    ce_time = _headers(encoded)["ce_time"]

    assert ce_time == "2024-05-06T07:08:09.123456Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", ce_time)
    assert CODEC.decode(encoded.value, encoded.headers).time == TIME


def test_trace_context_is_carried_through() -> None:
    traceparent = new_traceparent()
    encoded = CODEC.encode(
        _event(SAMPLES["task.completed"], traceparent=traceparent, tracestate="vendor=1")
    )

    headers = _headers(encoded)
    decoded = CODEC.decode(encoded.value, encoded.headers)

    assert headers["traceparent"] == traceparent
    assert headers["tracestate"] == "vendor=1"
    assert (decoded.traceparent, decoded.tracestate) == (traceparent, "vendor=1")


def test_new_traceparent_is_a_sampled_w3c_traceparent() -> None:
    first, second = new_traceparent(), new_traceparent()

    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", first)
    assert first != second


def test_optional_headers_are_left_out_when_unset() -> None:
    headers = _headers(CODEC.encode(_event(SAMPLES["workflow.started"])))

    for absent in ("traceparent", "tracestate", "ce_subject", "waypost-task-id", "waypost-attempt"):
        assert absent not in headers


@pytest.mark.parametrize(
    "event_type", ["task.dispatched", "task.completed", "task.failed", "task.escalated"]
)
def test_task_events_name_their_workflow_task_and_attempt(event_type: str) -> None:
    headers = _headers(CODEC.encode(_event(SAMPLES[event_type])))

    assert headers["waypost-workflow-id"] == "wf-1"
    assert headers["waypost-task-id"] == "task-1"
    assert headers["waypost-attempt"] == "2"


@pytest.mark.parametrize(
    "event_type",
    ["workflow.started", "workflow.completed", "workflow.failed", "workflow.cancelled"],
)
def test_workflow_events_name_their_workflow(event_type: str) -> None:
    headers = _headers(CODEC.encode(_event(SAMPLES[event_type])))

    assert headers["waypost-workflow-id"] == "wf-1"


def test_a_goal_is_its_own_workflow() -> None:
    encoded = CODEC.encode(_event(SAMPLES["goal.submitted"], id="goal-7"))

    assert _headers(encoded)["waypost-workflow-id"] == "goal-7"
    assert encoded.key == b"goal-7"


@pytest.mark.parametrize(
    ("event_type", "key"),
    [
        ("goal.submitted", b"event-1"),
        ("task.dispatched", b"task-1"),
        ("task.completed", b"wf-1"),
        ("task.failed", b"wf-1"),
        ("task.escalated", b"wf-1"),
        ("decision.recorded", b"wf-1"),
        ("workflow.started", b"wf-1"),
        ("workflow.completed", b"wf-1"),
        ("workflow.failed", b"wf-1"),
        ("workflow.cancelled", b"wf-1"),
        ("policy.decided", b"reply"),
        ("budget.threshold_reached", b"reply"),
        ("budget.exhausted", b"reply"),
    ],
)
def test_record_key_keeps_a_workflows_events_in_one_partition(event_type: str, key: bytes) -> None:
    # Tasks spread by task id over the agents; everything the orchestrator reads is keyed
    # by workflow so one orchestrator sees a workflow's events in order.
    assert CODEC.encode(_event(SAMPLES[event_type])).key == key


def test_a_dispatch_carries_its_approvals_and_a_failure_the_approval_it_waits_for() -> None:
    grant = ApprovalGrant(
        action="refund", params_digest=DIGEST, approved_by="ada", escalation_id="esc-1"
    )
    request = ApprovalRequest(
        action="refund", params_digest=DIGEST, params_size=42, reason="needs a human", rule=RULE
    )
    dispatched = SAMPLES["task.dispatched"].model_copy(update={"approvals": [grant]})
    failed = SAMPLES["task.failed"].model_copy(update={"approval": request})

    for payload in (dispatched, failed):
        encoded = CODEC.encode(_event(payload))
        assert CODEC.decode(encoded.value, encoded.headers).payload == payload
    # Without approvals a dispatch is the same bytes as before approvals existed.
    assert b"approvals" not in CODEC.encode(_event(SAMPLES["task.dispatched"])).value


def test_a_policy_decision_names_an_action_as_actions_are_named() -> None:
    payload = SAMPLES["policy.decided"].model_copy(update={"action": "Send Email"})

    with pytest.raises(InvalidEvent, match="at action"):
        CODEC.encode(_event(payload))


def test_body_is_the_payload_as_json_without_nulls() -> None:
    payload = WorkflowFailed(workflow_id="wf-1", type="t", reason="stopped")

    body = orjson.loads(CODEC.encode(_event(payload)).value)

    assert body == {"workflow_id": "wf-1", "type": "t", "reason": "stopped"}


def test_encode_refuses_a_body_that_breaks_its_schema() -> None:
    payload = SAMPLES["task.dispatched"].model_copy(update={"deadline": "next tuesday"})

    with pytest.raises(InvalidEvent, match="at deadline") as caught:
        CODEC.encode(_event(payload))

    assert "date-time" in str(caught.value)
    assert caught.value.event_type == "task.dispatched"


def test_schema_errors_name_the_nested_field_path() -> None:
    bad_agent = AgentInfo(capability="Not A Capability", version="1", instance="i")
    payload = SAMPLES["task.completed"].model_copy(update={"agent": bad_agent})

    with pytest.raises(InvalidEvent, match="at agent/capability"):
        CODEC.encode(_event(payload))


def test_decision_edit_requires_an_output() -> None:
    payload = SAMPLES["decision.recorded"].model_copy(update={"output": None})

    with pytest.raises(InvalidEvent, match="output"):
        CODEC.encode(_event(payload))


def test_decision_reject_requires_a_reason() -> None:
    rejected = SAMPLES["decision.recorded"].model_copy(update={"action": "reject", "output": None})

    with pytest.raises(InvalidEvent, match="reason"):
        CODEC.encode(_event(rejected))
    CODEC.encode(_event(rejected.model_copy(update={"reason": "wrong customer"})))


def test_decision_approve_needs_neither_output_nor_reason() -> None:
    approved = SAMPLES["decision.recorded"].model_copy(update={"action": "approve", "output": None})

    encoded = CODEC.encode(_event(approved))

    assert CODEC.decode(encoded.value, encoded.headers).payload == approved


def test_default_codec_is_built_once() -> None:
    assert default_codec() is default_codec()


# --- decoding what others produced --------------------------------------------------------


def _encoded(event_type: str = "task.completed") -> EncodedEvent:
    return CODEC.encode(_event(SAMPLES[event_type]))


def _body(event_type: str = "task.completed") -> dict[str, object]:
    return SAMPLES[event_type].model_dump(mode="json", exclude_none=True)


@pytest.mark.parametrize("missing", ["ce_id", "ce_source", "ce_specversion", "ce_type"])
def test_a_missing_required_header_is_undecodable_and_named(missing: str) -> None:
    encoded = _encoded()

    with pytest.raises(
        UndecodableEvent, match=f"missing header\\(s\\) {missing}\\. Waypost accepts"
    ):
        CODEC.decode(encoded.value, _replace_header(encoded.headers, missing, None))


def test_every_missing_header_is_named_at_once() -> None:
    with pytest.raises(UndecodableEvent) as caught:
        CODEC.decode(b"{}", (("content-type", b"application/json"),))

    for name in ("ce_id", "ce_source", "ce_specversion", "ce_type"):
        assert name in str(caught.value)


def test_another_spec_version_is_undecodable() -> None:
    encoded = _encoded()

    with pytest.raises(UndecodableEvent, match=r"ce_specversion '0\.3'"):
        CODEC.decode(encoded.value, _replace_header(encoded.headers, "ce_specversion", b"0.3"))


@pytest.mark.parametrize(
    "ce_type", [b"waypost.task.exploded", b"task.completed", b"com.example.task.completed"]
)
def test_an_unknown_ce_type_is_undecodable_and_lists_the_known_ones(ce_type: bytes) -> None:
    encoded = _encoded()

    with pytest.raises(UndecodableEvent, match="unknown ce_type") as caught:
        CODEC.decode(encoded.value, _replace_header(encoded.headers, "ce_type", ce_type))

    assert "waypost.task.completed" in str(caught.value)


def test_a_body_that_is_not_json_is_undecodable() -> None:
    encoded = _encoded()

    with pytest.raises(UndecodableEvent, match="not JSON") as caught:
        CODEC.decode(b"{not json", encoded.headers)

    assert caught.value.event_type == "task.completed"


def test_a_record_without_a_body_is_undecodable() -> None:
    with pytest.raises(UndecodableEvent, match="no body"):
        CODEC.decode(None, _encoded().headers)


def test_a_header_that_is_not_utf8_is_undecodable_and_named() -> None:
    encoded = _encoded()

    with pytest.raises(UndecodableEvent, match="'ce_source' is not UTF-8"):
        CODEC.decode(encoded.value, _replace_header(encoded.headers, "ce_source", b"\xff\xfe"))


def test_a_content_type_other_than_json_is_undecodable() -> None:
    encoded = _encoded()

    with pytest.raises(UndecodableEvent, match="content-type 'text/plain'"):
        CODEC.decode(encoded.value, _replace_header(encoded.headers, "content-type", b"text/plain"))


def test_json_with_parameters_or_no_content_type_is_accepted() -> None:
    encoded = _encoded()
    with_charset = _replace_header(
        encoded.headers, "content-type", b"application/json; charset=utf-8"
    )
    without = _replace_header(encoded.headers, "content-type", None)

    assert CODEC.decode(encoded.value, with_charset).payload == SAMPLES["task.completed"]
    assert CODEC.decode(encoded.value, without).payload == SAMPLES["task.completed"]


def test_a_bad_ce_time_is_undecodable() -> None:
    encoded = _encoded()

    with pytest.raises(UndecodableEvent, match="ce_time 'yesterday'"):
        CODEC.decode(encoded.value, _replace_header(encoded.headers, "ce_time", b"yesterday"))


def test_a_ce_time_with_an_offset_is_kept_as_that_instant() -> None:
    encoded = _encoded()
    headers = _replace_header(encoded.headers, "ce_time", b"2024-05-06T09:08:09.123456+02:00")

    assert CODEC.decode(encoded.value, headers).time == TIME


@pytest.mark.parametrize("ce_time", [b"2024-05-06T07:08:09", b"2024-05-06"])
def test_a_ce_time_without_a_utc_offset_is_undecodable(ce_time: bytes) -> None:
    # RFC 3339 requires the offset; without one the instant is unknown, and a naive
    # datetime would break every later comparison with aware ones.
    encoded = _encoded()

    with pytest.raises(UndecodableEvent, match="not an RFC 3339 timestamp"):
        CODEC.decode(encoded.value, _replace_header(encoded.headers, "ce_time", ce_time))


def test_a_missing_ce_time_means_now() -> None:
    encoded = _encoded()
    before = datetime.now(UTC)

    decoded = CODEC.decode(encoded.value, _replace_header(encoded.headers, "ce_time", None))

    assert before <= decoded.time <= datetime.now(UTC)


def test_the_first_of_repeated_headers_wins() -> None:
    encoded = _encoded()

    decoded = CODEC.decode(encoded.value, (*encoded.headers, ("ce_source", b"impostor")))

    assert decoded.source == "waypost/test"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"attempt": 0}, "attempt"),
        ({"confidence": 1.5}, "confidence"),
        ({"step": "Not A Step"}, "step"),
        ({"agent": {"capability": "triage", "version": "1"}}, "agent"),
        ({"reasoning": ["fine", 7]}, "reasoning/1"),
        ({"usage": {"input_tokens": -1}}, "usage/input_tokens"),
    ],
)
def test_a_body_breaking_the_schema_is_invalid_and_names_the_field(
    change: dict[str, object], path: str
) -> None:
    encoded = _encoded()
    body = orjson.dumps({**_body(), **change})

    with pytest.raises(InvalidEvent, match=f"at {path}:") as caught:
        CODEC.decode(body, encoded.headers)

    assert caught.value.event_type == "task.completed"


def test_a_missing_required_field_is_invalid_and_named() -> None:
    body = _body()
    del body["output"]

    with pytest.raises(InvalidEvent, match="output"):
        CODEC.decode(orjson.dumps(body), _encoded().headers)


def test_a_body_that_is_not_an_object_is_invalid() -> None:
    with pytest.raises(InvalidEvent, match=r"at \(body\)"):
        CODEC.decode(b"[1, 2]", _encoded().headers)


def test_unknown_fields_are_kept_for_a_tolerant_reader() -> None:
    body = {**_body(), "added_in_v2": {"x": 1}, "agent": {**_body()["agent"], "region": "eu"}}  # type: ignore[dict-item]

    decoded = CODEC.decode(orjson.dumps(body), _encoded().headers)

    assert isinstance(decoded.payload, TaskCompleted)
    assert decoded.payload.output == {"category": "billing"}
    assert decoded.payload.model_extra == {"added_in_v2": {"x": 1}}


def test_an_unknown_dataschema_falls_back_to_the_event_types_schema() -> None:
    encoded = _encoded()
    headers = _replace_header(
        encoded.headers, "ce_dataschema", b"https://schemas.waypost.dev/task.completed.v9.json"
    )

    assert CODEC.decode(encoded.value, headers).payload == SAMPLES["task.completed"]


def test_a_dataschema_of_another_event_type_does_not_bypass_the_types_schema() -> None:
    # The body breaks task.completed's schema (capability pattern) but happens to satisfy
    # workflow.failed's; naming that schema in ce_dataschema must not make it valid.
    encoded = _encoded()
    body = {**_body(), "capability": "NOT A CAPABILITY", "type": "x", "reason": "smuggled"}
    headers = _replace_header(
        encoded.headers, "ce_dataschema", b"https://schemas.waypost.dev/workflow.failed.v1.json"
    )

    with pytest.raises(InvalidEvent, match=r"is not a schema of waypost\.task\.completed"):
        CODEC.decode(orjson.dumps(body), headers)
