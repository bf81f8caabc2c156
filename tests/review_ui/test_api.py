"""The JSON API over HTTP (FastAPI's TestClient) on the real PostgreSQL and broker."""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, func, select

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.publishing.outbox import OutboxPublisher
from orchestrator.publishing.records import Outgoing
from orchestrator.service.applier import Applier
from orchestrator.service.intake import Intake
from orchestrator.store import outbox
from orchestrator.store.tables import workflows
from review_ui.app import create_app
from review_ui.auth import store as auth_store
from review_ui.auth.roles import Role
from tests.waiting import wait_for
from waypost.bus.base import Publisher, TopicSpec
from waypost.bus.kafka import KafkaBus
from waypost.bus.loop import Delivery
from waypost.bus.memory import MemoryBus
from waypost.bus.records import ReceivedRecord
from waypost.events import Event, GoalSubmitted, default_codec, utcnow
from waypost.settings import HttpSettings
from waypost.stack.broker import EmbeddedBroker
from waypost.topics import Topics

pytestmark = pytest.mark.integration

PLAYBOOKS = Path(__file__).resolve().parents[1] / "support" / "playbooks"
PROBLEM = "application/problem+json"
TRACEPARENT = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"
TICKET = {"subject": "Charged twice", "body": "I see two charges for May."}


@pytest.fixture
def settings(make_settings: Callable[..., Any]) -> HttpSettings:
    settings: HttpSettings = make_settings(HttpSettings)
    return settings


@pytest.fixture
def playbooks() -> PlaybookRegistry:
    return PlaybookRegistry.load([PLAYBOOKS])


def make_client(
    settings: HttpSettings,
    engine: Engine,
    bootstrap: str,
    playbooks: PlaybookRegistry,
    publisher: Publisher | None = None,
) -> TestClient:
    app: FastAPI = create_app(
        settings,
        engine=engine,
        admin=KafkaBus(bootstrap, settings).admin(),
        playbooks=playbooks,
        publisher=publisher,
    )
    with engine.begin() as conn:
        token, _ = auth_store.create_token(conn, name="tests", role=Role.ADMIN)
    # Server errors come back as the 500 a real client would see, not as exceptions.
    return TestClient(
        app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {token}"}
    )


@pytest.fixture
def client(
    settings: HttpSettings, engine: Engine, broker: EmbeddedBroker, playbooks: PlaybookRegistry
) -> Iterator[TestClient]:
    """The app without a publisher: accepted goals wait in the outbox for the relay."""
    with make_client(settings, engine, broker.bootstrap, playbooks) as client:
        yield client


def post_goal(
    client: TestClient, goal_type: str = "test.echo", goal_input: Any = None, **headers: str
) -> Response:
    body = {"type": goal_type, "input": {"text": "hi"} if goal_input is None else goal_input}
    return client.post("/api/v1/goals", json=body, headers=headers)


def workflow_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(workflows)).scalar_one())


def queued(engine: Engine) -> list[tuple[str, Event]]:
    """Outbox rows, decoded (left in place)."""
    codec = default_codec()
    with engine.connect() as conn:
        rows = outbox.claim(conn, limit=100, created_before=utcnow())
    return [(r.topic, codec.decode(r.value, r.headers)) for _, r in rows]


def assert_problem(response: Response, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem document with this status; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


def plan_everything(engine: Engine, namespace: str) -> None:
    """What the relay and the orchestrator would do: consume queued goals and plan them."""
    codec = default_codec()
    topics = Topics(namespace)
    bus = MemoryBus()
    bus.admin().ensure_topics([TopicSpec(t, 1) for t in topics.all_topics(["echo"])])
    intake = Intake(
        engine=engine,
        applier=Applier(
            playbooks=PlaybookRegistry.load([PLAYBOOKS]),
            outgoing=Outgoing(topics, codec),
            random=random.Random(3).random,
        ),
        publisher=OutboxPublisher(engine, bus.publisher("orchestrator")),
        clock=utcnow,
    )
    with engine.begin() as conn:
        rows = outbox.claim(conn, limit=100, created_before=utcnow())
        outbox.remove(conn, ids=[row_id for row_id, _ in rows])
    intake.handle(
        [
            Delivery(
                ReceivedRecord(r.topic, 0, n, r.key, r.value, r.headers),
                codec.decode(r.value, r.headers),
            )
            for n, (_, r) in enumerate(rows)
        ]
    )


# --- POST /api/v1/goals ----------------------------------------------------------------


def test_a_goal_is_accepted(client: TestClient, engine: Engine, namespace: str) -> None:
    response = post_goal(client, goal_input={"text": "hello"})

    assert response.status_code == 202, response.text
    workflow_id = response.json()["workflow_id"]
    assert uuid.UUID(workflow_id)
    assert response.headers["location"] == f"/api/v1/workflows/{workflow_id}"
    assert response.json()["status_url"] == response.headers["location"]
    with engine.connect() as conn:
        assert outbox.backlog(conn) == 1
    ((topic, event),) = queued(engine)
    assert topic == f"{namespace}.goals"
    assert event.id == workflow_id
    assert event.payload == GoalSubmitted(type="test.echo", input={"text": "hello"})
    assert event.traceparent is not None  # a trace starts here


def test_the_traceparent_of_the_request_is_kept(client: TestClient, engine: Engine) -> None:
    post_goal(client, traceparent=TRACEPARENT)
    post_goal(client, traceparent="not-a-traceparent")

    kept, replaced = (event.traceparent for _, event in queued(engine))
    assert kept == TRACEPARENT
    assert replaced is not None
    assert replaced != "not-a-traceparent"


def test_the_same_idempotency_key_twice_makes_one_workflow(
    client: TestClient, engine: Engine
) -> None:
    first = post_goal(client, **{"Idempotency-Key": "order-42:retry.1"})
    second = post_goal(client, **{"Idempotency-Key": "order-42:retry.1"})

    assert first.status_code == second.status_code == 202
    assert first.json()["workflow_id"] == second.json()["workflow_id"] == "order-42:retry.1"
    assert second.headers["location"] == "/api/v1/workflows/order-42:retry.1"
    assert workflow_count(engine) == 1
    assert len(queued(engine)) == 1  # one goal event


def test_the_same_idempotency_key_with_another_input_is_a_conflict(
    client: TestClient, engine: Engine
) -> None:
    post_goal(client, goal_input={"text": "one"}, **{"Idempotency-Key": "k1"})

    response = post_goal(client, goal_input={"text": "two"}, **{"Idempotency-Key": "k1"})

    body = assert_problem(response, 409)
    assert "k1" in body["detail"]
    assert workflow_count(engine) == 1


def test_the_same_idempotency_key_with_another_type_is_a_conflict(client: TestClient) -> None:
    post_goal(client, goal_input=TICKET, goal_type="support.ticket", **{"Idempotency-Key": "k"})

    response = post_goal(
        client, goal_input=TICKET, goal_type="test.echo", **{"Idempotency-Key": "k"}
    )

    assert_problem(response, 409)


def test_an_unknown_goal_type_lists_the_known_ones(
    client: TestClient, engine: Engine, playbooks: PlaybookRegistry
) -> None:
    response = post_goal(client, goal_type="no.such.type")

    body = assert_problem(response, 422)
    assert "no.such.type" in body["detail"]
    assert body["known"] == playbooks.types()
    assert {"support.ticket", "test.echo"} <= set(body["known"])
    assert workflow_count(engine) == 0


def test_input_breaking_the_playbook_schema_lists_the_errors(
    client: TestClient, engine: Engine
) -> None:
    response = post_goal(client, goal_type="support.ticket", goal_input={"subject": "Hi"})

    body = assert_problem(response, 422)
    # The same shape as any other invalid request: a list of {field, message}.
    assert body["errors"] == [{"field": "input", "message": '"body" is a required property'}]
    assert workflow_count(engine) == 0
    assert queued(engine) == []


def test_a_malformed_json_body_is_a_problem(client: TestClient, engine: Engine) -> None:
    response = client.post(
        "/api/v1/goals",
        content=b'{"type": "test.echo", "input": ',
        headers={"content-type": "application/json"},
    )

    body = assert_problem(response, 422)
    assert body["errors"]
    assert workflow_count(engine) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"input": {"text": "hi"}},
        {"type": "test.echo"},
        {"type": "test.echo", "input": ["not", "an", "object"]},
        {"type": "Not A Type", "input": {}},
    ],
    ids=["no-type", "no-input", "input-not-object", "bad-type-name"],
)
def test_a_body_of_the_wrong_shape_is_a_problem(client: TestClient, body: Any) -> None:
    body = assert_problem(client.post("/api/v1/goals", json=body), 422)
    assert body["errors"]


@pytest.mark.parametrize(
    "key",
    ["has spaces", "x" * 201, "semi;colon", "slash/y"],
    ids=["spaces", "too-long", "semicolon", "slash"],
)
def test_a_bad_idempotency_key_is_refused(client: TestClient, engine: Engine, key: str) -> None:
    response = post_goal(client, **{"Idempotency-Key": key})

    assert_problem(response, 400)
    assert workflow_count(engine) == 0


@pytest.mark.parametrize(
    "raw_input",
    [
        b'{"text": "nul \\u0000 inside"}',  # PostgreSQL's jsonb cannot hold U+0000
        b'{"text": "x", "n": 18446744073709551616}',  # valid JSON, beyond 64-bit integers
    ],
    ids=["nul-character", "huge-integer"],
)
def test_input_that_cannot_be_stored_is_a_client_error(
    client: TestClient, engine: Engine, raw_input: bytes
) -> None:
    # The client sent valid JSON that Waypost cannot store or encode: that is the
    # client's to fix (422 with a reason), not an internal error.
    response = client.post(
        "/api/v1/goals",
        content=b'{"type": "test.echo", "input": ' + raw_input + b"}",
        headers={"content-type": "application/json"},
    )

    assert_problem(response, 422)
    assert workflow_count(engine) == 0


def test_with_a_publisher_the_goal_goes_to_the_broker_at_once(
    settings: HttpSettings,
    engine: Engine,
    broker: EmbeddedBroker,
    playbooks: PlaybookRegistry,
    namespace: str,
) -> None:
    bus = KafkaBus(broker.bootstrap, settings)
    topics = Topics(namespace)
    bus.admin().ensure_topics([TopicSpec(topics.goals, 1)])
    publisher = bus.publisher("http-test")
    subscriber = bus.subscriber(f"{namespace}.check", [topics.goals], "check")
    try:
        with make_client(settings, engine, broker.bootstrap, playbooks, publisher) as client:
            response = post_goal(client, **{"Idempotency-Key": "sent-at-once"})
        assert response.status_code == 202
        with engine.connect() as conn:
            assert outbox.backlog(conn) == 0  # acknowledged, so nothing left for the relay

        def received() -> list[ReceivedRecord]:
            return subscriber.poll(10, 0.2)

        (record,) = wait_for(received, timeout=20, interval=0, what="the goal on the broker")
        assert default_codec().decode(record.value, record.headers).id == "sent-at-once"
    finally:
        subscriber.close()
        publisher.close()


@pytest.mark.slow  # several seconds of broker or browser time: make test-slow
def test_a_committed_goal_is_accepted_when_the_broker_fails_to_take_it(
    settings: HttpSettings,
    engine: Engine,
    own_broker: EmbeddedBroker,
    playbooks: PlaybookRegistry,
    namespace: str,
) -> None:
    # The producer gives a record up after 2 s rather than 10: the answer comes sooner.
    quick = settings.model_copy(update={"kafka_client_config": {"message.timeout.ms": "2000"}})
    bus = KafkaBus(own_broker.bootstrap, quick)
    bus.admin().ensure_topics([TopicSpec(Topics(namespace).goals, 1)])
    publisher = bus.publisher("http-test")
    try:
        with make_client(settings, engine, own_broker.bootstrap, playbooks, publisher) as client:
            assert post_goal(client, **{"Idempotency-Key": "before"}).status_code == 202
            # Restarted empty: the producer is unknown to it and its topic is gone.
            own_broker.stop()
            own_broker.start()
            response = post_goal(client, **{"Idempotency-Key": "during"})
        assert response.status_code == 202, response.text
        assert response.json()["workflow_id"] == "during"
        with engine.connect() as conn:
            assert outbox.backlog(conn) == 1  # the relay delivers it once the topic is back
    finally:
        publisher.close()


class _BrokenPublisher:
    """A publisher whose client fails outright (as librdkafka's flush can)."""

    def send(self, records: Any) -> Any:
        raise RuntimeError("KafkaError{code=UNKNOWN_PRODUCER_ID}")

    def close(self) -> None:
        pass


def test_a_committed_goal_is_accepted_when_publishing_raises(
    settings: HttpSettings, engine: Engine, broker: EmbeddedBroker, playbooks: PlaybookRegistry
) -> None:
    with make_client(settings, engine, broker.bootstrap, playbooks, _BrokenPublisher()) as client:
        response = post_goal(client, **{"Idempotency-Key": "raised"})
    assert response.status_code == 202, response.text
    with engine.connect() as conn:
        assert outbox.backlog(conn) == 1


# --- GET /api/v1/workflows/{id} --------------------------------------------------------


def test_an_accepted_workflow_has_no_tasks_yet(client: TestClient) -> None:
    workflow_id = post_goal(client).json()["workflow_id"]

    response = client.get(f"/api/v1/workflows/{workflow_id}")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == workflow_id
    assert body["status"] == "accepted"
    assert body["type"] == "test.echo"
    assert body["input"] == {"text": "hi"}
    assert body["tasks"] == []


def test_a_planned_workflow_shows_its_tasks(
    client: TestClient, engine: Engine, namespace: str
) -> None:
    workflow_id = post_goal(client, goal_input={"text": "hello"}).json()["workflow_id"]
    plan_everything(engine, namespace)

    response = client.get(f"/api/v1/workflows/{workflow_id}")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "running"
    assert body["started_at"] is not None
    (task,) = body["tasks"]
    assert task["step"] == "echo"
    assert task["capability"] == "echo"
    assert task["status"] == "dispatched"
    assert task["attempt"] == 1
    assert task["max_attempts"] == 3
    assert task["input"] == {"text": "hello"}
    assert task["lease_expires_at"] is not None
    assert [(a["number"], a["outcome"]) for a in task["attempts"]] == [(1, None)]


def test_an_unknown_workflow_is_not_found(client: TestClient) -> None:
    body = assert_problem(client.get("/api/v1/workflows/nope"), 404)
    assert "nope" in body["detail"]
    assert body["instance"] == "/api/v1/workflows/nope"


def test_an_id_with_a_nul_character_is_not_found(client: TestClient) -> None:
    # No workflow id can contain U+0000 (PostgreSQL text cannot), so none is found.
    assert_problem(client.get("/api/v1/workflows/a%00b"), 404)


# --- GET /api/v1/workflows -------------------------------------------------------------


def test_the_list_filters_by_status_type_and_goal_id(
    client: TestClient, engine: Engine, namespace: str
) -> None:
    echo_1 = post_goal(client).json()["workflow_id"]
    ticket = post_goal(client, goal_type="support.ticket", goal_input=TICKET).json()["workflow_id"]
    plan_everything(engine, namespace)  # echo_1 and the ticket are running now
    echo_2 = post_goal(client).json()["workflow_id"]

    def ids(**params: Any) -> list[str]:
        response = client.get("/api/v1/workflows", params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert ids() == [echo_2, ticket, echo_1]  # newest first
    assert ids(status="accepted") == [echo_2]
    assert ids(status="running") == [ticket, echo_1]
    assert ids(type="support.ticket") == [ticket]
    assert ids(type="test.echo", status="running") == [echo_1]
    assert ids(goal_id=echo_1) == [echo_1]
    assert ids(status="completed") == []
    item = client.get("/api/v1/workflows", params={"goal_id": ticket}).json()["items"][0]
    assert item["type"] == "support.ticket"
    assert item["status"] == "running"
    assert item["finished_at"] is None


def test_the_list_pages_with_a_cursor(client: TestClient) -> None:
    created = [
        post_goal(client, **{"Idempotency-Key": f"g{n}"}).json()["workflow_id"] for n in range(5)
    ]

    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    pages = 0
    while True:
        body = client.get("/api/v1/workflows", params=params).json()
        pages += 1
        assert len(body["items"]) <= 2
        seen += [item["id"] for item in body["items"]]
        if body["next_cursor"] is None:
            break
        params = {"limit": 2, "cursor": body["next_cursor"]}

    assert pages == 3
    assert seen == list(reversed(created))


@pytest.mark.parametrize(
    "params",
    [{"status": "sleeping"}, {"limit": 0}, {"limit": 201}, {"cursor": "x" * 501}],
    ids=["status", "limit-zero", "limit-too-big", "cursor-too-long"],
)
def test_invalid_list_parameters_are_a_problem(client: TestClient, params: dict[str, Any]) -> None:
    body = assert_problem(client.get("/api/v1/workflows", params=params), 422)
    assert body["errors"]


def test_an_invalid_cursor_is_a_bad_request(client: TestClient) -> None:
    body = assert_problem(client.get("/api/v1/workflows", params={"cursor": "garbage"}), 400)
    assert "next_cursor" in body["detail"]


def test_a_forged_cursor_with_a_nul_character_is_a_bad_request(client: TestClient) -> None:
    forged = base64.urlsafe_b64encode(b"2030-01-01T00:00:00+00:00|a\x00b").decode()

    assert_problem(client.get("/api/v1/workflows", params={"cursor": forged}), 400)


@pytest.mark.parametrize("name", ["goal_id", "type"])
def test_a_filter_with_a_nul_character_is_not_a_server_error(client: TestClient, name: str) -> None:
    response = client.get("/api/v1/workflows", params={name: "a\x00b"})

    # Nothing can match (200 with no items), or the filter is refused (422); never a 500.
    assert response.status_code in {200, 422}, response.text


# --- health --------------------------------------------------------------------------


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_when_broker_and_database_answer(client: TestClient) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": True, "broker": True}}


def test_readyz_when_the_broker_is_unreachable(
    settings: HttpSettings, engine: Engine, playbooks: PlaybookRegistry
) -> None:
    # A real admin client pointed at a port nothing listens on.
    with make_client(settings, engine, "127.0.0.1:1", playbooks) as client:
        response = client.get("/readyz")

    body = assert_problem(response, 503)
    assert body["checks"] == {"database": True, "broker": False}
    assert "broker" in body["detail"]
