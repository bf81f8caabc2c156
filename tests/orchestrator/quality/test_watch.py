"""The drift check on the real PostgreSQL: a version whose rejection rate rose past the
threshold is announced by one ``decision_quality.drifted`` event through the outbox,
audited, never again while it stays high (across restarts and racing checkers too), and
again only after it recovered."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from orchestrator.publishing.outbox import OutboxPublisher
from orchestrator.publishing.records import Outgoing
from orchestrator.quality import store
from orchestrator.quality.drift import DriftPolicy
from orchestrator.quality.watch import ACTOR, DriftWatch, policy_of
from orchestrator.store import audit
from orchestrator.store.tables import outbox
from tests.orchestrator.quality.scripted import CAPABILITY, T0, Scripted
from waypost.bus.base import TopicSpec
from waypost.bus.memory import MemoryBus
from waypost.events import DecisionQualityDrifted, default_codec
from waypost.settings import OrchestratorSettings
from waypost.topics import Topics

pytestmark = pytest.mark.integration

NOW = T0 + timedelta(hours=1)
POLICY = DriftPolicy(
    window=timedelta(days=1), thresholds={"rejected": 0.2, "edited": 0.5}, min_decisions=5
)


@pytest.fixture
def bus(namespace: str) -> MemoryBus:
    """Our in-memory broker, with the workflow events topic."""
    bus = MemoryBus()
    bus.admin().ensure_topics([TopicSpec(Topics(namespace).workflow_events, 1)])
    return bus


@pytest.fixture
def make_watch(engine: Engine, namespace: str, bus: MemoryBus) -> Callable[..., DriftWatch]:
    """A drift check (a new one is an orchestrator restarted), publishing to ``bus``."""

    def build(*, publish: bool = True) -> DriftWatch:
        publisher = OutboxPublisher(engine, bus.publisher("orchestrator")) if publish else None
        return DriftWatch(
            engine=engine,
            outgoing=Outgoing(Topics(namespace), default_codec()),
            publisher=publisher,
            clock=lambda: NOW,
            policy=POLICY,
        )

    return build


def decided(scripted: Scripted, *, approved: int, rejected: int) -> None:
    for escalation in scripted.escalated("2", approved + rejected):
        action = "reject" if rejected > 0 else "approve"
        rejected -= action == "reject"
        scripted.decide(escalation, action)


def drifted_events(bus: MemoryBus, namespace: str) -> list[DecisionQualityDrifted]:
    codec = default_codec()
    events = []
    for record in bus.broker.records(Topics(namespace).workflow_events):
        payload = codec.decode(record.value, record.headers).payload
        assert isinstance(payload, DecisionQualityDrifted)
        assert record.key == CAPABILITY.encode()
        events.append(payload)
    return events


def waiting_in_outbox(engine: Engine) -> int:
    """Drift events in the outbox (the scripted workflows' own events are there too)."""
    with engine.connect() as conn:
        rows = conn.execute(select(outbox.c.headers)).scalars()
        return sum(["ce_type", "waypost.decision_quality.drifted"] in headers for headers in rows)


def quality_audit(engine: Engine) -> list[tuple[str, str, float]]:
    with engine.connect() as conn:
        entries = audit.recent(conn, actions=["quality_drifted", "quality_recovered"])
    assert {e.actor for e in entries} <= {ACTOR}
    return [(e.action, e.detail["verdict"], e.detail["rate"]) for e in reversed(entries)]


def test_a_drift_is_announced_once_and_audited(
    engine: Engine, namespace: str, bus: MemoryBus, make_watch: Callable[..., DriftWatch]
) -> None:
    scripted = Scripted(engine, namespace)
    decided(scripted, approved=7, rejected=3)
    watch = make_watch()

    changes = watch.check()
    again = watch.check()
    restarted = make_watch().check()

    assert [(c.verdict, c.drifted, c.rate) for c in changes] == [("rejected", True, 0.3)]
    assert again == restarted == []
    (event,) = drifted_events(bus, namespace)
    assert (event.capability, event.version, event.verdict) == (CAPABILITY, "2", "rejected")
    assert (event.rate, event.threshold, event.count, event.decided) == (0.3, 0.2, 3, 10)
    assert event.window_end - event.window_start == POLICY.window
    assert quality_audit(engine) == [("quality_drifted", "rejected", 0.3)]
    assert waiting_in_outbox(engine) == 0  # published and removed
    with engine.connect() as conn:
        (state,) = store.drift_states(conn).values()
    assert (state.drifted, state.rate, state.changed_at) == (True, 0.3, NOW)


def test_a_recovery_is_audited_and_a_new_crossing_announced_again(
    engine: Engine, namespace: str, bus: MemoryBus, make_watch: Callable[..., DriftWatch]
) -> None:
    scripted = Scripted(engine, namespace)
    decided(scripted, approved=7, rejected=3)
    watch = make_watch()
    watch.check()
    decided(scripted, approved=20, rejected=0)  # 3 of 30: 10 %

    recovered = watch.check()
    decided(scripted, approved=0, rejected=10)  # 13 of 40: 32.5 %
    drifted_again = watch.check()

    assert [(c.verdict, c.drifted) for c in recovered] == [("rejected", False)]
    assert [(c.verdict, c.drifted) for c in drifted_again] == [("rejected", True)]
    assert [e.rate for e in drifted_events(bus, namespace)] == [0.3, 0.325]
    assert quality_audit(engine) == [
        ("quality_drifted", "rejected", 0.3),
        ("quality_recovered", "rejected", 0.1),
        ("quality_drifted", "rejected", 0.325),
    ]


def test_racing_checkers_announce_once(
    engine: Engine, namespace: str, bus: MemoryBus, make_watch: Callable[..., DriftWatch]
) -> None:
    decided(Scripted(engine, namespace), approved=5, rejected=5)
    watches = [make_watch() for _ in range(4)]
    start = threading.Barrier(len(watches))
    found: list[int] = []

    def check(watch: DriftWatch) -> None:
        start.wait()
        found.append(len(watch.check()))

    threads = [threading.Thread(target=check, args=(w,)) for w in watches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(found) == [0, 0, 0, 1]
    assert len(drifted_events(bus, namespace)) == 1


def test_without_a_publisher_the_event_waits_in_the_outbox_for_the_relay(
    engine: Engine, namespace: str, bus: MemoryBus, make_watch: Callable[..., DriftWatch]
) -> None:
    decided(Scripted(engine, namespace), approved=4, rejected=6)

    make_watch(publish=False).check()

    assert waiting_in_outbox(engine) == 1
    assert drifted_events(bus, namespace) == []


def test_the_settings_make_the_policy() -> None:
    settings = OrchestratorSettings(
        quality_window_s=3600,
        quality_reject_threshold=0.1,
        quality_edit_threshold=0.3,
        quality_min_decisions=4,
    )

    assert policy_of(settings) == DriftPolicy(
        window=timedelta(hours=1),
        thresholds={"rejected": 0.1, "edited": 0.3},
        min_decisions=4,
    )
