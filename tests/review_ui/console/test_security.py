"""CSRF, Origin, CSP and error pages: what keeps the console safe in a browser."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from orchestrator.store import escalations as escalation_rows
from review_ui.console.render import pages
from review_ui.security import CONTENT_SECURITY_POLICY
from tests.review_ui.console.conftest import (
    Escalations,
    assert_safe_page,
    csrf_token,
    elements,
    htmx,
)

pytestmark = pytest.mark.integration


def claim_url(escalations: Escalations) -> str:
    return f"/escalations/{escalations.open('Guarded')}/claim"


def assignee(engine: Engine, escalation_id: str) -> str | None:
    with engine.connect() as conn:
        return escalation_rows.rows_by_id(conn, ids=[escalation_id])[escalation_id].assignee


def test_a_form_post_without_the_csrf_token_is_refused(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    url = claim_url(escalations)

    missing = reviewer.post(url, data={})
    wrong = reviewer.post(url, data={"csrf_token": "not-the-token"})

    assert missing.status_code == wrong.status_code == 403
    assert "missing or wrong CSRF token" in missing.text
    assert assignee(engine, escalations.opened[0]) is None


def test_a_post_from_another_origin_is_refused(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    url = claim_url(escalations)
    token = csrf_token(reviewer)

    foreign = reviewer.post(
        url, data={"csrf_token": token}, headers={"Origin": "https://evil.example"}
    )
    del reviewer.headers["Origin"]  # a browser that sends only a Referer
    referer = reviewer.post(
        url, data={"csrf_token": token}, headers={"Referer": "https://evil.example/page"}
    )
    no_origin = reviewer.post(url, data={"csrf_token": token})

    assert foreign.status_code == 403
    assert "https://evil.example" in foreign.text
    assert referer.status_code == 403
    assert "https://evil.example" in referer.text
    assert no_origin.status_code == 403
    assert assignee(engine, escalations.opened[0]) is None


def test_htmx_sends_the_token_as_a_header(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    url = claim_url(escalations)
    token = csrf_token(reviewer)
    page = reviewer.get("/inbox").text

    (body,) = elements(page, "body")
    response = reviewer.post(url, headers={**htmx("escalation"), "X-CSRF-Token": token})

    assert json.loads(body["hx-headers"] or "") == {"X-CSRF-Token": token}
    assert response.status_code == 200
    assert assignee(engine, escalations.opened[0]) == "rita"


def test_htmx_errors_go_to_the_alert_area(reviewer: TestClient, escalations: Escalations) -> None:
    response = reviewer.post(claim_url(escalations), headers=htmx("escalation"))

    assert response.status_code == 403
    assert response.headers["hx-retarget"] == "#flash"
    assert response.headers["hx-reswap"] == "innerHTML"
    assert response.text.lstrip().startswith('<div class="error-box">')


def test_every_page_keeps_to_the_content_security_policy(
    make_client: Callable[..., TestClient], escalations: Escalations
) -> None:
    escalation_id = escalations.open("Every page", output={"text": "<style>x</style>"})
    admin = make_client("ada")
    anonymous = make_client()
    responses = [
        anonymous.get("/login"),
        admin.get("/inbox"),
        admin.get("/inbox", headers=htmx("results")),
        admin.get(f"/escalations/{escalation_id}"),
        admin.get(f"/escalations/{escalation_id}", headers=htmx("main")),
        admin.get("/admin/users"),
        admin.get("/no/such/page"),
        admin.get("/escalations/missing"),
    ]

    for response in responses:
        assert_safe_page(response)
    others = [
        admin.get("/static/console.js"),
        admin.get("/api/v1/escalations"),
        anonymous.get("/inbox"),  # the redirect to /login
        admin.get("/"),
    ]
    for response in others:
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_error_pages_keep_the_frame_of_a_logged_in_user(admin: TestClient) -> None:
    response = admin.get("/no/such/page")

    assert response.status_code == 404
    html = assert_safe_page(response)
    assert "404 · Not Found" in html
    assert 'action="/logout"' in html
    assert elements(html, "body")[0]["hx-headers"]


def test_the_htmx_config_forbids_eval_and_foreign_requests(reviewer: TestClient) -> None:
    html = reviewer.get("/inbox").text

    (meta,) = elements(html, "meta", name="htmx-config")
    config = json.loads(meta["content"] or "")
    assert config["selfRequestsOnly"] is True
    assert config["allowEval"] is False
    assert config["allowScriptTags"] is False
    assert config["includeIndicatorStyles"] is False
    assert config["historyCacheSize"] == 0
    scripts = [s["src"] for s in elements(html, "script")]
    assert [re.sub(r"\?v=\w+$", "", s or "") for s in scripts] == [
        "/static/htmx.min.js",
        "/static/console.js",
    ]


def test_static_files_are_served(reviewer: TestClient) -> None:
    html = reviewer.get("/inbox").text
    stylesheets = elements(html, "link", rel="stylesheet")
    assert all(reviewer.get(s["href"] or "").status_code == 200 for s in stylesheets)
    (stylesheet,) = [s for s in stylesheets if "/console.css" in (s["href"] or "")]

    css = reviewer.get(stylesheet["href"] or "")
    htmx_js = reviewer.get("/static/htmx.min.js")

    assert css.status_code == 200
    assert ".untrusted" in css.text
    assert htmx_js.status_code == 200
    assert "2.0.11" in htmx_js.text


def test_autoescape_is_on_for_every_template() -> None:
    env = pages().env
    assert env.autoescape is True
    rendered = env.from_string("{{ value }}").render(value="<b>")
    assert rendered == "&lt;b&gt;"


def test_the_api_keeps_its_json_problems(reviewer: TestClient) -> None:
    response = reviewer.get("/api/v1/escalations/missing")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_pages_answer_errors_as_html_only_to_browsers(
    make_client: Callable[..., TestClient], accept: str
) -> None:
    client = make_client("ann")

    response = client.get("/admin/users", headers={"Accept": accept})

    assert response.status_code == 403
    if accept == "text/html":
        assert response.headers["content-type"].startswith("text/html")
        assert "403 · Forbidden" in response.text
    else:
        assert response.headers["content-type"] == "application/problem+json"


def test_nul_characters_are_refused_not_a_server_error(
    make_client: Callable[..., TestClient], escalations: Escalations, engine: Engine
) -> None:
    # PostgreSQL text cannot hold U+0000; the console says so instead of failing.
    escalation_id = escalations.open("Nul")
    rita, ada = make_client("rita"), make_client("ada")
    url = f"/escalations/{escalation_id}"
    with engine.connect() as conn:
        row = escalation_rows.rows_by_id(conn, ids=[escalation_id])[escalation_id]
    seen = {"version": str(row.version), "digest": row.digest}

    responses = {
        "login": make_client().post("/login", data={"name": "ri\x00ta", "password": "x" * 12}),
        "reject": rita.post(
            f"{url}/decision",
            data={"csrf_token": csrf_token(rita), "action": "reject", "reason": "a\x00b", **seen},
        ),
        "comment": rita.post(
            f"{url}/comments", data={"csrf_token": csrf_token(rita), "version": "1", "text": "\x00"}
        ),
        "assign": ada.post(
            f"{url}/assign", data={"csrf_token": csrf_token(ada), "assignee": "r\x00b"}
        ),
        "bulk": rita.post(
            "/inbox/bulk",
            data={
                "csrf_token": csrf_token(rita),
                "op": "approve",
                "selected": ["a\x00:1:" + "0" * 64],
            },
        ),
        "disable": ada.post(
            "/admin/users/disable", data={"csrf_token": csrf_token(ada), "name": "r\x00b"}
        ),
        "huge-version": rita.post(
            f"{url}/comments",
            data={"csrf_token": csrf_token(rita), "version": str(2**64), "text": "hi"},
        ),
    }

    assert {name: r.status_code for name, r in responses.items()} == {
        "login": 401,
        "reject": 422,
        "comment": 422,
        "assign": 422,
        "bulk": 422,
        "disable": 422,
        "huge-version": 422,
    }
    assert "NUL character" in responses["reject"].text
    assert assignee(engine, escalation_id) is None
