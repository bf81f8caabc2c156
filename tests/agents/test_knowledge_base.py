"""The knowledge agent on the real embedded PostgreSQL + pgvector, one schema per test."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, text

from agents.knowledge import KnowledgeBase, Query, knowledge, open_knowledge_base, read_articles
from agents.knowledge_base import (
    EMBEDDING_DIMENSION,
    INDEX_NAME,
    SourceArticle,
    article_text,
)
from agents.reply import ReplyRequest, reply
from agents.triage import Ticket, TriageIndex, build_index, triage
from tests.agents.conftest import tool_context
from tests.agents.environment import Environment, context
from waypost.embeddings import HashingEmbedder
from waypost.errors import ConfigError
from waypost.tools.governed import Toolbox

pytestmark = pytest.mark.integration

ARTICLES = read_articles()


def _id_of(title_start: str) -> str:
    return next(a.id for a in ARTICLES if a.title.startswith(title_start))


def _count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM kb_articles")).scalar_one())


def _indexes(engine: Engine, schema: str) -> dict[str, str]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = :schema AND tablename = 'kb_articles'"
            ),
            {"schema": schema},
        )
        return {row.indexname: row.indexdef for row in rows}


@pytest.fixture
def loaded(engine: Engine) -> KnowledgeBase:
    base = KnowledgeBase(engine, HashingEmbedder())
    base.load_if_empty(ARTICLES)
    return base


def test_shipped_articles_are_valid_and_unique() -> None:
    assert 50 <= len(ARTICLES) <= 100
    assert len({a.id for a in ARTICLES}) == len(ARTICLES)
    assert all(a.url.startswith("https://") and a.summary and a.body for a in ARTICLES)


def test_migration_column_matches_the_embedding_dimension(engine: Engine, schema: str) -> None:
    with engine.connect() as connection:
        column_type = connection.execute(
            text(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = CAST(:table AS regclass) AND attname = 'embedding'"
            ),
            {"table": f'"{schema}".kb_articles'},
        ).scalar_one()

    assert column_type == f"vector({EMBEDDING_DIMENSION})"
    # The HNSW index is not the migration's job: it is built after the first bulk load.
    assert INDEX_NAME not in _indexes(engine, schema)


def test_first_load_copies_every_article_and_builds_the_hnsw_index(
    engine: Engine, schema: str
) -> None:
    base = KnowledgeBase(engine, HashingEmbedder())

    assert base.load_if_empty(ARTICLES) == len(ARTICLES)

    assert _count(engine) == len(ARTICLES)
    definition = _indexes(engine, schema)[INDEX_NAME]
    assert "USING hnsw (embedding vector_cosine_ops)" in definition
    with engine.connect() as connection:
        row = connection.execute(
            text(
                "SELECT title, tags, embedding::text AS embedding FROM kb_articles WHERE id = :id"
            ),
            {"id": ARTICLES[0].id},
        ).one()
    assert row.title == ARTICLES[0].title
    assert row.tags == ARTICLES[0].tags
    stored = np.array([float(v) for v in row.embedding.strip("[]").split(",")])
    expected = HashingEmbedder().embed([article_text(ARTICLES[0])])[0]
    np.testing.assert_allclose(stored, expected, atol=1e-6)


def test_second_load_does_nothing(loaded: KnowledgeBase, engine: Engine) -> None:
    other = [SourceArticle(id="kb-new", title="t", summary="s", body="b", url="https://x")]

    assert loaded.load_if_empty(other) == 0

    assert _count(engine) == len(ARTICLES)


def test_concurrent_first_starts_load_once(engine: Engine) -> None:
    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def start() -> None:
        base = KnowledgeBase(engine, HashingEmbedder())
        barrier.wait()
        try:
            results.append(base.load_if_empty(ARTICLES))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(results) == [0, len(ARTICLES)]
    assert _count(engine) == len(ARTICLES)


def test_charged_twice_finds_the_duplicate_charge_article(loaded: KnowledgeBase) -> None:
    articles = loaded.search("I was charged twice", k=3)

    assert articles[0].id == _id_of("Charged twice")
    assert articles[0].score > 0.3


@pytest.mark.parametrize(
    ("query", "title_start"),
    [
        ("Can't log in, the password reset email never arrives", "Password reset email"),
        ("My camera shows offline since I changed the Wi-Fi router", "Camera shows offline"),
        ("The courier asked me to pay customs duties on delivery", "Customs"),
        ("When will I get my refund for the returned thermostat?", "When will I get my refund"),
    ],
)
def test_relevant_article_is_among_the_top_three(
    loaded: KnowledgeBase, query: str, title_start: str
) -> None:
    assert _id_of(title_start) in [a.id for a in loaded.search(query, k=3)]


def test_results_are_ordered_by_score_and_match_numpy(loaded: KnowledgeBase) -> None:
    query = "the thermostat says heating but the boiler does not start"

    articles = loaded.search(query, k=10)

    assert len(articles) == 10
    scores = [a.score for a in articles]
    assert scores == sorted(scores, reverse=True)
    embedder = HashingEmbedder()
    vectors = embedder.embed([article_text(a) for a in ARTICLES])
    by_numpy = vectors @ embedder.embed([query])[0]
    best = np.argsort(-by_numpy)[:10]
    assert [a.id for a in articles] == [ARTICLES[i].id for i in best]
    assert scores == pytest.approx([float(by_numpy[i]) for i in best], abs=1e-5)


def test_nearest_query_can_use_the_hnsw_index(loaded: KnowledgeBase, engine: Engine) -> None:
    vector = "[" + ",".join(["0.0625"] * EMBEDDING_DIMENSION) + "]"
    with engine.begin() as connection:
        # A table this small is cheaper to scan; forbid that to see the index is usable.
        connection.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            connection.execute(
                text(
                    "EXPLAIN SELECT id FROM kb_articles "
                    "ORDER BY embedding <=> CAST(:v AS vector) LIMIT 3"
                ),
                {"v": vector},
            ).scalars()
        )

    assert INDEX_NAME in plan


def test_stop_words_only_find_nothing(loaded: KnowledgeBase) -> None:
    assert loaded.search("is it the", k=3) == []


def test_embedder_of_another_dimension_is_refused(engine: Engine) -> None:
    with pytest.raises(
        ConfigError, match=rf"{EMBEDDING_DIMENSION}-dimensional embeddings.*produces 384"
    ):
        KnowledgeBase(engine, HashingEmbedder(384))


def test_setup_loads_and_handler_answers(engine: Engine, helpcentre: Toolbox) -> None:
    base = open_knowledge_base(Environment(engine=engine))
    ctx = tool_context("knowledge", helpcentre, {KnowledgeBase: base})

    result = knowledge.run(
        Query(subject="Double charge", query="I was charged twice for my plan", k=2), ctx
    )

    assert _count(engine) == len(ARTICLES)
    assert result.output.articles[0].id == _id_of("Charged twice")
    assert len(result.output.articles) == 2
    assert result.confidence == pytest.approx(result.output.articles[0].score)
    # The search went through the help centre's MCP tool, which left its trace line.
    assert ctx.notes[0].startswith("tool helpcentre/search_articles (arguments sha256 ")
    assert ctx.notes[0].endswith(": ok")
    assert ctx.notes[1].startswith(f"{_id_of('Charged twice')} 'Charged twice")


def test_handler_with_nothing_searchable_has_no_confidence(
    loaded: KnowledgeBase, helpcentre: Toolbox
) -> None:
    ctx = tool_context("knowledge", helpcentre, {KnowledgeBase: loaded})

    result = knowledge.run(Query(query="?!", subject=""), ctx)

    assert result.output.articles == []
    assert result.confidence == 0.0


@pytest.mark.parametrize("k", [0, 11])
def test_k_is_between_one_and_ten(k: int) -> None:
    with pytest.raises(ValidationError):
        Query(query="q", k=k)


def test_support_ticket_steps_end_to_end(engine: Engine, helpcentre: Toolbox) -> None:
    environment = Environment(engine=engine)
    resources = {
        TriageIndex: build_index(environment),
        KnowledgeBase: open_knowledge_base(environment),
    }
    goal = {
        "subject": "Locked out of my account",
        "body": "I forgot my password and the reset email never arrives, not even in spam.",
        "customer": "Sam",
    }

    triaged = triage.run(Ticket.model_validate(goal), context("triage", resources)).output
    found = knowledge.run(
        Query(query=goal["body"], subject=goal["subject"], k=3),
        tool_context("knowledge", helpcentre, resources),
    ).output
    drafted = reply.run(
        ReplyRequest.model_validate(
            {
                **goal,
                "category": triaged.category,
                "urgency": triaged.urgency,
                "articles": found.model_dump()["articles"],
            }
        ),
        context("reply", resources),
    ).output

    assert triaged.category == "account_access"
    assert drafted.body.startswith("Hi Sam,")
    assert _id_of("Password reset email") in drafted.cited_articles
    assert drafted.subject == "Re: Locked out of my account"
