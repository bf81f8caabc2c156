"""POST /hooks/{name}: signed deliveries start workflows; refused ones start none.

The app runs on this test's database schema without a broker publisher: accepted goals
stay in this schema's outbox, and the workflows table says what each delivery started.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine, func, select

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.tables import workflows
from review_ui.app import create_app
from review_ui.hooks import check_hooks
from waypost.bus.kafka import KafkaBus
from waypost.errors import ConfigError
from waypost.settings import HttpSettings
from waypost.stack.broker import EmbeddedBroker
from waypost.triggers.signatures import github_signature, hmac_signature, stripe_signature

pytestmark = pytest.mark.integration

GITHUB_SECRET = "gh-test-secret"
STRIPE_SECRET = "whsec_test"
CRM_SECRET = "crm-test-secret"
HOOKS = """\
hooks:
  github:
    secret: ${TEST_GITHUB_HOOK_SECRET}
    scheme: github
    when: {X-GitHub-Event: [issues]}
    goal:
      type: support.ticket
      input:
        subject: "${/issue/title}"
        body: "${/issue/body}"
        customer: "${/sender/login}"
  stripe:
    secret: ${TEST_STRIPE_HOOK_SECRET}
    scheme: stripe
    goal:
      type: support.ticket
      input:
        subject: "Stripe ${/type}"
        body: "${/data/object/description}"
        customer: "${delivery_id} via ${hook}"
  fuzz:
    secret: ${TEST_GITHUB_HOOK_SECRET}
    scheme: github
    goal:
      type: support.ticket
      input: {subject: "Delivery ${delivery_id}", body: "Body: ${}"}
  crm:
    secret: ${TEST_CRM_HOOK_SECRET}
    scheme: hmac-sha256
    signature_header: X-Crm-Signature
    timestamp_header: X-Crm-Timestamp
    tolerance: 1m
    delivery_id_header: X-Crm-Delivery
    max_body: 2048
    goal: {type: support.ticket, input: {subject: "${/subject}", body: "${/body}"}}
"""
ISSUE = {
    "action": "opened",
    "issue": {"title": "Charged twice", "body": "Two charges for May."},
    "sender": {"login": "ada"},
}
CHARGE = {
    "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
    "type": "charge.disputed",
    "data": {"object": {"description": "Customer disputes the May charge."}},
}


@pytest.fixture
def app(
    make_settings: Callable[..., Any],
    engine: Engine,
    broker: EmbeddedBroker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[FastAPI]:
    """The app with the hooks above (secrets in the environment, as in production)."""
    monkeypatch.setenv("TEST_GITHUB_HOOK_SECRET", GITHUB_SECRET)
    monkeypatch.setenv("TEST_STRIPE_HOOK_SECRET", STRIPE_SECRET)
    monkeypatch.setenv("TEST_CRM_HOOK_SECRET", CRM_SECRET)
    hook_dir = tmp_path / "hooks"
    hook_dir.mkdir()
    (hook_dir / "hooks.yaml").write_text(HOOKS)
    settings: HttpSettings = make_settings(HttpSettings, hook_dirs=[hook_dir])
    app = create_app(
        settings,
        engine=engine,
        admin=KafkaBus(broker.bootstrap, settings).admin(),
        playbooks=PlaybookRegistry.load(),
    )
    yield app
    app.state.waypost.replays.close()


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app)


def count_workflows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(workflows)).scalar_one())


def github_delivery(
    body: dict[str, Any], delivery: str, *, secret: str = GITHUB_SECRET, event: str = "issues"
) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    return raw, {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": github_signature(secret.encode(), raw),
    }


def stripe_delivery(
    body: dict[str, Any], *, signed_at: float | None = None, secret: str = STRIPE_SECRET
) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    stamp = int(time.time() if signed_at is None else signed_at)
    return raw, {
        "Content-Type": "application/json",
        "Stripe-Signature": stripe_signature(secret.encode(), raw, stamp),
    }


def test_a_github_delivery_starts_a_workflow_with_the_mapped_input(
    client: TestClient, engine: Engine
) -> None:
    raw, headers = github_delivery(ISSUE, "72d3162e-cc78-11e3-81ab-4c9367dc0958")

    response = client.post("/hooks/github", content=raw, headers=headers)

    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["duplicate"] is False
    assert response.headers["Location"] == answer["status_url"]
    assert answer["status_url"] == f"/api/v1/workflows/{answer['workflow_id']}"
    with engine.connect() as conn:
        workflow = workflow_rows.get(conn, workflow_id=answer["workflow_id"])
    assert workflow is not None
    assert workflow.type == "support.ticket"
    assert dict(workflow.input) == {
        "subject": "Charged twice",
        "body": "Two charges for May.",
        "customer": "ada",
    }


def test_a_stripe_delivery_starts_a_workflow_keyed_by_the_event_id(
    client: TestClient, engine: Engine
) -> None:
    raw, headers = stripe_delivery(CHARGE)

    response = client.post("/hooks/stripe", content=raw, headers=headers)

    assert response.status_code == 202, response.text
    with engine.connect() as conn:
        workflow = workflow_rows.get(conn, workflow_id=response.json()["workflow_id"])
    assert workflow is not None
    assert dict(workflow.input) == {
        "subject": "Stripe charge.disputed",
        "body": "Customer disputes the May charge.",
        "customer": "evt_1NG8Du2eZvKYlo2CUI79vXWy via stripe",
    }


def test_a_replayed_delivery_id_starts_no_second_workflow(
    client: TestClient, engine: Engine
) -> None:
    raw, headers = github_delivery(ISSUE, "delivery-1")
    first = client.post("/hooks/github", content=raw, headers=headers)
    assert first.status_code == 202

    # The same delivery again (a retry), and a replay of it with a changed but validly
    # signed body under the same delivery id.
    again = client.post("/hooks/github", content=raw, headers=headers)
    changed, changed_headers = github_delivery({**ISSUE, "action": "edited"}, "delivery-1")
    replayed = client.post("/hooks/github", content=changed, headers=changed_headers)

    for response in (again, replayed):
        assert response.status_code == 200, response.text
        assert response.json() == {**first.json(), "duplicate": True}
    assert count_workflows(engine) == 1
    # Another delivery id is another workflow.
    other, other_headers = github_delivery(ISSUE, "delivery-2")
    assert client.post("/hooks/github", content=other, headers=other_headers).status_code == 202
    assert count_workflows(engine) == 2


def test_a_replayed_stripe_event_starts_no_second_workflow_even_newly_signed(
    client: TestClient, engine: Engine
) -> None:
    raw, headers = stripe_delivery(CHARGE, signed_at=time.time() - 10)
    first = client.post("/hooks/stripe", content=raw, headers=headers)
    raw, headers = stripe_delivery(CHARGE)  # Stripe's retry signs again, same event id
    second = client.post("/hooks/stripe", content=raw, headers=headers)

    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json()["workflow_id"] == first.json()["workflow_id"]
    assert count_workflows(engine) == 1


@pytest.mark.parametrize("hook", ["github", "stripe"])
def test_a_bad_signature_is_401_and_starts_nothing(
    client: TestClient, engine: Engine, hook: str
) -> None:
    if hook == "github":
        raw, headers = github_delivery(ISSUE, "delivery-bad", secret="not the secret")
    else:
        raw, headers = stripe_delivery(CHARGE, secret="not the secret")
    tampered, _ = github_delivery({**ISSUE, "sender": {"login": "mallory"}}, "x")

    for body in (raw, tampered):
        response = client.post(f"/hooks/{hook}", content=body, headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["title"] == "Bad signature"
        assert "does not match" in response.json()["detail"]
    unsigned = {k: v for k, v in headers.items() if "Signature" not in k}
    response = client.post(f"/hooks/{hook}", content=raw, headers=unsigned)
    assert response.status_code == 401
    assert "missing" in response.json()["detail"]
    assert count_workflows(engine) == 0


def test_a_stale_timestamp_is_401_with_its_own_message_and_starts_nothing(
    client: TestClient, engine: Engine
) -> None:
    raw, headers = stripe_delivery(CHARGE, signed_at=time.time() - 301)
    stale = client.post("/hooks/stripe", content=raw, headers=headers)
    body = json.dumps({"subject": "s", "body": "b"}).encode()
    stamp = int(time.time()) - 3600
    crm = client.post(
        "/hooks/crm",
        content=body,
        headers={
            "X-Crm-Signature": hmac_signature(CRM_SECRET.encode(), body, stamp),
            "X-Crm-Timestamp": str(stamp),
            "X-Crm-Delivery": "crm-1",
        },
    )

    for response in (stale, crm):
        assert response.status_code == 401, response.text
        assert response.json()["title"] == "Stale timestamp"
        assert "s ago" in response.json()["detail"]
    assert count_workflows(engine) == 0


def test_the_generic_scheme_with_a_fresh_timestamp_starts_a_workflow(
    client: TestClient, engine: Engine
) -> None:
    body = json.dumps({"subject": "Lead converted", "body": "ACME signed."}).encode()
    stamp = int(time.time())
    headers = {
        "X-Crm-Signature": "sha256=" + hmac_signature(CRM_SECRET.encode(), body, stamp),
        "X-Crm-Timestamp": str(stamp),
        "X-Crm-Delivery": "crm-2",
    }

    response = client.post("/hooks/crm", content=body, headers=headers)

    assert response.status_code == 202, response.text
    assert count_workflows(engine) == 1


def test_refusals_before_and_after_the_signature_start_nothing(
    client: TestClient, engine: Engine
) -> None:
    def github(body: bytes, delivery: str = "d", **extra: str) -> dict[str, str]:
        return {
            "X-GitHub-Event": "issues",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": github_signature(GITHUB_SECRET.encode(), body),
            **extra,
        }

    unknown = client.post("/hooks/nope", content=b"{}", headers=github(b"{}"))
    not_a_name = client.post("/hooks/Not%20A%20Hook", content=b"{}")
    not_json = client.post("/hooks/github", content=b"{oops", headers=github(b"{oops"))
    nan = client.post("/hooks/github", content=b"NaN", headers=github(b"NaN"))
    unmappable_body = json.dumps({"issue": {"title": "t"}}).encode()
    unmappable = client.post(
        "/hooks/github", content=unmappable_body, headers=github(unmappable_body)
    )
    no_delivery = json.dumps(ISSUE).encode()
    headers = github(no_delivery)
    del headers["X-GitHub-Delivery"]
    missing_id = client.post("/hooks/github", content=no_delivery, headers=headers)
    wrong_type_body = json.dumps({**ISSUE, "issue": {"title": "", "body": "b"}}).encode()
    invalid_input = client.post(
        "/hooks/github", content=wrong_type_body, headers=github(wrong_type_body)
    )
    large = json.dumps({"subject": "s", "body": "x" * 4096}).encode()
    too_large = client.post("/hooks/crm", content=large, headers={"X-Crm-Delivery": "big"})

    assert (unknown.status_code, unknown.json()["title"]) == (404, "Unknown hook")
    assert not_a_name.status_code == 404
    assert (not_json.status_code, not_json.json()["title"]) == (400, "Body is not JSON")
    assert nan.status_code == 400
    assert unmappable.status_code == 422
    assert unmappable.json()["detail"] == (
        "the message has nothing at /issue/body (mapping ${/issue/body})"
    )
    assert missing_id.status_code == 422
    assert "X-GitHub-Delivery" in missing_id.json()["detail"]
    assert invalid_input.status_code == 422
    assert invalid_input.json()["errors"][0]["field"] == "subject"
    assert too_large.status_code == 413
    assert "2048 bytes" in too_large.json()["detail"]
    assert count_workflows(engine) == 0


def test_a_signed_delivery_the_filter_leaves_out_is_204_and_starts_nothing(
    client: TestClient, engine: Engine
) -> None:
    raw, headers = github_delivery({"zen": "Keep it logically awesome."}, "ping-1", event="ping")

    response = client.post("/hooks/github", content=raw, headers=headers)
    unsigned = client.post(
        "/hooks/github", content=raw, headers={**headers, "X-Hub-Signature-256": "sha256=00"}
    )

    assert response.status_code == 204
    assert response.content == b""
    assert unsigned.status_code == 401  # the filter applies only to signed deliveries
    assert count_workflows(engine) == 0


def test_a_changed_hook_file_applies_without_a_restart(
    app: FastAPI, client: TestClient, tmp_path: Path
) -> None:
    raw, headers = github_delivery(ISSUE, "reload-1")
    assert client.post("/hooks/github", content=raw, headers=headers).status_code == 202
    hook_file = tmp_path / "hooks" / "hooks.yaml"
    hook_file.write_text(HOOKS.replace("  github:\n", "  gh:\n"))

    app.state.hooks.reload()  # what the next request does once the interval passed

    assert client.post("/hooks/github", content=raw, headers=headers).status_code == 404
    assert client.post("/hooks/gh", content=raw, headers=headers).status_code == 202


def test_the_route_is_documented_without_a_bearer_token(client: TestClient) -> None:
    operation = client.get("/api/v1/openapi.json").json()["paths"]["/hooks/{name}"]["post"]

    assert set(operation["responses"]) == {
        "200",
        "202",
        "204",
        "400",
        "401",
        "404",
        "413",
        "422",
        "503",
    }
    assert "headers" not in operation["responses"]["401"]  # no WWW-Authenticate


# --- schemathesis: the hook route's document tells the truth ------------------------------

FUZZ_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


_SIGNED = {"x-hub-signature-256", "x-github-delivery"}


def fuzz_hook(
    app: FastAPI, mode: GenerationMode, *, name: str | None, signed: bool, examples: int
) -> set[int]:
    """Call POST /hooks/{name} (a generated name if None) with generated cases, signed
    with the fuzz hook's secret or as generated, checking each response; the statuses."""
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app).include(
        path_regex="^/hooks/"
    )
    [operation] = [result.ok() for result in schema.get_all_operations()]
    deliveries = itertools.count()
    seen: set[int] = set()

    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
        report_multiple_bugs=False,
    )
    @given(
        case=operation.as_strategy(
            generation_mode=mode, path_parameters={"name": name} if name else None
        )
    )
    def exercise(case: Any) -> None:
        headers: dict[str, str] = {}
        if signed and not isinstance(case.body, bytes):
            # The bytes requests sends for a JSON body: json.dumps with its defaults
            # (None is sent as null).
            raw = json.dumps(case.body, allow_nan=False).encode()
            headers = {
                "X-Hub-Signature-256": github_signature(GITHUB_SECRET.encode(), raw),
                # Each run counts from 0: a later run repeats the ids of an earlier one,
                # whose duplicates answer 200.
                "X-GitHub-Delivery": f"fuzz-{next(deliveries)}",
            }
            # Generated values of these headers (any spelling) would be sent as well.
            case.headers = {
                k: v for k, v in (case.headers or {}).items() if k.lower() not in _SIGNED
            }
        response = case.call(headers=headers)
        seen.add(response.status_code)
        case.validate_response(response, checks=FUZZ_CHECKS)

    exercise()
    return seen


@pytest.mark.slow  # about 10 s with its schema's teardown
def test_schemathesis_finds_every_answer_of_the_hook_route_documented(app: FastAPI) -> None:
    # Positive mode only: the body is any JSON and the route declares no credential
    # (security: []), so negative mode finds nothing to break once the name is given.
    positive = GenerationMode.POSITIVE
    signed = fuzz_hook(app, positive, name="fuzz", signed=True, examples=30)
    unsigned = fuzz_hook(app, positive, name="fuzz", signed=False, examples=10)
    any_name = fuzz_hook(app, positive, name=None, signed=False, examples=10)

    # Signed deliveries got past the signature into workflows (not only refusals); the
    # later run repeated their delivery ids.
    assert signed == {202}
    assert unsigned == {401}
    assert any_name == {404}


def test_waypost_serve_refuses_to_start_with_a_bad_hook_file_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "bad.yaml").write_text(
        "hooks:\n  github:\n    secret: plain-text\n    scheme: github\n"
        "    goal: {type: support.ticket, input: {}}\n",
        encoding="utf-8",
    )
    (hooks / "unset.yaml").write_text(
        "hooks:\n  crm:\n    secret: ${TEST_UNSET_HOOK_SECRET}\n    scheme: github\n"
        "    goal: {type: support.ticket, input: {}}\n",
        encoding="utf-8",
    )
    monkeypatch.delenv("TEST_UNSET_HOOK_SECRET", raising=False)

    with pytest.raises(ConfigError) as refused:
        check_hooks(HttpSettings(hook_dirs=[hooks, tmp_path / "missing"]))

    message = str(refused.value)
    assert message.startswith("WAYPOST_HOOK_DIRS: invalid hooks:")
    for named in ("bad.yaml", "hooks.github.secret", "unset.yaml", "TEST_UNSET_HOOK_SECRET"):
        assert named in message
    assert "missing" in message
    assert "is not a directory" in message
    check_hooks(HttpSettings(hook_dirs=[]))  # no hooks: nothing to check
