"""The decision quality pages over HTTP on the real PostgreSQL: each version's rates
with a trend chart per rate after scripted decisions, the drift marker, filters, and a
version's decisions with the agent's reasoning next to the verdict; the chart layout
(pure)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.publishing.records import Outgoing
from orchestrator.quality.drift import DriftPolicy
from orchestrator.quality.watch import DriftWatch
from review_ui.console.quality import QualityQuery
from review_ui.console.sparkline import sparkline
from tests.orchestrator.quality.scripted import PLAYBOOKS as QUALITY_PLAYBOOKS
from tests.orchestrator.quality.scripted import Scripted
from tests.review_ui.console.conftest import PLAYBOOKS, assert_safe_page, elements, htmx
from waypost.events import default_codec, utcnow
from waypost.topics import Topics

EDITED = {"text": "Dear customer, your refund of 40 EUR is on its way."}


@pytest.fixture
def playbooks() -> PlaybookRegistry:
    """The console tests' playbooks and the decision-quality one."""
    return PlaybookRegistry.load([PLAYBOOKS, QUALITY_PLAYBOOKS])


@pytest.fixture
def scripted(engine: Engine, namespace: str, playbooks: PlaybookRegistry) -> Scripted:
    """Version 1: one confident result. Version 2: four escalated, approved, edited,
    and rejected twice (by rita and rob), in the last minute."""
    scripted = Scripted(engine, namespace, playbooks)
    at = utcnow() - timedelta(seconds=50)
    assert scripted.result("1", at=at, confidence=0.95) is None
    decisions = [("approve", "rita"), ("edit", "rob"), ("reject", "rita"), ("reject", "rob")]
    for step, (action, reviewer) in enumerate(decisions):
        moment = at + timedelta(seconds=10 * step)
        (escalation,) = scripted.escalated("2", 1, at=moment)
        output = EDITED if action == "edit" else None
        scripted.decide(escalation, action, reviewer=reviewer, at=moment, output=output)
    return scripted


def cells(html: str, version: str) -> dict[str, str]:
    """The rate shown in each column of a version's row."""
    row = html[html.index(f'data-version="drafter/{version}"') :]
    row = row[: row.index("</tr>")]
    found = re.findall(r'data-rate="(\w+)">\s*<span class="rate-value"[^>]*>([^<]*)<', row)
    return dict(found)


@pytest.mark.integration
@pytest.mark.slow
def test_the_page_shows_each_versions_rates_with_trend_charts(
    make_client: Callable[..., TestClient], scripted: Scripted
) -> None:
    response = make_client("rita").get("/quality")

    assert response.status_code == 200
    html = assert_safe_page(response)
    assert cells(html, "2") == {
        "escalated": "100 %",
        "approved": "25 %",
        "edited": "25 %",
        "rejected": "50 %",
        "retried": "0 %",
        "distance": cells(html, "2")["distance"],
        "agreement": "50 %",
    }
    assert 0 < float(cells(html, "2")["distance"]) < 0.5
    assert cells(html, "1")["escalated"] == "0 %"
    assert cells(html, "1")["approved"] == "—"  # nothing decided
    assert len(elements(html, "svg", role="img")) == 14  # 7 charts for each version
    assert len(elements(html, "polyline")) >= 6
    assert "drift-mark" not in html


@pytest.mark.integration
@pytest.mark.slow
def test_a_drifted_version_is_marked(
    make_client: Callable[..., TestClient], scripted: Scripted, engine: Engine, namespace: str
) -> None:
    DriftWatch(
        engine=engine,
        outgoing=Outgoing(Topics(namespace), default_codec()),
        publisher=None,
        clock=utcnow,
        policy=DriftPolicy(window=timedelta(days=1), thresholds={"rejected": 0.4}, min_decisions=2),
    ).check()

    html = make_client("ann").get("/quality").text

    (row,) = elements(html, "tr", data_version="drafter/2")
    assert row["class"] == "drifted"
    assert "rejected 50 % &gt; 40 %" in html


@pytest.mark.integration
@pytest.mark.slow
def test_the_filters_narrow_the_rows_and_an_htmx_request_gets_the_main_block(
    make_client: Callable[..., TestClient], scripted: Scripted
) -> None:
    client = make_client("rita")

    filtered = client.get("/quality", params={"version": "2", "days": "7"}, headers=htmx("main"))
    lenient = client.get("/quality", params={"days": "a fortnight"})

    assert filtered.status_code == 200
    assert "<html" not in filtered.text
    assert elements(filtered.text, "tr", data_version="drafter/1") == []
    assert elements(filtered.text, "tr", data_version="drafter/2")
    assert 'value="7" selected' in filtered.text
    assert lenient.status_code == 200
    assert 'value="14" selected' in lenient.text


@pytest.mark.integration
@pytest.mark.slow
def test_a_versions_decisions_show_the_reasoning_next_to_the_verdict(
    make_client: Callable[..., TestClient], scripted: Scripted
) -> None:
    response = make_client("rita").get(
        "/quality/decisions", params={"capability": "drafter", "version": "2"}
    )

    assert response.status_code == 200
    html = assert_safe_page(response)
    articles = elements(html, "article", data_escalation="")
    assert len(articles) == 4
    assert html.count("the order was paid twice") == 4
    assert html.count('class="verdict verdict-rejected"') == 2
    assert "wrong amount" in html
    assert "40 EUR" in html  # the edited output
    assert elements(html, "a", href="/quality?days=14")


@pytest.mark.integration
@pytest.mark.slow
def test_without_filters_the_decisions_of_every_version_are_shown(
    make_client: Callable[..., TestClient], scripted: Scripted
) -> None:
    (extra,) = scripted.escalated("1", 1, at=utcnow() - timedelta(seconds=5))

    html = make_client("rita").get("/quality/decisions").text

    assert len(elements(html, "article", data_escalation="")) == 5
    assert elements(html, "article", data_escalation=extra)
    assert "drafter <code>1</code>" in html
    assert "no verdict yet" in html


@pytest.mark.integration
@pytest.mark.slow
def test_without_a_session_the_page_asks_to_log_in(
    make_client: Callable[..., TestClient],
) -> None:
    response = make_client().get("/quality")

    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


def test_a_sparkline_spreads_the_days_and_breaks_at_days_without_a_value() -> None:
    line = sparkline([0.0, 1.0, None, 0.5], ["a", "b", "c", "d"], width=32, height=12)

    assert line.segments == ("2.0,10.0 11.3,2.0", "30.0,6.0")
    assert line.last is not None
    assert (line.last.x, line.last.y, line.last.label) == (30.0, 6.0, "d")
    assert line.baseline == 10.0


def test_a_sparkline_without_values_is_empty_and_values_are_clamped() -> None:
    assert sparkline([None, None], ["a", "b"]).empty
    clamped = sparkline([1.5, -1.0], ["a", "b"], width=12, height=12)
    assert clamped.segments == ("2.0,2.0 10.0,10.0",)


def test_a_query_url_keeps_the_filters_and_drops_empty_ones() -> None:
    query = QualityQuery.parse({"capability": "drafter", "version": "", "days": "200"})

    assert query == QualityQuery("drafter", "", 14)
    assert query.url() == "/quality?capability=drafter&days=14"
    assert query.url("/quality/decisions", version="2") == (
        "/quality/decisions?capability=drafter&version=2&days=14"
    )
