"""The console over HTTP (FastAPI's TestClient) on the real PostgreSQL: users, logged-in
clients, escalations opened the way the orchestrator opens them, and HTML checks."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.publishing.records import Outgoing
from orchestrator.service.applier import Applier
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.workflows import NewWorkflow
from orchestrator.workflow.messages import TaskSucceeded
from review_ui.app import create_app
from review_ui.auth import store as auth_store
from review_ui.auth.roles import Role
from review_ui.security import CONTENT_SECURITY_POLICY
from waypost.bus.memory import MemoryBus
from waypost.events import default_codec, new_id, utcnow
from waypost.settings import HttpSettings
from waypost.topics import Topics

PLAYBOOKS = Path(__file__).resolve().parent / "playbooks"
ORIGIN = "http://testserver"
PASSWORD = "correct horse battery"
USERS = {"rita": Role.REVIEWER, "rob": Role.REVIEWER, "ann": Role.ANALYST, "ada": Role.ADMIN}
BROWSER = {"Origin": ORIGIN, "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture
def settings(make_settings: Callable[..., Any]) -> HttpSettings:
    """The HTTP settings of this test's database and namespace."""
    built: HttpSettings = make_settings(HttpSettings)
    return built


@pytest.fixture
def playbooks() -> PlaybookRegistry:
    """The built-in playbooks and the console tests' own."""
    return PlaybookRegistry.load([PLAYBOOKS])


@pytest.fixture
def users(engine: Engine) -> dict[str, Role]:
    """A reviewer pair, an analyst and an admin, all with PASSWORD."""
    with engine.begin() as conn:
        for name, role in USERS.items():
            auth_store.add_user(conn, name=name, password=PASSWORD, role=role)
    return USERS


@pytest.fixture
def make_client(
    settings: HttpSettings, engine: Engine, playbooks: PlaybookRegistry, users: dict[str, Role]
) -> Iterator[Callable[..., TestClient]]:
    """Clients like browsers: same-origin requests asking for HTML; ``login`` logs in."""
    clients: list[TestClient] = []

    def build(login: str | None = None, **overrides: Any) -> TestClient:
        app = create_app(
            settings.model_copy(update=overrides) if overrides else settings,
            engine=engine,
            admin=MemoryBus().admin(),
            playbooks=playbooks,
        )
        client = TestClient(app, base_url=ORIGIN, headers=BROWSER, follow_redirects=False)
        clients.append(client)
        if login is not None:
            response = log_in(client, login)
            assert response.status_code == 303, response.text
        return client

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def reviewer(make_client: Callable[..., TestClient]) -> TestClient:
    """Logged in as rita (reviewer)."""
    return make_client("rita")


@pytest.fixture
def analyst(make_client: Callable[..., TestClient]) -> TestClient:
    """Logged in as ann (analyst)."""
    return make_client("ann")


@pytest.fixture
def admin(make_client: Callable[..., TestClient]) -> TestClient:
    """Logged in as ada (admin)."""
    return make_client("ada")


def log_in(
    client: TestClient,
    name: str,
    password: str = PASSWORD,
    *,
    headers: dict[str, str] | None = None,
    **form: str,
) -> Response:
    """Submit the login form."""
    return client.post("/login", data={"name": name, "password": password, **form}, headers=headers)


def csrf_token(client: TestClient) -> str:
    """The session's CSRF token, as a page embeds it."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/inbox").text)
    assert match, "no CSRF token on the inbox page"
    return match[1]


def htmx(target: str | None = None) -> dict[str, str]:
    """The headers htmx sends (with the target element's id)."""
    headers = {"HX-Request": "true", "HX-Current-URL": f"{ORIGIN}/inbox"}
    if target:
        headers["HX-Target"] = target
    return headers


@dataclass
class Escalations:
    """Opens escalations as the orchestrator does: plan a goal, report the step's
    result, and let the state machine escalate it (requires_approval or low confidence)."""

    engine: Engine
    applier: Applier
    opened: list[str] = field(default_factory=list)

    def open(
        self,
        subject: str = "Refund for order 42",
        *,
        goal_type: str = "test.review",
        output: Mapping[str, Any] | None = None,
        confidence: float = 0.9,
        reasoning: tuple[str, ...] = ("the customer asked politely",),
        at: datetime | None = None,
        goal_input: Mapping[str, Any] | None = None,
        traceparent: str | None = None,
    ) -> str:
        """A new pending escalation (its workflow in ``traceparent``'s trace); its id."""
        at = at or utcnow()
        workflow_id = new_id()
        step = "draft" if goal_type == "test.review" else "triage"
        if goal_input is None:
            goal_input = {"subject": subject}
            if goal_type == "support.ticket":
                goal_input = {"subject": subject, "body": "Please help."}
        with self.engine.begin() as conn:
            self.applier.plan_new(
                conn,
                goals=[NewWorkflow(workflow_id, goal_type, goal_input, at, traceparent)],
                now=at,
            )
        with self.engine.begin() as conn:
            states = workflow_rows.lock(conn, ids=[workflow_id])
            task = states[workflow_id].tasks[step]
            result = TaskSucceeded(
                task.id,
                task.attempt,
                dict(output if output is not None else {"text": f"Dear customer: {subject}"}),
                confidence=confidence,
                reasoning=reasoning,
            )
            applied = self.applier.apply(
                conn, states=states, inputs=[(workflow_id, result)], now=at
            )
            assert applied.applied == 1, applied.notes
            (escalation_id,) = states[workflow_id].escalations
        self.opened.append(escalation_id)
        return escalation_id

    def aged(self, minutes: float, subject: str = "Aged", **kwargs: Any) -> str:
        """An escalation opened ``minutes`` ago."""
        return self.open(subject, at=utcnow() - timedelta(minutes=minutes), **kwargs)


@pytest.fixture
def escalations(engine: Engine, playbooks: PlaybookRegistry, namespace: str) -> Escalations:
    """Opens escalations in this test's database."""
    applier = Applier(
        playbooks=playbooks,
        outgoing=Outgoing(Topics(namespace), default_codec()),
        random=lambda: 0.5,
    )
    return Escalations(engine, applier)


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def elements(html: str, tag: str | None = None, **wanted: str) -> list[dict[str, str | None]]:
    """The attributes of every element (of ``tag``, with ``wanted`` attribute values)."""
    parser = _Elements()
    parser.feed(html)

    def matches(attrs: dict[str, str | None], key: str, value: str) -> bool:
        key = key.replace("_", "-")
        return key in attrs if value == "" else attrs.get(key) == value  # "": present

    return [
        attrs
        for name, attrs in parser.found
        if (tag is None or name == tag)
        and all(matches(attrs, key, value) for key, value in wanted.items())
    ]


def assert_safe_page(response: Response) -> str:
    """The page keeps to the CSP: the header is there, no inline script or style, no
    event-handler attribute, and every link htmx loads also has an href."""
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    html = response.text
    parser = _Elements()
    parser.feed(html)
    for tag, attrs in parser.found:
        assert "style" not in attrs, f"style attribute on <{tag}>"
        assert tag != "style", "a <style> element"
        assert not any(name.startswith("on") for name in attrs), f"event handler on <{tag}>"
        if tag == "script":
            assert attrs.get("src"), "an inline <script>"
        if tag == "a" and "hx-get" in attrs:
            assert attrs.get("href") == attrs["hx-get"], f"hx-get without the same href: {attrs}"
    return html


def section(html: str, start: str) -> str:
    """The markup from ``start`` to the end of the element it opens (same tag name)."""
    begin = html.index(start)
    tag = re.match(r"<(\w+)", start)
    assert tag is not None
    end = html.index(f"</{tag[1]}>", begin)
    return html[begin:end]
