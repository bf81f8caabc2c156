"""Agent memory: the pure ranking and merge rules, then the store on the real PostgreSQL +
pgvector (one freshly migrated schema per test, time from an injected clock)."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest
from sqlalchemy import Engine, text

from waypost.embeddings import HashingEmbedder
from waypost.errors import ConfigError
from waypost.memory import AgentMemory, Consolidation, Memory, MemoryPolicy, Merge, repository
from waypost.memory.model import plan_merges, rank, recency, score
from waypost.memory.tables import EMBEDDING_DIMENSION, EMBEDDING_INDEX

T0 = datetime(2030, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
EMBEDDER = HashingEmbedder()


@dataclass
class Clock:
    """The time the memory store sees; tests move it forward."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


def _memory(
    id: int,
    *,
    kind: Any = "episodic",
    importance: float = 0.5,
    created: datetime = T0,
    accessed: datetime | None = None,
    metadata: dict[str, Any] | None = None,
) -> Memory:
    return Memory(
        id=id,
        kind=kind,
        content=f"memory {id}",
        importance=importance,
        access_count=0,
        created_at=created,
        last_accessed_at=accessed or created,
        metadata=metadata or {},
    )


def _access(engine: Engine, memory_id: int) -> tuple[int, datetime]:
    row = _row(engine, memory_id)
    return row.access_count, row.last_accessed_at


def _similarity(a: str, b: str) -> float:
    vectors = EMBEDDER.embed([a, b])
    return float(vectors[0] @ vectors[1])


# --- the pure rules -----------------------------------------------------------------------


def test_recency_halves_every_half_life_and_never_exceeds_one() -> None:
    week = timedelta(days=7)

    assert recency(last_accessed_at=T0, now=T0, half_life=week) == 1.0
    assert recency(last_accessed_at=T0, now=T0 + week, half_life=week) == pytest.approx(0.5)
    assert recency(last_accessed_at=T0, now=T0 + 3 * week, half_life=week) == pytest.approx(0.125)
    # A clock that went back (another worker's) does not make a memory "fresher than new".
    assert recency(last_accessed_at=T0 + DAY, now=T0, half_life=week) == 1.0


def test_score_is_the_product_and_ignores_negative_similarity() -> None:
    assert score(similarity=0.8, importance=0.5, recency=0.25) == pytest.approx(0.1)
    assert score(similarity=-0.3, importance=1.0, recency=1.0) == 0.0


def test_rank_orders_by_similarity_importance_and_recency() -> None:
    policy = MemoryPolicy(half_life=timedelta(days=7))
    now = T0 + timedelta(days=14)
    candidates = [
        (_memory(1, importance=1.0, created=now), 0.5),  # 0.5
        (_memory(2, importance=0.4, created=now), 0.9),  # 0.36
        (_memory(3, importance=1.0, created=T0), 0.9),  # 0.9 * 0.25 = 0.225
        (_memory(4, importance=1.0, created=now), 0.0),  # not similar at all: left out
    ]

    ranked = rank(candidates, now=now, policy=policy, k=10)

    assert [r.memory.id for r in ranked] == [1, 2, 3]
    assert [r.score for r in ranked] == pytest.approx([0.5, 0.36, 0.225])
    assert ranked[2].recency == pytest.approx(0.25)
    assert [r.memory.id for r in rank(candidates, now=now, policy=policy, k=2)] == [1, 2]


def test_rank_breaks_ties_by_similarity() -> None:
    candidates = [(_memory(1, importance=0.5), 0.8), (_memory(2, importance=1.0), 0.4)]

    ranked = rank(candidates, now=T0, policy=MemoryPolicy(), k=2)

    assert [r.memory.id for r in ranked] == [1, 2]  # both score 0.4


def test_merges_keep_the_newest_and_combine_the_rest() -> None:
    memories = [
        _memory(1, importance=0.9, created=T0, metadata={"source": "a", "lang": "en"}),
        _memory(2, importance=0.2, created=T0 + DAY, metadata={"source": "b"}),
        _memory(3, importance=0.5, created=T0 + 2 * DAY),
    ]

    merges = plan_merges(memories, [(1, 2), (2, 3), (1, 3), (3, 1)])

    assert merges == [
        Merge(keep=3, absorb=(1, 2), importance=0.9, metadata={"source": "b", "lang": "en"})
    ]


def test_merges_do_not_chain_or_mix_kinds() -> None:
    memories = [
        _memory(1, created=T0),
        _memory(2, created=T0 + DAY),
        _memory(3, created=T0 + 2 * DAY),
        _memory(4, kind="semantic", created=T0 + 3 * DAY),
    ]

    # 3 is like 2 and 2 like 1, but 3 is not like 1; 4 is like 3 but of another kind.
    merges = plan_merges(memories, [(3, 2), (2, 1), (4, 3)])

    assert [(m.keep, m.absorb) for m in merges] == [(3, (2,))]


@pytest.mark.parametrize(
    "changes",
    [
        {"half_life": timedelta(0)},
        {"candidates": 0},
        {"candidates": 1001},
        {"merge_similarity": 1.0},
        {"forget_below_importance": 1.5},
        {"forget_max_access_count": -1},
    ],
)
def test_a_policy_refuses_nonsense(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        MemoryPolicy(**changes)


# --- the store on PostgreSQL --------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def memory(engine: Engine, clock: Clock) -> AgentMemory:
    return AgentMemory(engine, EMBEDDER, agent="support", clock=clock)


def _row(engine: Engine, memory_id: int) -> Any:
    with engine.connect() as connection:
        return connection.execute(
            text("SELECT * FROM agent_memories WHERE id = :id"), {"id": memory_id}
        ).one_or_none()


@pytest.mark.integration
def test_remember_stores_the_memory_and_its_embedding(memory: AgentMemory, engine: Engine) -> None:
    stored = memory.remember(
        "Sam prefers email", kind="semantic", importance=0.8, metadata={"customer": "sam"}
    )

    assert (stored.kind, stored.content, stored.importance) == (
        "semantic",
        "Sam prefers email",
        0.8,
    )
    assert (stored.access_count, stored.created_at, stored.last_accessed_at) == (0, T0, T0)
    assert stored.metadata == {"customer": "sam"}
    row = _row(engine, stored.id)
    assert row.agent == "support"
    with engine.connect() as connection:
        vector = connection.execute(
            text("SELECT embedding::text FROM agent_memories WHERE id = :id"), {"id": stored.id}
        ).scalar_one()
    stored_vector = np.array([float(v) for v in vector.strip("[]").split(",")])
    np.testing.assert_allclose(stored_vector, EMBEDDER.embed(["Sam prefers email"])[0], atol=1e-6)
    assert memory.remember("no metadata").metadata == {}


@pytest.mark.integration
@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"text": "x", "kind": "dream"}, "kind must be one of"),
        ({"text": "x", "importance": 1.5}, "importance must be between 0 and 1"),
        ({"text": "it is the"}, "nothing to remember"),
        ({"text": ""}, "nothing to remember"),
    ],
)
def test_remember_refuses_bad_input(
    memory: AgentMemory, call: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        memory.remember(**call)
    assert memory.count() == 0


@pytest.mark.integration
def test_recall_ranks_by_similarity_when_all_else_is_equal(memory: AgentMemory) -> None:
    query = "how does Sam prefer to be contacted"
    texts = [
        "Sam prefers to be contacted by email",
        "Sam lives in Leeds",
        "The printer on floor two is broken",
    ]
    for content in texts:
        memory.remember(content)

    recalled = memory.recall(query, k=5)

    similar = sorted(
        (t for t in texts if _similarity(query, t) > 0),
        key=lambda t: _similarity(query, t),
        reverse=True,
    )
    assert [r.memory.content for r in recalled] == similar
    assert similar[:2] == texts[:2]
    for found in recalled:
        assert found.similarity == pytest.approx(_similarity(query, found.memory.content), abs=1e-5)
        assert found.score == pytest.approx(found.similarity * 0.5, abs=1e-5)


@pytest.mark.integration
def test_importance_can_outweigh_similarity(memory: AgentMemory) -> None:
    query = "Sam prefers email"
    close = memory.remember("Sam prefers email for invoices", importance=0.2)
    vital = memory.remember("Sam asked us never to phone him", importance=1.0)
    assert _similarity(query, close.content) > _similarity(query, vital.content) > 0

    recalled = memory.recall(query, k=2)

    expected = sorted(
        [close, vital], key=lambda m: _similarity(query, m.content) * m.importance, reverse=True
    )
    assert [r.memory.id for r in recalled] == [m.id for m in expected]
    assert recalled[0].memory.id == vital.id


@pytest.mark.integration
def test_recency_decays_with_the_half_life(engine: Engine, clock: Clock) -> None:
    memory = AgentMemory(
        engine, EMBEDDER, agent="support", clock=clock, policy=MemoryPolicy(half_life=7 * DAY)
    )
    old = memory.remember("Sam prefers email")
    clock.advance(14 * DAY)
    new = memory.remember("Sam prefers phone")

    recalled = memory.recall("Sam prefers", k=2)

    assert [r.memory.id for r in recalled] == [new.id, old.id]
    assert [r.recency for r in recalled] == pytest.approx([1.0, 0.25])
    assert recalled[1].score == pytest.approx(recalled[1].similarity * 0.5 * 0.25)
    # Recalling refreshed the old memory: now it is as fresh as the new one.
    again = {r.memory.id: r.recency for r in memory.recall("Sam prefers", k=2)}
    assert again == {new.id: 1.0, old.id: 1.0}


@pytest.mark.integration
def test_recall_counts_accesses_of_what_it_returns(
    memory: AgentMemory, engine: Engine, clock: Clock
) -> None:
    email = memory.remember("Sam prefers email")
    phone = memory.remember("Sam prefers phone")
    unrelated = memory.remember("The printer is broken")
    clock.advance(DAY)

    first = memory.recall("Sam prefers email", k=1)
    clock.advance(DAY)
    second = memory.recall("Sam prefers", k=2)

    assert [r.memory.id for r in first] == [email.id]
    assert first[0].memory.access_count == 1
    assert first[0].memory.last_accessed_at == T0 + DAY
    assert {r.memory.id for r in second} == {email.id, phone.id}
    assert _access(engine, email.id) == (2, T0 + 2 * DAY)
    assert _access(engine, phone.id) == (1, T0 + 2 * DAY)
    assert _access(engine, unrelated.id) == (0, T0)


@pytest.mark.integration
def test_recall_filters_by_kind_and_ignores_empty_queries(memory: AgentMemory) -> None:
    fact = memory.remember("Refunds take five days", kind="semantic")
    how = memory.remember("To send refunds open the orders page", kind="procedural")
    memory.remember("Refunds were slow on Monday", kind="episodic")

    found = memory.recall("refunds", k=5, kinds=["semantic", "procedural"])

    assert {r.memory.id for r in found} == {fact.id, how.id}
    assert [r.memory.id for r in memory.recall("refunds", kinds="semantic")] == [fact.id]
    assert memory.recall("is it the", k=5) == []
    assert memory.recall("refunds", kinds=[]) == []
    with pytest.raises(ValueError, match="kinds must be among"):
        memory.recall("refunds", kinds=["dream"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="k must be at least 1"):
        memory.recall("refunds", k=0)


@pytest.mark.integration
def test_consolidate_merges_near_duplicates_and_forgets_old_trivia(
    memory: AgentMemory, engine: Engine, clock: Clock
) -> None:
    first = memory.remember(
        "Sam prefers to be contacted by email",
        kind="semantic",
        importance=0.4,
        metadata={"source": "ticket-1", "lang": "en"},
    )
    trivia = memory.remember("The office coffee machine was descaled", importance=0.1)
    vital = memory.remember("Refunds above 500 euros need a manager", importance=0.9)
    used = memory.remember("The printer jammed again", importance=0.1)
    clock.advance(DAY)
    # The same words (punctuation and case differ): cosine similarity 1.
    second = memory.remember(
        "Sam prefers to be contacted by EMAIL!",
        kind="semantic",
        importance=0.7,
        metadata={"source": "ticket-2"},
    )
    episode = memory.remember("Sam prefers to be contacted by email", kind="episodic")
    assert [r.memory.id for r in memory.recall("printer jammed", k=1)] == [used.id]
    assert {r.memory.id for r in memory.recall("Sam", k=2, kinds=["semantic"])} == {
        first.id,
        second.id,
    }
    clock.advance(38 * DAY)
    recent = memory.remember("Lunch was late today", importance=0.1)
    clock.advance(DAY)  # 40 days after the start: trivia is 40 days old and never recalled

    done = memory.consolidate()

    assert done == Consolidation(
        merged=(
            Merge(
                keep=second.id,
                absorb=(first.id,),
                importance=0.7,
                metadata={"source": "ticket-2", "lang": "en"},
            ),
        ),
        forgotten=(trivia.id,),
    )
    assert done.removed == 2
    assert _row(engine, first.id) is None
    assert _row(engine, trivia.id) is None
    kept = _row(engine, second.id)
    assert (kept.content, kept.kind, kept.importance, kept.access_count) == (
        "Sam prefers to be contacted by EMAIL!",
        "semantic",
        0.7,
        2,
    )
    assert kept.created_at == T0 + DAY
    assert kept.last_accessed_at == T0 + DAY
    assert kept.metadata == {"source": "ticket-2", "lang": "en"}
    for survivor in (vital, used, episode, recent):
        assert _row(engine, survivor.id) is not None
    assert memory.consolidate() == Consolidation()


@pytest.mark.integration
def test_consolidation_thresholds_are_settings(engine: Engine, clock: Clock) -> None:
    memory = AgentMemory(
        engine,
        EMBEDDER,
        agent="support",
        clock=clock,
        policy=MemoryPolicy(
            forget_below_importance=0.6, forget_max_access_count=1, forget_after=2 * DAY
        ),
    )
    medium = memory.remember("Sam called about the invoice", importance=0.5)
    memory.recall("Sam invoice", k=1)
    clock.advance(3 * DAY)

    assert memory.consolidate().forgotten == (medium.id,)


@pytest.mark.integration
def test_agents_never_see_each_others_memories(engine: Engine, clock: Clock) -> None:
    alpha = AgentMemory(engine, EMBEDDER, agent="alpha", clock=clock)
    beta = AgentMemory(engine, EMBEDDER, agent="beta", clock=clock)
    shared = "Sam prefers to be contacted by email"
    mine = alpha.remember(shared, importance=0.5)
    theirs = beta.remember(shared, importance=0.5)
    secret = beta.remember("The vault code is kept by Priya", importance=1.0)
    old_trivia = beta.remember("Beta's coffee machine was descaled", importance=0.0)
    clock.advance(60 * DAY)

    assert [r.memory.id for r in alpha.recall(shared, k=10)] == [mine.id]
    assert alpha.recall("vault code Priya", k=10) == []
    assert alpha.forget([theirs.id, secret.id]) == []
    assert alpha.consolidate() == Consolidation()  # neither merged with nor forgot beta's

    assert beta.count() == 3
    assert [r.memory.id for r in beta.recall("vault code", k=10)] == [secret.id]
    assert beta.consolidate().forgotten == (old_trivia.id,)
    assert alpha.count() == 1
    assert beta.forget([theirs.id]) == [theirs.id]


@pytest.mark.integration
def test_recalls_and_consolidations_run_side_by_side(engine: Engine, clock: Clock) -> None:
    memory = AgentMemory(engine, EMBEDDER, agent="support", clock=clock)
    texts = _random_texts(40, seed=3)
    for content in texts + texts[:20]:  # 20 exact duplicates for consolidation to merge
        memory.remember(content, importance=0.1)
    clock.advance(60 * DAY)  # and every memory not recalled meanwhile is forgettable
    errors: list[BaseException] = []

    def run(work: Callable[[], object], times: int) -> None:
        try:
            for _ in range(times):
                work()
        except BaseException as exc:
            errors.append(exc)

    recalled = threading.Event()  # memories recalled before consolidating are kept

    def recall(query: str) -> None:
        memory.recall(query, k=10)
        recalled.set()

    def consolidate() -> None:
        assert recalled.wait(60), "no recall finished"
        memory.consolidate()

    threads = [
        threading.Thread(target=run, args=(lambda q=q: recall(q), 25))
        for q in ("refund courier parcel", "login password account", "card bank payment")
    ]
    threads.append(threading.Thread(target=run, args=(consolidate, 5)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert 0 < memory.count() <= 40


@pytest.mark.integration
def test_an_embedder_of_another_dimension_is_refused(engine: Engine) -> None:
    with pytest.raises(ConfigError, match=rf"{EMBEDDING_DIMENSION}-dimensional.*produces 384"):
        AgentMemory(engine, HashingEmbedder(384), agent="support")


# --- the index ----------------------------------------------------------------------------

_VOCABULARY = (
    "invoice refund parcel courier login password camera router boiler thermostat "
    "subscription plan discount voucher address delivery customs warranty battery screen "
    "charger cable account email phone payment card bank transfer receipt order"
)
WORDS = _VOCABULARY.split()


def _bulk_load(engine: Engine, rows: list[tuple[str, str, float]], at: datetime) -> None:
    """COPY (agent, content, importance) rows with their embeddings in one round trip."""
    embeddings = EMBEDDER.embed([content for _, content, _ in rows])
    with engine.begin() as connection:
        raw: Any = connection.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        with (
            raw.cursor() as cursor,
            cursor.copy(
                "COPY agent_memories (agent, kind, content, importance, created_at, "
                "last_accessed_at, embedding) FROM STDIN"
            ) as copy,
        ):
            for (agent, content, importance), vector in zip(rows, embeddings, strict=True):
                copy.write_row(
                    (
                        agent,
                        "episodic",
                        content,
                        importance,
                        at,
                        at,
                        repository.vector_literal(vector),
                    )
                )
        connection.execute(text("ANALYZE agent_memories"))


def _random_texts(count: int, seed: int) -> list[str]:
    chosen = random.Random(seed)
    return [" ".join(chosen.sample(WORDS, 6)) + f" case {i}" for i in range(count)]


@pytest.mark.integration
def test_the_migration_builds_an_hnsw_index_that_knn_recall_uses(
    engine: Engine, schema: str, memory: AgentMemory
) -> None:
    with engine.connect() as connection:
        definition = connection.execute(
            text(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = :schema AND indexname = :name"
            ),
            {"schema": schema, "name": EMBEDDING_INDEX},
        ).scalar_one()
    assert "USING hnsw (embedding vector_cosine_ops)" in definition

    # As a bulk loader would: building the index once after the COPY takes seconds,
    # maintaining it row by row most of a minute. The definition is the migration's.
    with engine.begin() as connection:
        connection.execute(text(f"DROP INDEX {EMBEDDING_INDEX}"))
    _bulk_load(
        engine,
        [("support", t, 0.5) for t in _random_texts(3000, seed=1)]
        + [("billing", t, 0.5) for t in _random_texts(1000, seed=2)],
        T0,
    )
    with engine.begin() as connection:
        connection.execute(text(definition))
        connection.execute(text("ANALYZE agent_memories"))
    query = EMBEDDER.embed(["refund for the courier parcel"])[0]
    with engine.begin() as connection:
        plan = "\n".join(
            connection.execute(
                text("EXPLAIN " + str(repository.NEAREST)),
                {
                    "agent": "support",
                    "embedding": repository.vector_literal(query),
                    "kinds": ["episodic", "semantic", "procedural"],
                    "limit": memory.policy.candidates,
                },
            ).scalars()
        )

    assert f"Index Scan using {EMBEDDING_INDEX}" in plan, plan
    found = memory.recall("refund for the courier parcel", k=5)
    assert len(found) == 5
    assert all("refund" in r.memory.content or "courier" in r.memory.content for r in found)
    assert memory.count() == 3000


@pytest.mark.integration
def test_nearest_finds_the_agents_memories_when_others_crowd_the_index(
    engine: Engine, memory: AgentMemory
) -> None:
    # 250 of another agent's memories closer to the query than any of ours: the HNSW scan
    # (ef_search candidates, filtered afterwards) alone would return none of ours.
    crowd = [("billing", f"refund courier parcel invoice {i}", 0.5) for i in range(250)]
    ours = [("support", f"refund courier {word}", 0.5) for word in ("boiler", "router", "cable")]
    _bulk_load(engine, crowd + ours, T0)
    query = EMBEDDER.embed(["refund courier parcel invoice"])[0]
    with engine.begin() as connection:
        # Leave the planner only the HNSW index, as on a large table.
        connection.execute(text("DROP INDEX agent_memories_agent_accessed"))
        connection.execute(text("SET LOCAL enable_seqscan = off"))
        indexed = connection.execute(
            repository.NEAREST,
            {
                "agent": "support",
                "embedding": repository.vector_literal(query),
                "kinds": ["episodic"],
                "limit": 100,
            },
        ).all()
        found = repository.nearest(
            connection=connection,
            agent="support",
            embedding=query,
            kinds=["episodic"],
            limit=100,
        )

    assert len(indexed) < 3  # what the index alone gives
    assert sorted(m.content for m, _ in found) == sorted(content for _, content, _ in ours)
