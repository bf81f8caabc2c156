"""The OpenAPI document's promises, one request each: bearer auth declared, problem
documents for errors, 405 with ``Allow``, ids beyond a bigint refused as the client's
error. (tests/review_ui/test_schemathesis.py checks every operation against it.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, create_engine

from orchestrator.playbooks.registry import PlaybookRegistry
from review_ui.app import create_app
from review_ui.auth import store as auth_store
from review_ui.auth.roles import Role
from review_ui.openapi import ProblemDocument, problems
from tests.review_ui.test_schemathesis import index_dead_letter
from waypost.bus.memory import MemoryBus
from waypost.settings import HttpSettings

PROBLEM = "application/problem+json"
BIGINT_MAX = 2**63 - 1


@pytest.fixture
def client(review_app: FastAPI, engine: Engine) -> Iterator[TestClient]:
    with engine.begin() as conn:
        secret, _ = auth_store.create_token(conn, name="ann", role=Role.ANALYST)
    with TestClient(review_app, raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {secret}"
        yield client


def assert_problem(response: Response, status: int) -> dict[str, Any]:
    """A problem document with this status; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


# --- pure: what a route's responses say -----------------------------------------------------


def test_each_error_status_is_a_problem_document_with_its_headers() -> None:
    responses = problems(503, 401, 422, 404, why={404: "No such thing.", 409: "Not listed."})

    assert list(responses) == [401, 404, 422, 503]  # exactly those listed, in order
    for response in responses.values():
        assert list(response["content"]) == [PROBLEM]
    assert responses[404]["description"] == "No such thing."
    assert responses[401]["headers"]["WWW-Authenticate"]["required"] is True
    assert responses[503]["headers"]["Retry-After"]["required"] is True
    assert "headers" not in responses[422]


# --- the document ---------------------------------------------------------------------------


@pytest.mark.integration
def test_the_document_declares_bearer_auth_on_every_api_operation(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()

    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["sessionCookie"]["in"] == "cookie"
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            expected = [{"bearerAuth": []}, {"sessionCookie": []}]
            if path.startswith("/api/v1/"):
                assert operation["security"] == expected, (method, path)
                assert {"401", "503"} <= set(operation["responses"]), (method, path)
            elif path.startswith("/hooks/"):  # the signature is the credential
                assert operation["security"] == [], (method, path)
                assert "401" in operation["responses"], (method, path)
            else:  # /healthz and /readyz answer anyone
                assert "security" not in operation, (method, path)
    assert "ProblemDocument" in doc["components"]["schemas"]


@pytest.mark.integration
def test_the_document_states_the_bigint_bound_of_dead_letter_ids_exactly(
    client: TestClient,
) -> None:
    doc = client.get("/api/v1/openapi.json").json()

    (parameter,) = doc["paths"]["/api/v1/dlq/{dead_letter_id}"]["get"]["parameters"]
    assert parameter["schema"]["minimum"] == 1
    assert parameter["schema"]["exclusiveMaximum"] == BIGINT_MAX + 1


# --- answers --------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_dead_letter_id_beyond_a_bigint_is_a_422_problem(client: TestClient) -> None:
    body = assert_problem(client.get(f"/api/v1/dlq/{BIGINT_MAX + 1}"), 422)

    assert body["errors"][0]["field"] == "path.dead_letter_id"
    # The largest bigint is a valid id, of no dead letter.
    assert_problem(client.get(f"/api/v1/dlq/{BIGINT_MAX}"), 404)


@pytest.mark.integration
def test_without_a_token_the_answer_is_401_with_www_authenticate(client: TestClient) -> None:
    del client.headers["Authorization"]

    response = client.get("/api/v1/dlq/1")

    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    wrong = client.get("/api/v1/dlq/1", headers={"Authorization": "Bearer nope"})
    assert_problem(wrong, 401)
    assert wrong.headers["www-authenticate"] == 'Bearer error="invalid_token"'


@pytest.mark.integration
@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/v1/goals", "POST"),
        ("POST", "/api/v1/dlq/5", "GET"),
        ("GET", "/api/v1/escalations/e-1/claim", "POST"),
        # Two routes serve this path; Starlette's own Allow names the first one's only.
        ("DELETE", "/api/v1/dlq/replays", "GET, POST"),
        # GET is answered too (by /dlq/{dead_letter_id}, with a 422), so it is allowed.
        ("PATCH", "/api/v1/dlq/resolve", "GET, POST"),
    ],
)
def test_a_wrong_method_is_405_with_every_allowed_method(
    client: TestClient, method: str, path: str, allow: str
) -> None:
    response = client.request(method, path)

    assert_problem(response, 405)
    assert response.headers["allow"] == allow


@pytest.mark.integration
def test_every_documented_path_answers_an_undocumented_method_with_405_and_allow(
    client: TestClient,
) -> None:
    doc = client.get("/api/v1/openapi.json").json()

    for template, operations in doc["paths"].items():
        path = template.replace("{dead_letter_id}", "7").replace("{", "x-").replace("}", "")
        undocumented = next(m for m in ("delete", "put", "patch") if m not in operations)
        response = client.request(undocumented.upper(), path)
        assert_problem(response, 405)
        allowed = set(response.headers["allow"].split(", "))
        assert allowed >= {method.upper() for method in operations}, path


@pytest.mark.integration
@pytest.mark.parametrize("since", ["9999999d", "99999999999999999999s"])
def test_a_duration_beyond_the_calendar_is_a_422_not_a_server_error(
    client: TestClient, since: str
) -> None:
    assert_problem(client.get("/api/v1/dlq", params={"since": since}), 422)
    body = {"filter": f"since={since}", "reason": "moot"}
    assert_problem(client.post("/api/v1/dlq/resolve", json=body), 422)


@pytest.mark.integration
def test_an_empty_list_of_ids_selects_nothing_rather_than_everything(
    client: TestClient, engine: Engine, namespace: str
) -> None:
    letter = index_dead_letter(engine, namespace, 1)

    assert_problem(client.post("/api/v1/dlq/resolve", json={"ids": [], "reason": "x"}), 422)

    assert client.get(f"/api/v1/dlq/{letter}").json()["status"] == "pending"


@pytest.mark.integration
def test_a_database_outage_is_the_documented_503_with_retry_after(
    make_settings: Callable[..., Any],
) -> None:
    settings: HttpSettings = make_settings(HttpSettings)
    nowhere = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    app = create_app(
        settings, engine=nowhere, admin=MemoryBus().admin(), playbooks=PlaybookRegistry.load([])
    )
    client = TestClient(app, raise_server_exceptions=False)  # no lifespan: it reads the db

    response = client.get("/api/v1/workflows", headers={"Authorization": "Bearer wp_x"})

    body = assert_problem(response, 503)
    assert response.headers["retry-after"] == "5"
    ProblemDocument.model_validate(body)  # no member the document does not declare
    documented = app.openapi()["paths"]["/api/v1/workflows"]["get"]["responses"]["503"]
    assert documented["headers"]["Retry-After"]["required"] is True
