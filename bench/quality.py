"""Quality of the reference agents on the shipped data: triage accuracy, knowledge hits.

Runs in seconds without a database or broker: articles are ranked in numpy with the same
embeddings the knowledge base stores (``agents.knowledge_base.embed_articles``), and
triage goes through the agent's own ``classify`` and ``find_urgency_cues``.

    .venv/bin/python bench/quality.py                  # the default embedder
    .venv/bin/python bench/quality.py --dimension 512  # another hashing dimension
    .venv/bin/python bench/quality.py --sweep 256,512,1024,1536,2000 --seeds 8

What is measured:

- triage, leave-one-out over the 150 labelled examples: each example is classified by the
  other 149. Category and urgency accuracy, next to the majority-class baseline (always
  answering the most common label) and to urgency from the neighbour vote alone. The
  urgency lexicon was written from these examples' wording, so its leave-one-out number
  is optimistic;
- triage on ``agents/data/triage_holdout.json``: 48 tickets written for this benchmark
  before any tuning, classified against all 150 examples; the honest check of the lexicon;
- knowledge, on the hand-written queries of ``agents/data/knowledge_queries.json``: how
  often the expected article is first (top-1) or among the first three (top-3); how high
  the expected article and queries unrelated to any article score; and how often the
  reply agent would cite something (score >= ``agents.reply.RELEVANT_SCORE``).

``--sweep`` averages every number over ``--seeds`` hash functions per dimension
(``HashingEmbedder(seed=...)``): with feature hashing, one seed's collisions can move a
number by a few points either way. The last line of the output is a JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, TypeAdapter

from agents.data import read_text
from agents.knowledge import read_articles
from agents.knowledge_base import SourceArticle, embed_articles
from agents.reply import RELEVANT_SCORE
from agents.triage import (
    URGENCIES,
    Examples,
    LabelledTicket,
    Urgency,
    classify,
    find_urgency_cues,
    load_examples,
    ticket_text,
)
from waypost.embeddings import DEFAULT_DIMENSION, Embedder, HashingEmbedder


class KnowledgeQuery(BaseModel):
    """A hand-written query and the id of the article that answers it."""

    query: str
    article: str


class QuerySet(BaseModel):
    """``agents/data/knowledge_queries.json``."""

    queries: list[KnowledgeQuery]
    unrelated: list[str]


def load_queries() -> QuerySet:
    """The knowledge benchmark's queries."""
    return QuerySet.model_validate_json(read_text("knowledge_queries.json"))


def load_holdout() -> list[LabelledTicket]:
    """Labelled tickets that are not among the triage agent's examples."""
    return TypeAdapter(list[LabelledTicket]).validate_json(read_text("triage_holdout.json"))


@dataclass(frozen=True)
class TriageScores:
    """Accuracy of one triage evaluation (fractions of ``tickets``)."""

    tickets: int
    category: float
    category_baseline: float
    urgency: float
    urgency_vote_only: float
    """Urgency from the neighbour vote alone, without the wording's cues."""
    urgency_baseline: float
    urgency_confusion: dict[Urgency, dict[Urgency, int]]
    """Expected urgency -> predicted urgency -> count."""


def evaluate_triage(
    embedder: Embedder,
    examples: Sequence[LabelledTicket],
    tickets: Sequence[LabelledTicket] | None = None,
) -> TriageScores:
    """Classify ``tickets`` against ``examples``, or each example against the others."""
    example_vectors = embedder.embed([ticket_text(t.subject, t.body) for t in examples])
    if tickets is None:
        tickets, vectors = examples, example_vectors
    else:
        vectors = embedder.embed([ticket_text(t.subject, t.body) for t in tickets])
    leave_one_out = tickets is examples
    category_majority = _majority([t.category for t in examples])
    urgency_majority = _majority([t.urgency for t in examples])
    right_category = right_urgency = right_vote = 0
    confusion = {u: dict.fromkeys(URGENCIES, 0) for u in URGENCIES}
    for i, ticket in enumerate(tickets):
        if leave_one_out:
            others = [t for j, t in enumerate(examples) if j != i]
            voters = Examples(others, np.delete(example_vectors, i, axis=0))
        else:
            voters = Examples(examples, example_vectors)
        cues = find_urgency_cues(ticket_text(ticket.subject, ticket.body))
        decision = classify(vectors[i], voters, cues=cues)
        right_category += decision.category == ticket.category
        right_urgency += decision.urgency == ticket.urgency
        right_vote += classify(vectors[i], voters).urgency == ticket.urgency
        confusion[ticket.urgency][decision.urgency] += 1
    n = len(tickets)
    return TriageScores(
        tickets=n,
        category=right_category / n,
        category_baseline=sum(t.category == category_majority for t in tickets) / n,
        urgency=right_urgency / n,
        urgency_vote_only=right_vote / n,
        urgency_baseline=sum(t.urgency == urgency_majority for t in tickets) / n,
        urgency_confusion=confusion,
    )


def _majority(labels: Sequence[str]) -> str:
    # Counter.most_common keeps first-seen order on ties, so the baseline is stable.
    return Counter(labels).most_common(1)[0][0]


@dataclass(frozen=True)
class KnowledgeScores:
    """Retrieval quality on the query set."""

    queries: int
    top1: float
    top3: float
    expected_score_median: float
    """Median similarity of the expected article to its query."""
    cited_when_relevant: float
    """Share of queries whose expected article is in the top 3 and scores >= RELEVANT_SCORE."""
    unrelated_best_median: float
    unrelated_best_max: float
    """The highest score any article reached for a query no article answers."""
    cited_when_unrelated: float
    """Share of unrelated queries whose best article scores >= RELEVANT_SCORE."""
    misses: list[tuple[str, str, list[str]]]
    """(query, expected article, top 3 found) for every query whose article is not first."""


def evaluate_knowledge(
    embedder: Embedder, articles: Sequence[SourceArticle], query_set: QuerySet
) -> KnowledgeScores:
    """Rank articles for every query by cosine similarity, as the knowledge base does."""
    ids = [a.id for a in articles]
    matrix = embed_articles(embedder, articles)
    queries = query_set.queries
    scores = embedder.embed([q.query for q in queries]) @ matrix.T
    top1 = top3 = cited = 0
    expected_scores = []
    misses = []
    for row, query in zip(scores, queries, strict=True):
        # The same order as the database: best first, ties in table order.
        best = [ids[i] for i in np.argsort(-row, kind="stable")[:3]]
        expected = float(row[ids.index(query.article)])
        expected_scores.append(expected)
        top1 += best[0] == query.article
        top3 += query.article in best
        cited += query.article in best and expected >= RELEVANT_SCORE
        if best[0] != query.article:
            misses.append((query.query, query.article, best))
    unrelated = (embedder.embed(query_set.unrelated) @ matrix.T).max(axis=1)
    n = len(queries)
    return KnowledgeScores(
        queries=n,
        top1=top1 / n,
        top3=top3 / n,
        expected_score_median=float(np.median(expected_scores)),
        cited_when_relevant=cited / n,
        unrelated_best_median=float(np.median(unrelated)),
        unrelated_best_max=float(unrelated.max()),
        cited_when_unrelated=float(np.mean(unrelated >= RELEVANT_SCORE)),
        misses=misses,
    )


@dataclass(frozen=True)
class Report:
    """Every number of one embedder."""

    triage_loo: TriageScores
    triage_holdout: TriageScores
    knowledge: KnowledgeScores

    def summary(self) -> dict[str, float]:
        """The headline numbers, flat."""
        loo, holdout, kb = self.triage_loo, self.triage_holdout, self.knowledge
        return {
            "loo_category": loo.category,
            "loo_category_baseline": loo.category_baseline,
            "loo_urgency": loo.urgency,
            "loo_urgency_vote_only": loo.urgency_vote_only,
            "loo_urgency_baseline": loo.urgency_baseline,
            "holdout_category": holdout.category,
            "holdout_category_baseline": holdout.category_baseline,
            "holdout_urgency": holdout.urgency,
            "holdout_urgency_vote_only": holdout.urgency_vote_only,
            "holdout_urgency_baseline": holdout.urgency_baseline,
            "kb_top1": kb.top1,
            "kb_top3": kb.top3,
            "kb_expected_score_median": kb.expected_score_median,
            "kb_cited_when_relevant": kb.cited_when_relevant,
            "kb_unrelated_best_median": kb.unrelated_best_median,
            "kb_unrelated_best_max": kb.unrelated_best_max,
            "kb_cited_when_unrelated": kb.cited_when_unrelated,
        }


def evaluate(embedder: Embedder) -> Report:
    """Triage (leave-one-out and held-out) and knowledge for one embedder."""
    examples = load_examples()
    return Report(
        triage_loo=evaluate_triage(embedder, examples),
        triage_holdout=evaluate_triage(embedder, examples, load_holdout()),
        knowledge=evaluate_knowledge(embedder, read_articles(), load_queries()),
    )


def _print_report(report: Report, dimension: int, seed: int) -> None:
    print(f"HashingEmbedder(dimension={dimension}, seed={seed})\n")
    for name, scores in (("leave-one-out", report.triage_loo), ("held-out", report.triage_holdout)):
        print(
            f"triage {name} ({scores.tickets} tickets): "
            f"category {scores.category:.3f} (majority {scores.category_baseline:.3f}), "
            f"urgency {scores.urgency:.3f} (vote only {scores.urgency_vote_only:.3f}, "
            f"majority {scores.urgency_baseline:.3f})"
        )
        print("  urgency confusion (rows expected, columns predicted):")
        print("  " + " " * 8 + "".join(f"{u:>8}" for u in URGENCIES))
        for label, row in scores.urgency_confusion.items():
            print(f"  {label:<8}" + "".join(f"{row[u]:>8}" for u in URGENCIES))
    kb = report.knowledge
    print(
        f"\nknowledge ({kb.queries} queries): top-1 {kb.top1:.3f}, top-3 {kb.top3:.3f}; "
        f"expected article scores median {kb.expected_score_median:.3f}; "
        f"cited (top 3 and >= {RELEVANT_SCORE}) {kb.cited_when_relevant:.3f}"
    )
    print(
        f"unrelated queries: best score median {kb.unrelated_best_median:.3f}, "
        f"max {kb.unrelated_best_max:.3f}; would cite an article {kb.cited_when_unrelated:.3f}"
    )
    for query, expected, found in kb.misses:
        mark = "top-3" if expected in found else "miss "
        print(f"  {mark} {expected} <- {query!r}: found {', '.join(found)}")
    print()


_SWEEP_COLUMNS = {
    "loo_category": "loo cat",
    "loo_urgency": "loo urg",
    "loo_urgency_vote_only": "(vote)",
    "holdout_category": "ho cat",
    "holdout_urgency": "ho urg",
    "holdout_urgency_vote_only": "(vote)",
    "kb_top1": "kb top1",
    "kb_top3": "kb top3",
    "kb_expected_score_median": "right",
    "kb_unrelated_best_max": "unrel max",
}


def _sweep(dimensions: Sequence[int], seeds: int) -> list[dict[str, float]]:
    rows: list[dict[str, float]] = []
    for dimension in dimensions:
        summaries = [
            evaluate(HashingEmbedder(dimension, seed=seed)).summary() for seed in range(seeds)
        ]
        mean = {key: float(np.mean([s[key] for s in summaries])) for key in summaries[0]}
        rows.append({"dimension": dimension, "seeds": seeds, **mean})
    print(
        f"mean over {seeds} hash seeds (loo: leave-one-out, ho: held-out, (vote): urgency "
        "without cues, right: median score of the expected article, unrel max: best score "
        "of an unrelated query)"
    )
    print(f"{'dimension':>10}" + "".join(f"{label:>10}" for label in _SWEEP_COLUMNS.values()))
    for row in rows:
        cells = "".join(f"{row[key]:>10.3f}" for key in _SWEEP_COLUMNS)
        print(f"{int(row['dimension']):>10}{cells}")
    print()
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dimension", type=int, default=DEFAULT_DIMENSION)
    parser.add_argument("--seed", type=int, default=0, help="hash seed of the single run")
    parser.add_argument("--sweep", help="comma-separated dimensions to compare instead")
    parser.add_argument("--seeds", type=int, default=5, help="hash seeds per swept dimension")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.sweep:
        dimensions = [int(d) for d in args.sweep.split(",")]
        result: dict[str, object] = {"sweep": _sweep(dimensions, args.seeds)}
    else:
        report = evaluate(HashingEmbedder(args.dimension, seed=args.seed))
        _print_report(report, args.dimension, args.seed)
        result = {"dimension": args.dimension, "seed": args.seed, **report.summary()}
    result["seconds"] = time.perf_counter() - started
    print(json.dumps(_rounded(result)))


def _rounded(value: object) -> object:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value


if __name__ == "__main__":
    main()
