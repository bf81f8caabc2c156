"""Waypost events: typed payloads in a CloudEvents envelope, and the codec for Kafka."""

from waypost.events.codec import Codec, EncodedEvent, default_codec
from waypost.events.envelope import Event, new_id, new_traceparent, utcnow
from waypost.events.payloads import (
    PAYLOAD_TYPES,
    AgentInfo,
    DeadLetterRef,
    DecisionRecorded,
    ErrorInfo,
    GoalSubmitted,
    Payload,
    TaskCompleted,
    TaskDispatched,
    TaskEscalated,
    TaskFailed,
    TaskRef,
    Usage,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
)

__all__ = [
    "PAYLOAD_TYPES",
    "AgentInfo",
    "Codec",
    "DeadLetterRef",
    "DecisionRecorded",
    "EncodedEvent",
    "ErrorInfo",
    "Event",
    "GoalSubmitted",
    "Payload",
    "TaskCompleted",
    "TaskDispatched",
    "TaskEscalated",
    "TaskFailed",
    "TaskRef",
    "Usage",
    "WorkflowCompleted",
    "WorkflowFailed",
    "WorkflowStarted",
    "default_codec",
    "new_id",
    "new_traceparent",
    "utcnow",
]
