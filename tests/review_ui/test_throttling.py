"""Login throttling over HTTP on the real PostgreSQL: names and client addresses that
fail too often are refused (429 with Retry-After) and locked, the answers never tell
which accounts exist (same messages, same time), locks are audited, end by themselves
and are lifted by admins, and bad API tokens are throttled per client without slowing
anyone else's valid token."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.store import audit
from review_ui.app import create_app
from review_ui.auth import store as auth_store
from review_ui.auth.principal import SESSION_COOKIE
from review_ui.auth.roles import Role
from tests.review_ui.console.conftest import (
    BROWSER,
    ORIGIN,
    PASSWORD,
    PLAYBOOKS,
    assert_safe_page,
    csrf_token,
    log_in,
)
from tests.waiting import wait_for
from waypost.bus.memory import MemoryBus
from waypost.settings import HttpSettings

pytestmark = pytest.mark.integration

WRONG = "wrong password!"
ATTACKER = "203.0.113.66"
# Thresholds high enough that only what a test lowers throttles anything.
LENIENT = {
    "throttle_name_delay_after": 1000,
    "throttle_name_lock_after": 1000,
    "throttle_client_delay_after": 10000,
    "throttle_client_lock_after": 10000,
}
ALERT = re.compile(r'<p class="field-error" role="alert">([^<]*)</p>')


@pytest.fixture
def users(engine: Engine) -> None:
    """rita (reviewer), ada (admin) and rob (disabled), all with PASSWORD."""
    with engine.begin() as conn:
        auth_store.add_user(conn, name="rita", password=PASSWORD, role=Role.REVIEWER)
        auth_store.add_user(conn, name="ada", password=PASSWORD, role=Role.ADMIN)
        auth_store.add_user(conn, name="rob", password=PASSWORD, role=Role.REVIEWER)
        auth_store.disable_user(conn, name="rob")


@pytest.fixture
def make_client(
    make_settings: Callable[..., Any], engine: Engine, users: None
) -> Iterator[Callable[..., TestClient]]:
    """Browsers (or, with ``headers``, API clients) at a client address of their own;
    the settings are LENIENT plus the overrides. Apps built with the same database are
    like replicas: they share the counters."""
    clients: list[TestClient] = []
    playbooks = PlaybookRegistry.load([PLAYBOOKS])

    def build(
        address: str = "198.51.100.10", headers: dict[str, str] | None = None, **overrides: Any
    ) -> TestClient:
        settings: HttpSettings = make_settings(HttpSettings, **{**LENIENT, **overrides})
        app = create_app(settings, engine=engine, admin=MemoryBus().admin(), playbooks=playbooks)
        client = TestClient(
            app,
            base_url=ORIGIN,
            headers=headers or BROWSER,
            follow_redirects=False,
            client=(address, 50000),
        )
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


def alert(response: Response) -> str:
    """The message the login form shows."""
    match = ALERT.search(response.text)
    assert match, f"no message on the page ({response.status_code})"
    return match[1]


def retry_after_s(response: Response) -> int:
    return int(response.headers["retry-after"])


def recent(engine: Engine, action: str) -> list[audit.AuditEntry]:
    with engine.connect() as conn:
        return audit.recent(conn, actions=[action])


# --- per name ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "password"),
    [("rita", WRONG), ("nobody", WRONG), ("rob", PASSWORD)],
    ids=["wrong password", "unknown name", "disabled account"],
)
def test_a_name_is_locked_after_n_failures_even_for_the_right_password(
    make_client: Callable[..., TestClient], engine: Engine, name: str, password: str
) -> None:
    settings = {"throttle_name_delay_after": 3, "throttle_name_lock_after": 3}
    # Each attempt from another address: the name's counter does it, not the client's.
    answers = [log_in(make_client(f"198.51.100.{n}", **settings), name, password) for n in range(3)]
    right = log_in(make_client("198.51.100.99", **settings), name, PASSWORD)

    assert [r.status_code for r in answers] == [401, 401, 401]
    assert [alert(r) for r in answers] == [
        "Wrong name or password.",
        "Wrong name or password.",
        "Wrong name or password, or too many attempts: try again in 15 minutes.",
    ]
    # Locked: the right password is refused unchecked, with the same message.
    assert right.status_code == 429
    assert alert(right) == "Wrong name or password, or too many attempts: try again in 15 minutes."
    assert 890 <= retry_after_s(right) <= 900
    assert SESSION_COOKIE not in right.headers.get("set-cookie", "")
    assert_safe_page(right)
    (locked,) = recent(engine, "login_locked")
    assert locked.actor == "waypost:throttle"
    assert locked.detail["scope"] == "name"
    assert locked.detail["name"] == name
    assert locked.detail["client"] == "198.51.100.2"  # where the locking failure came from
    assert locked.detail["failures"] == 3
    assert len(recent(engine, "login_failed")) == 3  # the refused attempt is not one


def test_a_success_before_the_threshold_starts_the_name_afresh(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(throttle_name_delay_after=3, throttle_name_lock_after=3)
    for _ in range(2):
        assert log_in(client, "rita", WRONG).status_code == 401

    assert log_in(client, "rita").status_code == 303
    for _ in range(2):  # two more failures do not lock: the count began again
        assert log_in(client, "rita", WRONG).status_code == 401
    assert log_in(client, "rita").status_code == 303


def test_a_lock_ends_by_itself(make_client: Callable[..., TestClient], engine: Engine) -> None:
    client = make_client(
        throttle_name_delay_after=2, throttle_name_lock_after=2, throttle_lock_s=5.0
    )
    for _ in range(2):
        assert log_in(client, "rita", WRONG).status_code == 401

    refused = log_in(client, "rita")
    assert refused.status_code == 429
    assert 1 <= retry_after_s(refused) <= 5

    wait_for(
        lambda: log_in(client, "rita").status_code == 303,
        timeout=30,
        interval=0.2,
        what="the lock to end",
    )
    assert recent(engine, "login_unlocked") == []  # an expiry is not an audit row


# --- per client -------------------------------------------------------------------------------


def test_failures_across_names_lock_the_client_not_others(
    make_client: Callable[..., TestClient], engine: Engine
) -> None:
    settings = {"throttle_client_delay_after": 4, "throttle_client_lock_after": 4}
    attacker = make_client(ATTACKER, **settings)
    for name in ("rita", "ada", "alice", "bob"):  # spraying one password over names
        assert log_in(attacker, name, WRONG).status_code == 401

    refused = log_in(attacker, "rita")
    elsewhere = log_in(make_client("192.0.2.44", **settings), "rita")

    assert refused.status_code == 429
    assert refused.headers["retry-after"]
    assert "too many attempts" in alert(refused)
    assert elsewhere.status_code == 303
    (locked,) = recent(engine, "login_locked")
    assert locked.detail["scope"] == "client"
    assert locked.detail["client"] == ATTACKER
    assert locked.detail["failures"] == 4


# --- API tokens -------------------------------------------------------------------------------


def test_bad_tokens_get_the_client_429_before_any_lookup_and_others_are_unaffected(
    make_client: Callable[..., TestClient], engine: Engine
) -> None:
    with engine.begin() as conn:
        secret, _ = auth_store.create_token(conn, name="triage-bot", role=Role.REVIEWER)
    settings = {"throttle_client_delay_after": 3, "throttle_client_lock_after": 3}
    guesser = make_client(ATTACKER, {"Accept": "application/json"}, **settings)
    for n in range(3):
        bad = {"Authorization": f"Bearer wp_guess{n}"}
        assert guesser.get("/api/v1/workflows", headers=bad).status_code == 401

    refused = guesser.get("/api/v1/workflows", headers={"Authorization": f"Bearer {secret}"})
    valid = make_client("192.0.2.44", {"Authorization": f"Bearer {secret}"}, **settings)
    answered = valid.get("/api/v1/workflows")

    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 890 <= int(refused.headers["retry-after"]) <= 900
    body = refused.json()
    assert body["status"] == 429
    assert body["title"] == "Too Many Requests"
    assert "try again in 15 minutes" in body["detail"]
    assert answered.status_code == 200  # another client's valid token: not slowed down
    (locked,) = recent(engine, "login_locked")
    detail = dict(locked.detail)
    assert detail.pop("locked_until")
    assert detail == {
        "scope": "client",
        "client": ATTACKER,
        "via": "api_token",
        "failures": 3,
        "window_s": 900.0,
    }


def test_a_throttled_client_does_not_reach_the_token_lookup(
    make_client: Callable[..., TestClient], engine: Engine
) -> None:
    with engine.begin() as conn:
        secret, token = auth_store.create_token(conn, name="triage-bot", role=Role.REVIEWER)
    guesser = make_client(
        ATTACKER,
        {"Accept": "application/json"},
        throttle_client_delay_after=2,
        throttle_client_lock_after=2,
    )
    for n in range(2):
        guesser.get("/api/v1/workflows", headers={"Authorization": f"Bearer wp_guess{n}"})

    refused = guesser.get("/api/v1/workflows", headers={"Authorization": f"Bearer {secret}"})

    assert refused.status_code == 429
    with engine.connect() as conn:
        (unused,) = [t for t in auth_store.list_tokens(conn) if t.id == token.id]
    assert unused.last_used_at is None  # a lookup would have stamped it


def test_valid_tokens_never_count_as_failures(
    make_client: Callable[..., TestClient], engine: Engine
) -> None:
    with engine.begin() as conn:
        secret, _ = auth_store.create_token(conn, name="triage-bot", role=Role.REVIEWER)
    bot = make_client(
        ATTACKER,
        {"Authorization": f"Bearer {secret}", "Accept": "application/json"},
        throttle_client_delay_after=2,
        throttle_client_lock_after=2,
    )

    assert [bot.get("/api/v1/workflows").status_code for _ in range(5)] == [200] * 5


def test_a_locked_client_keeps_the_sessions_it_has(
    make_client: Callable[..., TestClient],
) -> None:
    settings = {"throttle_client_delay_after": 2, "throttle_client_lock_after": 2}
    browser = make_client(ATTACKER, **settings)
    assert log_in(browser, "rita").status_code == 303
    api = make_client(ATTACKER, {"Accept": "application/json"}, **settings)
    for n in range(2):
        bad = {"Authorization": f"Bearer wp_guess{n}"}
        assert api.get("/api/v1/workflows", headers=bad).status_code == 401
    assert log_in(make_client(ATTACKER, **settings), "ada").status_code == 429

    # Locked for logins and tokens; a session made before goes on (it is no guess).
    assert browser.get("/inbox").status_code == 200


# --- admins -----------------------------------------------------------------------------------


def test_admins_see_locks_and_lift_them(
    make_client: Callable[..., TestClient], engine: Engine
) -> None:
    settings = {"throttle_name_delay_after": 2, "throttle_name_lock_after": 2}
    attacker = make_client(ATTACKER, **settings)
    for _ in range(2):
        log_in(attacker, "rita", WRONG)
    admin = make_client("192.0.2.1", **settings)
    assert log_in(admin, "ada").status_code == 303

    page = admin.get("/admin/users")

    html = assert_safe_page(page)
    assert "Login locks" in html
    assert "<code>rita</code>" in html
    assert '<span class="locked">locked</span>' in html  # on rita's row of the users
    assert 'name="key" value="rita"' in html

    lifted = admin.post(
        "/admin/users/unlock",
        data={"scope": "name", "key": "rita", "csrf_token": csrf_token(admin)},
    )

    assert lifted.status_code == 303
    assert lifted.headers["location"] == "/admin/users?notice=unlocked"
    assert "No name or client address is locked" in admin.get("/admin/users").text
    (unlocked,) = recent(engine, "login_unlocked")
    assert unlocked.actor == "ada"
    assert unlocked.detail["name"] == "rita"
    assert unlocked.detail["was_locked"] is True
    assert log_in(make_client("192.0.2.2", **settings), "rita").status_code == 303


def test_lifting_needs_the_csrf_token(
    make_client: Callable[..., TestClient], engine: Engine
) -> None:
    settings = {"throttle_name_delay_after": 2, "throttle_name_lock_after": 2}
    for _ in range(2):
        log_in(make_client(ATTACKER, **settings), "rita", WRONG)
    admin = make_client("192.0.2.1", **settings)
    log_in(admin, "ada")

    refused = admin.post("/admin/users/unlock", data={"scope": "name", "key": "rita"})

    assert refused.status_code == 403
    assert recent(engine, "login_unlocked") == []
    assert log_in(make_client("192.0.2.2", **settings), "rita").status_code == 429


# --- no enumeration by timing -----------------------------------------------------------------


def test_unknown_and_disabled_names_cost_the_same_time_as_a_wrong_password(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client()
    log_in(client, "rita", WRONG)  # warm up: templates, connections
    kinds = {"wrong password": ("rita", WRONG), "unknown": ("nobody", WRONG)}
    kinds["disabled"] = ("rob", PASSWORD)
    took: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(13):
        for kind, (name, password) in kinds.items():  # interleaved: load hits all alike
            started = time.perf_counter()
            assert log_in(client, name, password).status_code == 401
            took[kind].append(time.perf_counter() - started)

    medians = {kind: statistics.median(times) for kind, times in took.items()}
    # Without the stand-in verification an unknown name answers ten times faster; the
    # margin is for a loaded machine, where one argon2 check varies by a third.
    assert max(medians.values()) < 1.75 * min(medians.values()), medians
