"""The CloudEvents 1.0 envelope every Waypost event travels in."""

from __future__ import annotations

import random
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from waypost.events.payloads import Payload, TaskRef

TYPE_PREFIX = "waypost."


def new_id() -> str:
    """A fresh event or goal id: a random (version 4) UUID.

    Ids need uniqueness, not secrecy. ``uuid4`` makes one system call per id, which cost
    17 us per id under load on our 2-core CI machine (cProfile of the orchestrator during
    bench/e2e_throughput.py, every event needing one); the process PRNG, seeded from the
    OS and re-seeded in forked children, costs about 1 us.
    """
    bits = random.getrandbits(128)
    bits = (bits & ~(0xF000 << 64)) | (4 << 76)  # version 4
    bits = (bits & ~(0xC000 << 48)) | (0x8000 << 48)  # RFC 4122 variant
    return str(uuid.UUID(int=bits))


def new_traceparent() -> str:
    """A W3C traceparent starting a new trace (sampled)."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Event:
    """A typed payload with its CloudEvents attributes and Waypost extensions."""

    payload: Payload
    source: str
    id: str = field(default_factory=new_id)
    time: datetime = field(default_factory=utcnow)
    subject: str | None = None
    traceparent: str | None = None
    tracestate: str | None = None

    @property
    def type(self) -> str:
        """Event type without the ``waypost.`` prefix, e.g. ``task.completed``."""
        return self.payload.TYPE

    @property
    def ce_type(self) -> str:
        """The ``ce_type`` attribute, e.g. ``waypost.task.completed``."""
        return TYPE_PREFIX + self.payload.TYPE

    @property
    def key(self) -> str:
        """Kafka key: the workflow id (or task id on task topics); else the event id."""
        return self.payload.partition_key() or self.id

    @property
    def workflow_id(self) -> str | None:
        """The workflow this event belongs to, if any (goal events: their own id)."""
        workflow_id = getattr(self.payload, "workflow_id", None)
        if workflow_id is None and self.payload.TYPE == "goal.submitted":
            return self.id
        return workflow_id

    @property
    def task_id(self) -> str | None:
        """The task this event is about, if any (task events and decisions)."""
        task_id = getattr(self.payload, "task_id", None)
        return str(task_id) if task_id is not None else None

    @property
    def attempt(self) -> int | None:
        """The task attempt this event is about, if any."""
        return self.payload.attempt if isinstance(self.payload, TaskRef) else None
