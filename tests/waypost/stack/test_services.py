"""The embedded broker as a supervised service: it comes back empty, with its topics."""

from __future__ import annotations

from pathlib import Path

import pytest

from waypost.bus.base import TopicSpec
from waypost.bus.kafka import KafkaBus
from waypost.settings import StackSettings
from waypost.stack.broker import EmbeddedBroker, tansu_binary
from waypost.stack.process import free_port
from waypost.stack.services import BrokerService, provision_after_restarts
from waypost.stack.supervisor import Supervisor

pytestmark = pytest.mark.integration


@pytest.mark.slow  # 10-12 s: `make test-slow` (CI runs it)
def test_a_restarted_broker_has_its_topics_again_as_soon_as_it_is_up(
    tmp_path: Path, namespace: str
) -> None:
    service = BrokerService(
        EmbeddedBroker(tansu_binary(None), free_port(), None), tmp_path / "broker.log"
    )
    supervisor = Supervisor(lambda _line: None)
    supervisor.start(service)
    try:
        bootstrap = service.broker.bootstrap
        admin = KafkaBus(bootstrap, StackSettings(kafka_bootstrap=bootstrap)).admin()
        specs = [TopicSpec(f"{namespace}.a", 2), TopicSpec(f"{namespace}.b", 1)]
        assert sorted(admin.ensure_topics(specs)) == [f"{namespace}.a", f"{namespace}.b"]
        before = admin.topic_ids([s.name for s in specs])
        provision_after_restarts(supervisor, admin, specs)

        supervisor.restart("broker", "a test")

        # Created again by the start itself (an empty broker would create none of them).
        after = admin.topic_ids([s.name for s in specs])
        assert all(after.values()), after
        assert after != before  # new incarnations: the broker really came back empty
        assert admin.ensure_topics(specs) == []
    finally:
        supervisor.stop_all()
