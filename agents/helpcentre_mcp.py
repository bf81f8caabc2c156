"""The help-centre MCP server: the knowledge base's article search as an MCP tool.

    python -m agents.helpcentre_mcp        # stdio, as agents/tools/helpcentre.yaml starts it

One tool, ``search_articles(query, k)``: the ``k`` articles of ``kb_articles`` closest
in meaning to ``query``, best first, as structured content (``{"articles": [...]}``) and
as JSON text. The search is ``KnowledgeBase.search`` (agents/knowledge_base.py), the
same query the knowledge agent ran in process before it called this server; the
knowledge agent's worker loads the articles, this server only reads them.

It connects to the database of ``WAYPOST_DATABASE_URL`` and ``WAYPOST_DATABASE_SCHEMA``
(or of the running ``waypost up`` stack), on the first call, not at start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, Field

from agents.knowledge_base import Article, KnowledgeBase

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

SERVER_NAME = "helpcentre"
TOOL_NAME = "search_articles"

Search = Callable[[str, int], list[Article]]


class SearchResults(BaseModel):
    """What ``search_articles`` returns: the closest articles, best first."""

    articles: list[Article]


def build_server(search: Search) -> MCPServer:
    """The MCP server (official SDK) answering ``search_articles`` with ``search``."""
    from mcp.server.mcpserver import MCPServer

    server = MCPServer(
        SERVER_NAME,
        instructions="Search the help-centre articles by meaning.",
    )

    @server.tool(name=TOOL_NAME)
    def search_articles(
        query: Annotated[str, Field(description="What to look for, e.g. a ticket's text.")],
        k: Annotated[int, Field(ge=1, le=10, description="How many articles.")] = 3,
    ) -> SearchResults:
        """The help-centre articles closest in meaning to the query, best first, with
        their cosine similarity as score (none if the query has no searchable words)."""
        return SearchResults(articles=search(query, k))

    return server


class LazySearch:
    """``KnowledgeBase.search`` over the configured database, connected on first use."""

    def __init__(self, connect: Callable[[], KnowledgeBase]) -> None:
        self._connect = connect
        self._base: KnowledgeBase | None = None
        self._lock = threading.Lock()

    def __call__(self, query: str, k: int) -> list[Article]:
        """The ``k`` articles closest to ``query``."""
        with self._lock:
            if self._base is None:
                self._base = self._connect()
        return self._base.search(query, k=k)


def main() -> None:
    """Serve over stdio until the client closes the connection."""
    from waypost.db import make_engine
    from waypost.embeddings import HashingEmbedder
    from waypost.endpoints import DATABASE, resolve
    from waypost.settings import CommonSettings, load

    settings = load(CommonSettings)

    def connect() -> KnowledgeBase:
        found = resolve(settings, need=(DATABASE,))
        engine = make_engine(
            found.database_url, schema=settings.database_schema, pool_size=1, app="helpcentre-mcp"
        )
        # The embedder agent workers use (waypost.runtime.main.WorkerEnvironment).
        return KnowledgeBase(engine, HashingEmbedder())

    server = build_server(LazySearch(connect))
    server.run()


if __name__ == "__main__":
    main()
