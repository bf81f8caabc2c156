"""User administration: admins list, add and disable users; every change audited."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from orchestrator.store import audit
from review_ui.auth import store as auth_store
from tests.review_ui.console.conftest import assert_safe_page, csrf_token, htmx, log_in

pytestmark = pytest.mark.integration


def test_admins_see_every_user(admin: TestClient) -> None:
    response = admin.get("/admin/users")

    assert response.status_code == 200
    html = assert_safe_page(response)
    for name in ("ada", "ann", "rita", "rob"):
        assert f"<td>{name}</td>" in html
    assert 'href="/admin/users"' in html  # the nav shows Users to admins


@pytest.mark.parametrize("name", ["rita", "ann"])
def test_others_get_403(make_client: Callable[..., TestClient], name: str) -> None:
    client = make_client(name)

    page = client.get("/admin/users")
    nav = client.get("/inbox").text

    assert page.status_code == 403
    assert 'href="/admin/users"' not in nav


def test_adding_a_user(
    admin: TestClient, make_client: Callable[..., TestClient], engine: Engine
) -> None:
    response = admin.post(
        "/admin/users",
        data={
            "csrf_token": csrf_token(admin),
            "name": "nina",
            "role": "reviewer",
            "password": "a long enough password",
        },
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/admin/users?notice=added"
    assert "User added." in admin.get(response.headers["location"]).text
    assert log_in(make_client(), "nina", "a long enough password").status_code == 303
    with engine.connect() as conn:
        (entry,) = audit.recent(conn, actions=["user_added"])
    assert (entry.actor, dict(entry.detail)) == ("ada", {"name": "nina", "role": "reviewer"})


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "nina", "role": "reviewer", "password": "short"}, "at least 12 characters"),
        ({"name": "rita", "role": "reviewer", "password": "x" * 20}, "already exists"),
        ({"name": "@me", "role": "reviewer", "password": "x" * 20}, "for the name"),
        ({"name": "nina", "role": "boss", "password": "x" * 20}, "Choose a role."),
    ],
    ids=["weak-password", "taken", "bad-name", "bad-role"],
)
def test_a_refused_user_says_why(admin: TestClient, form: dict[str, str], message: str) -> None:
    response = admin.post("/admin/users", data={"csrf_token": csrf_token(admin), **form})

    assert response.status_code == 422
    assert message in response.text


def test_disabling_a_user_ends_their_sessions(
    admin: TestClient, make_client: Callable[..., TestClient], engine: Engine
) -> None:
    rob = make_client("rob")

    response = admin.post(
        "/admin/users/disable",
        data={"csrf_token": csrf_token(admin), "name": "rob"},
        headers=htmx("users"),
    )

    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section id="users"')
    assert "User disabled" in response.text
    assert rob.get("/inbox").status_code == 303  # logged out
    with engine.connect() as conn:
        assert auth_store.find_user(conn, name="rob").disabled  # type: ignore[union-attr]
        (entry,) = audit.recent(conn, actions=["user_disabled"])
    assert (entry.actor, dict(entry.detail)) == ("ada", {"name": "rob"})


def test_an_admin_cannot_disable_themself(admin: TestClient, engine: Engine) -> None:
    response = admin.post(
        "/admin/users/disable", data={"csrf_token": csrf_token(admin), "name": "ada"}
    )

    assert response.status_code == 422
    assert "cannot disable your own account" in response.text
    with engine.connect() as conn:
        assert not auth_store.find_user(conn, name="ada").disabled  # type: ignore[union-attr]
