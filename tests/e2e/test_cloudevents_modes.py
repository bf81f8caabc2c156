"""CloudEvents in either Kafka content mode, end to end on real processes: a
structured-mode goal built and serialized by the official ``cloudevents`` SDK completes
its workflow, a malformed one is dead-lettered saying which modes are accepted, and a
dead letter with broken headers is repaired by a header edit and replayed to completion.
"""

from __future__ import annotations

import json

import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.v1.event import CloudEvent

from tests.e2e.conftest import Platform
from tests.e2e.test_dead_letters import Console
from tests.waiting import wait_for
from waypost.bus.dead_letters import HEADER_PREFIX
from waypost.bus.kafka import KafkaBus
from waypost.bus.records import OutgoingRecord
from waypost.events import Event, GoalSubmitted, default_codec, new_id
from waypost.events.modes import ACCEPTED_MODES

pytestmark = pytest.mark.e2e


def _structured(platform: Platform, message: ce_kafka.KafkaMessage) -> OutgoingRecord:
    key = message.key.encode() if isinstance(message.key, str) else message.key
    headers = tuple(message.headers.items())
    return OutgoingRecord(platform.topics.goals, key, message.value, headers)


def test_a_structured_goal_from_the_cloudevents_sdk_completes_and_a_malformed_one_is_dead_lettered(
    platform: Platform,
) -> None:
    platform.start_orchestrator()
    platform.start_agents()
    admin = KafkaBus(platform.bootstrap, platform.settings()).admin()
    wait_for(lambda: platform.topics.goals in admin.list_topics(), timeout=30, what="topics")
    goal_id = new_id()
    good = ce_kafka.to_structured_event(
        CloudEvent(
            {
                "id": goal_id,
                "source": "https://crm.example/tickets",
                "type": "waypost.goal.submitted",
                "datacontenttype": "application/json",
                "partitionkey": goal_id,
            },
            {"type": "test.echo", "input": {"text": "structured"}},
        )
    )
    assert good.headers == {"content-type": b"application/cloudevents+json"}
    malformed = ce_kafka.KafkaMessage(
        headers={"content-type": b"application/cloudevents+json"},
        key=b"no-source",
        value=json.dumps(
            {"specversion": "1.0", "id": "x", "type": "waypost.goal.submitted", "data": {}}
        ).encode(),
    )

    platform.publish([_structured(platform, malformed), _structured(platform, good)])

    wait_for(
        lambda: platform.statuses([goal_id]) == {"completed": 1},
        timeout=60,
        what="the structured goal's workflow to complete",
    )
    state = platform.workflow(goal_id)
    assert state is not None
    assert state.tasks["echo"].output == {"text": "structured", "attempt": 1}
    (dead,) = platform.read_topic(platform.topics.dlq(platform.topics.goals), expect=1)
    assert (dead.key, dead.value) == (malformed.key, malformed.value)
    message = (dead.header(f"{HEADER_PREFIX}error-message") or b"").decode()
    assert "not a CloudEvent in structured mode: missing attribute(s) source" in message
    assert message.endswith(ACCEPTED_MODES)
    assert dead.header(f"{HEADER_PREFIX}reason") == b"undecodable"


@pytest.mark.slow  # 10-15 s (four processes): `make test-slow` (CI runs it)
def test_a_dead_letter_with_broken_headers_is_repaired_by_a_header_edit_and_completes(
    platform: Platform,
) -> None:
    console = Console(platform)
    platform.start_orchestrator()
    platform.start_agents()
    platform.start("indexer", "indexer", "run")
    console.start()
    encoded = default_codec().encode(
        Event(GoalSubmitted(type="test.echo", input={"text": "repaired"}), source="test")
    )
    goal_id = encoded.key.decode()
    broken = tuple(
        (name, b"waypost.goal.submited" if name == "ce_type" else value)
        for name, value in encoded.headers
    )
    platform.publish([OutgoingRecord(platform.topics.goals, encoded.key, encoded.value, broken)])

    (dead,) = wait_for(
        lambda: console.dead_letters("--topic=goals"), timeout=60, what="the dead letter"
    )
    assert dead["reason"] == "undecodable"
    assert "unknown ce_type 'waypost.goal.submited'" in dead["error_message"]
    dead_id = str(dead["id"])

    as_it_is = console.cli("dlq", "replay", dead_id, "--dry-run", check=False)
    assert "1 invalid" in as_it_is.stdout, as_it_is.stdout
    repair = ("--header", "ce_type=waypost.goal.submitted")
    dry = console.cli("dlq", "replay", dead_id, *repair, "--dry-run")
    assert "1 sent" in dry.stdout
    assert "ce_type: waypost.goal.submitted" in dry.stdout
    replayed = console.cli("dlq", "replay", dead_id, *repair)
    assert "1 sent" in replayed.stdout

    wait_for(
        lambda: platform.statuses([goal_id]) == {"completed": 1},
        timeout=60,
        what="the repaired goal's workflow to complete",
    )
    shown = json.loads(console.cli("dlq", "show", dead_id, "--json").stdout)
    assert shown["status"] == "replayed"
    (history,) = shown["replays"]
    assert history["outcome"] == "sent"
