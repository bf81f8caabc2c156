"""The ``knowledge`` capability: the help-centre articles closest to a ticket.

Articles ship as ``agents/data/kb_articles.jsonl``; the first worker to start loads them
into ``kb_articles`` (see ``agents.knowledge_base``), and every task is one nearest-
neighbour query over their embeddings.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from agents.data import read_text
from agents.knowledge_base import Article, KnowledgeBase, SourceArticle
from waypost import AgentContext, AgentEnvironment, AgentResult, agent

__all__ = ["Article", "KnowledgeBase", "Query", "Results", "knowledge", "read_articles"]


class Query(BaseModel):
    """Input of ``knowledge``: what to search for, usually a ticket's body and subject."""

    query: str
    subject: str = ""
    k: int = Field(default=3, ge=1, le=10)


class Results(BaseModel):
    """Output of ``knowledge``: the closest articles, best first."""

    articles: list[Article]


def read_articles() -> list[SourceArticle]:
    """The help-centre articles shipped with this package."""
    lines = read_text("kb_articles.jsonl").splitlines()
    return [SourceArticle.model_validate_json(line) for line in lines if line.strip()]


@agent("knowledge", version="1", description="The help-centre articles closest to a ticket.")
def knowledge(request: Query, ctx: AgentContext) -> AgentResult[Results]:
    """Find the k articles nearest to the subject and query by cosine similarity."""
    base = ctx.resource(KnowledgeBase)
    articles = base.search(f"{request.subject} {request.query}", k=request.k)
    if not articles:
        ctx.note("the query has no searchable words (only stop words or punctuation)")
        return AgentResult(Results(articles=[]), confidence=0.0)
    for article in articles:
        ctx.note(f"{article.id} {article.title!r}: similarity {article.score:.2f}")
    # The best match's similarity says how well the knowledge base covers this ticket.
    confidence = min(max(articles[0].score, 0.0), 1.0)
    return AgentResult(Results(articles=articles), confidence=confidence)


@knowledge.setup
def open_knowledge_base(env: AgentEnvironment) -> KnowledgeBase:
    """Connect, load the shipped articles if the table is empty, and build the index."""
    base = KnowledgeBase(env.database(), env.embedder)
    base.load_if_empty(read_articles())
    return base
