"""`waypost workflow ls` against the real HTTP app (uvicorn) on the real PostgreSQL: its
filters reach the API, the next page's cursor and the counts are printed, and a bad
time is refused with the API's reason."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from click.testing import CliRunner, Result
from fastapi import FastAPI

from review_ui.auth import store as auth_store
from review_ui.auth.roles import Role
from tests.orchestrator.test_reviews import ReviewHarness
from tests.review_ui.test_mcp_server import serving
from tests.review_ui.test_workflows_api import TRIGGER
from tests.review_ui.test_workflows_api import add as add_row
from waypost.cli.main import main

pytestmark = pytest.mark.integration

Invoke = Callable[..., Result]


@pytest.fixture
def invoke(review_app: FastAPI, review_harness: ReviewHarness) -> Iterator[Invoke]:
    with review_harness.engine.begin() as conn:
        token, _ = auth_store.create_token(conn, name="ops", role=Role.REVIEWER)
    with serving(review_app) as url:

        def run(*args: str) -> Result:
            return CliRunner().invoke(
                main, ["workflow", "ls", *args, "--url", url], env={"WAYPOST_API_TOKEN": token}
            )

        yield run


def listed_ids(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [line.split()[0] for line in result.output.splitlines() if line.startswith("s")]


def test_ls_filters_sorts_pages_and_counts(invoke: Invoke, review_harness: ReviewHarness) -> None:
    engine = review_harness.engine
    add_row(engine, "s1", "completed", 1)
    add_row(engine, "s2", "failed", 2, reason="it broke")
    add_row(engine, "s3", "running", 3, input={"subject": "Parcel", "_trigger": TRIGGER})

    assert listed_ids(invoke()) == ["s3", "s2", "s1"]
    assert listed_ids(invoke("--status", "failed", "--status", "running")) == ["s3", "s2"]
    assert listed_ids(invoke("--text", "parcel")) == ["s3"]
    assert listed_ids(invoke("--triggered-by", "shop/orders")) == ["s3"]
    assert listed_ids(invoke("--id", "s1")) == ["s1"]
    assert listed_ids(invoke("--sort", "finished", "--oldest-first")) == ["s1", "s2", "s3"]
    first = invoke("--limit", "2", "--counts")
    assert listed_ids(first) == ["s3", "s2"]
    assert "completed 1  failed 1  cancelled 0" in first.output
    assert "by shop.order.created" in first.output
    (cursor,) = [line.split()[-1] for line in first.output.splitlines() if "--cursor" in line]
    assert listed_ids(invoke("--limit", "2", "--cursor", cursor)) == ["s1"]


def test_ls_refuses_a_time_it_cannot_read(invoke: Invoke) -> None:
    refused = invoke("--since", "last tuesday")

    assert refused.exit_code == 1
    assert "(422)" in refused.output
    assert "accepted_since='last tuesday' is neither a duration" in refused.output
