"""GET /api/v1/decision-quality[/decisions] on the real PostgreSQL: the rates of
scripted agent versions after scripted decisions, the drift the check found, the agent's
reasoning next to each verdict, and refusals of bad filters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from orchestrator.publishing.records import Outgoing
from orchestrator.quality.drift import DriftPolicy
from orchestrator.quality.watch import DriftWatch
from review_ui.app import create_app
from review_ui.auth import store as auth_store
from review_ui.auth.roles import Role
from tests.orchestrator.quality.scripted import CAPABILITY, Scripted
from waypost.bus.memory import MemoryBus
from waypost.events import default_codec, utcnow
from waypost.settings import HttpSettings
from waypost.topics import Topics

# Many requests each on a fresh app and schema: `make test-slow` (CI runs it).
pytestmark = [pytest.mark.integration, pytest.mark.slow]

EDITED = {"text": "Dear customer, your refund of 40 EUR is on its way."}


@pytest.fixture
def scripted(engine: Engine, namespace: str) -> Scripted:
    """Version 1: one confident result, one approved. Version 2: four escalated, one
    approved (rita), one edited (rob), two rejected (rita, rob); all in the last minute."""
    scripted = Scripted(engine, namespace)
    at = utcnow() - timedelta(seconds=50)
    assert scripted.result("1", at=at, confidence=0.95) is None
    (one,) = scripted.escalated("1", 1, at=at)
    scripted.decide(one, "approve", at=at)
    decisions = [("approve", "rita"), ("edit", "rob"), ("reject", "rita"), ("reject", "rob")]
    for step, (action, reviewer) in enumerate(decisions):
        moment = at + timedelta(seconds=10 * step)
        (escalation,) = scripted.escalated("2", 1, at=moment)
        output = EDITED if action == "edit" else None
        scripted.decide(escalation, action, reviewer=reviewer, at=moment, output=output)
    return scripted


@pytest.fixture
def client(
    make_settings: Callable[..., Any], engine: Engine, scripted: Scripted
) -> Iterator[TestClient]:
    """The app with a reviewer's bearer token."""
    app = create_app(
        make_settings(HttpSettings),
        engine=engine,
        admin=MemoryBus().admin(),
        playbooks=scripted.playbooks,
    )
    with engine.begin() as conn:
        token, _ = auth_store.create_token(conn, name="rita", role=Role.REVIEWER)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def test_each_version_shows_its_rates_after_the_decisions(client: TestClient) -> None:
    response = client.get("/api/v1/decision-quality")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["days"] == 14
    one, two = body["items"]
    assert (one["capability"], one["version"], two["version"]) == (CAPABILITY, "1", "2")
    assert (one["results"], one["escalated"], one["escalation_rate"]) == (2, 1, 0.5)
    assert one["approval_rate"] == 1.0
    assert (two["results"], two["escalated"], two["decided"]) == (4, 4, 4)
    assert (two["approval_rate"], two["edit_rate"], two["rejection_rate"]) == (0.25, 0.25, 0.5)
    assert two["retry_rate"] == 0.0
    assert 0 < two["edit_distance"] < 0.5
    assert two["agreement"] == 0.5  # rejections were the day's most common verdict
    assert len(two["days"]) == 14
    assert sum(day["escalated"] for day in two["days"]) == 4
    assert sum(day["rejected"] for day in two["days"]) == 2
    assert two["drifts"] == []


def test_a_drift_the_check_found_is_shown_on_its_version(
    client: TestClient, engine: Engine, namespace: str
) -> None:
    DriftWatch(
        engine=engine,
        outgoing=Outgoing(Topics(namespace), default_codec()),
        publisher=None,
        clock=utcnow,
        policy=DriftPolicy(window=timedelta(days=1), thresholds={"rejected": 0.4}, min_decisions=2),
    ).check()

    items = client.get("/api/v1/decision-quality").json()["items"]

    assert items[0]["drifts"] == []  # version 1: nothing rejected
    (drift,) = items[1]["drifts"]
    assert (drift["verdict"], drift["rate"], drift["threshold"]) == ("rejected", 0.5, 0.4)


def test_the_filters_narrow_the_list(client: TestClient) -> None:
    only_two = client.get("/api/v1/decision-quality", params={"version": "2", "days": 1})
    other = client.get("/api/v1/decision-quality", params={"capability": "checker"})

    assert [i["version"] for i in only_two.json()["items"]] == ["2"]
    assert len(only_two.json()["items"][0]["days"]) == 1
    assert other.json()["items"] == []


@pytest.mark.parametrize(
    "params",
    [{"days": 0}, {"days": 91}, {"days": "week"}, {"version": "a\x00b"}, {"capability": "x" * 201}],
)
def test_bad_filters_are_refused_with_a_problem(client: TestClient, params: dict[str, Any]) -> None:
    response = client.get("/api/v1/decision-quality", params=params)

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"]


def test_a_versions_verdicts_sit_next_to_the_agents_reasoning(client: TestClient) -> None:
    response = client.get(
        "/api/v1/decision-quality/decisions",
        params={"capability": CAPABILITY, "version": "2", "limit": 3},
    )

    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [i["verdict"] for i in items] == ["rejected", "rejected", "edited"]  # newest first
    rejected, _, edited = items
    assert rejected["reasoning"] == ["the order was paid twice"]
    assert (rejected["reviewer"], rejected["reason"]) == ("rob", "wrong amount")
    assert rejected["proposed"] == {"text": "Dear customer, your refund is on its way."}
    assert edited["edited"] == EDITED
    assert 0 < edited["edit_distance"] < 0.5
    assert edited["decided_at"] is not None


def test_without_filters_the_decisions_of_every_version_are_listed(client: TestClient) -> None:
    response = client.get("/api/v1/decision-quality/decisions", params={"days": 1})

    assert response.status_code == 200, response.text
    versions = [(i["capability"], i["version"]) for i in response.json()["items"]]
    assert sorted(versions) == [(CAPABILITY, "1")] + [(CAPABILITY, "2")] * 4


def test_bad_decision_filters_are_refused(client: TestClient) -> None:
    response = client.get("/api/v1/decision-quality/decisions", params={"limit": 0})

    assert response.status_code == 422
    assert "limit" in str(response.json()["errors"])


def test_without_credentials_it_is_401(client: TestClient) -> None:
    response = client.get("/api/v1/decision-quality", headers={"Authorization": ""})

    assert response.status_code == 401
