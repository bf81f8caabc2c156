"""The ``knowledge`` capability: the help-centre articles closest to a ticket.

Articles ship as ``agents/data/kb_articles.jsonl``; the first worker to start loads them
into ``kb_articles`` (see ``agents.knowledge_base``). Every task is one call of the MCP
tool ``helpcentre/search_articles`` (``agents/helpcentre_mcp.py``, configured by
``agents/tools/helpcentre.yaml``, which `waypost up` adds to the tool directories):
a nearest-neighbour query over the articles' embeddings, governed, audited and traced
like any tool call (the action ``mcp:helpcentre/search_articles``).
"""

from __future__ import annotations

from pathlib import Path

import pydantic
from pydantic import BaseModel, Field

from agents.data import read_text
from agents.helpcentre_mcp import SERVER_NAME, TOOL_NAME
from agents.knowledge_base import Article, KnowledgeBase, SourceArticle
from waypost import AgentContext, AgentEnvironment, AgentResult, agent
from waypost.tools.errors import ToolUnavailable, UnknownToolServer
from waypost.tools.model import ToolResult

__all__ = [
    "TOOL_DIR",
    "Article",
    "KnowledgeBase",
    "Query",
    "Results",
    "knowledge",
    "read_articles",
]

TOOL_DIR = Path(__file__).resolve().parent / "tools"
"""The tool-server files of the built-in agents (the ``helpcentre`` server)."""


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
    """Find the k articles nearest to the subject and query by cosine similarity, with
    the help centre's MCP tool."""
    articles = search_helpcentre(ctx, f"{request.subject} {request.query}", k=request.k)
    if not articles:
        ctx.note("the query has no searchable words (only stop words or punctuation)")
        return AgentResult(Results(articles=[]), confidence=0.0)
    for article in articles:
        ctx.note(f"{article.id} {article.title!r}: similarity {article.score:.2f}")
    # The best match's similarity says how well the knowledge base covers this ticket.
    confidence = min(max(articles[0].score, 0.0), 1.0)
    return AgentResult(Results(articles=articles), confidence=confidence)


def search_helpcentre(ctx: AgentContext, query: str, *, k: int) -> list[Article]:
    """The articles ``helpcentre/search_articles`` finds for ``query`` (its result is
    untrusted data: read as articles or refused)."""
    missing = (
        f"the knowledge agent searches the help centre with the MCP tool server "
        f"{SERVER_NAME!r}, which is not configured here: add {TOOL_DIR} to "
        "WAYPOST_TOOL_DIRS (`waypost up` does), see docs/mcp.md"
    )
    if ctx.tools is None:
        raise UnknownToolServer(missing + " (this task has no ctx.tools at all)")
    try:
        found = ctx.tools.call(SERVER_NAME, TOOL_NAME, {"query": query, "k": k})
    except UnknownToolServer as exc:
        raise UnknownToolServer(f"{missing} ({exc})") from None
    return _articles(found)


def _articles(found: ToolResult) -> list[Article]:
    if found.is_error:
        raise ToolUnavailable(SERVER_NAME, TOOL_NAME, f"the tool failed: {found.text[:300]}")
    try:
        return Results.model_validate(found.structured).articles
    except pydantic.ValidationError as exc:
        raise ToolUnavailable(
            SERVER_NAME,
            TOOL_NAME,
            f"answered with something other than a list of articles ({exc.error_count()} "
            "problem(s))",
        ) from None


@knowledge.setup
def open_knowledge_base(env: AgentEnvironment) -> KnowledgeBase:
    """Connect, load the shipped articles if the table is empty, and build the index."""
    base = KnowledgeBase(env.database(), env.embedder)
    base.load_if_empty(read_articles())
    return base
