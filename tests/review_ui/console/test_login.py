"""Logging in and out, sessions and where pages send a visitor without one."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from orchestrator.store import audit
from review_ui.auth import store as auth_store
from review_ui.auth.principal import SESSION_COOKIE
from tests.review_ui.console.conftest import (
    PASSWORD,
    assert_safe_page,
    csrf_token,
    htmx,
    log_in,
)
from waypost.events import utcnow

pytestmark = pytest.mark.integration


def session_cookie(set_cookie: list[str]) -> str:
    (header,) = [h for h in set_cookie if h.startswith(f"{SESSION_COOKIE}=")]
    return header


def test_the_login_page_is_a_plain_form(make_client: Callable[..., TestClient]) -> None:
    client = make_client()

    response = client.get("/login", params={"next": "/escalations/x"})

    assert response.status_code == 200
    html = assert_safe_page(response)
    assert 'action="/login"' in html
    assert 'name="next" value="/escalations/x"' in html


def test_login_sets_an_http_only_lax_session_cookie(
    make_client: Callable[..., TestClient], engine: Engine
) -> None:
    client = make_client()

    response = log_in(client, "rita", next="/inbox?sort=due")

    assert response.status_code == 303
    assert response.headers["location"] == "/inbox?sort=due"
    cookie = session_cookie(response.headers.get_list("set-cookie")).lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/" in cookie
    assert "secure" not in cookie  # plain http and cookie_secure=auto
    assert client.get("/inbox").status_code == 200
    with engine.connect() as conn:
        (entry,) = audit.recent(conn, actions=["login"])
    assert entry.actor == "rita"
    assert entry.detail == {"ip": "testclient"}


def test_the_cookie_is_secure_when_configured(make_client: Callable[..., TestClient]) -> None:
    client = make_client(cookie_secure="always")

    response = log_in(client, "rita")

    assert "; secure" in session_cookie(response.headers.get_list("set-cookie")).lower()


def test_the_cookie_is_secure_behind_an_https_origin(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(http_public_origin="https://review.example.com")

    response = log_in(client, "rita", headers={"Origin": "https://review.example.com"})

    assert "; secure" in session_cookie(response.headers.get_list("set-cookie")).lower()


def test_a_second_login_gets_a_new_session_id_and_ends_the_old_one(
    make_client: Callable[..., TestClient], engine: Engine
) -> None:
    client = make_client()
    first = log_in(client, "rita").cookies[SESSION_COOKIE]

    second = log_in(client, "rita").cookies[SESSION_COOKIE]

    assert first != second
    with engine.begin() as conn:
        found = auth_store.find_session(conn, secret=first, now=utcnow(), idle_s=60, max_age_s=60)
    assert found is None  # a login never keeps the session it came with (no fixation)


@pytest.mark.parametrize(("name", "password"), [("rita", "wrong password!"), ("nobody", PASSWORD)])
def test_a_failed_login_says_the_same_whatever_was_wrong(
    make_client: Callable[..., TestClient], engine: Engine, name: str, password: str
) -> None:
    client = make_client()

    response = log_in(client, name, password)

    assert response.status_code == 401
    html = assert_safe_page(response)
    assert "Wrong name or password." in html
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert client.get("/inbox").status_code == 303
    with engine.connect() as conn:
        (entry,) = audit.recent(conn, actions=["login_failed"])
    assert entry.actor == name
    assert entry.detail == {"ip": "testclient"}


def test_a_disabled_user_cannot_log_in(
    make_client: Callable[..., TestClient], engine: Engine
) -> None:
    with engine.begin() as conn:
        auth_store.disable_user(conn, name="rob")

    assert log_in(make_client(), "rob").status_code == 401


def test_login_from_another_origin_is_refused(make_client: Callable[..., TestClient]) -> None:
    client = make_client()

    response = log_in(client, "rita", headers={"Origin": "https://evil.example"})

    assert response.status_code == 403
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "inbox"]
)
def test_login_never_redirects_off_site(
    make_client: Callable[..., TestClient], target: str
) -> None:
    response = log_in(make_client(), "rita", next=target)

    assert response.headers["location"] == "/inbox"


def test_logout_ends_the_session(make_client: Callable[..., TestClient], engine: Engine) -> None:
    client = make_client("rita")
    token = csrf_token(client)

    response = client.post("/logout", data={"csrf_token": token})

    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert client.get("/inbox").status_code == 303
    with engine.connect() as conn:
        (entry,) = audit.recent(conn, actions=["logout"])
    assert entry.actor == "rita"


def test_pages_send_a_visitor_without_a_session_to_login(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client()

    response = client.get("/inbox", params={"sort": "due"})

    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/login"
    assert parse_qs(location.query) == {"next": ["/inbox?sort=due"]}


def test_htmx_without_a_session_loads_the_login_page(
    make_client: Callable[..., TestClient],
) -> None:
    response = make_client().get("/inbox/updates", headers=htmx("updates"))

    # A 303 would be followed inside the XMLHttpRequest; htmx must change the page.
    assert response.status_code == 200
    assert response.headers["hx-redirect"] == "/login"


def test_the_root_is_the_inbox(reviewer: TestClient) -> None:
    response = reviewer.get("/")

    assert response.status_code == 303
    assert response.headers["location"] == "/inbox"
