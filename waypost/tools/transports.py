"""Opening a connection to one MCP server with the SDK's transports: a stdio process or
streamable HTTP. ``${NAME}`` references are resolved here, at connect time, so the
secrets live only in the connection (never in a log line or an exception message)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from waypost.tools.config import ToolServer, resolve

PYTHON = "python"


def interpreter(command: str) -> str:
    """The program to start for a stdio server's ``command``: ``python`` means the
    worker's own interpreter (the one Waypost and the agents' packages are installed in),
    whatever ``python`` is first on PATH; any other command is run as written."""
    return sys.executable if command == PYTHON else command


@asynccontextmanager
async def open_transport(server: ToolServer, environ: Mapping[str, str]) -> AsyncIterator[Any]:
    """The (read, write) streams of a connection to ``server``; KeyError naming an
    environment variable a reference needs that is not set."""
    if server.command is not None:
        from mcp.client.stdio import StdioServerParameters, stdio_client

        parameters = StdioServerParameters(
            command=interpreter(server.command),
            args=[resolve(arg, environ) for arg in server.args],
            # Only what the file names (plus the SDK's safe defaults such as PATH): the
            # worker's own secrets do not leak into a tool server's process.
            env={key: resolve(value, environ) for key, value in server.env.items()} or None,
        )
        # The process's own stderr, not sys.stderr: a server's log lines go where the
        # worker's go, even when sys.stderr is replaced by a stream without a file.
        async with stdio_client(parameters, errlog=sys.__stderr__ or sys.stderr) as (read, write):
            yield read, write
        return
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    assert server.url is not None
    url = server.url
    headers = {key: resolve(value, environ) for key, value in server.headers.items()}
    # The SDK times each request itself (``read_timeout_seconds``); the read timeout
    # here only bounds a silent response stream, as the SDK's own default client does.
    client = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(server.timeout, read=300.0))
    async with client, streamable_http_client(url, http_client=client) as streams:
        yield streams[0], streams[1]
