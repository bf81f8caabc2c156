"""A tiny MCP server made with the official SDK, the foreign side of the tool tests.

    python tests/support/mcp_server.py CALLS_FILE                 # stdio
    python tests/support/mcp_server.py CALLS_FILE --http PORT     # streamable HTTP (uvicorn)

Every tool call appends ``<tool> <pid>`` to CALLS_FILE before it does anything, so a
test can tell a call that reached the server from one that did not.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
from mcp.server.mcpserver import MCPServer

server = MCPServer("waypost-test-tools")
CALLS = Path(sys.argv[1])


def _count(tool: str) -> None:
    with CALLS.open("a") as handle:
        handle.write(f"{tool} {os.getpid()}\n")


@server.tool()
def echo(text: str, times: int = 1) -> str:
    """Repeat ``text`` ``times`` times."""
    _count("echo")
    return text * times


@server.tool()
def whoami() -> dict[str, int]:
    """The server's process id (structured)."""
    _count("whoami")
    return {"pid": os.getpid()}


@server.tool()
def secret() -> str:
    """A tool every test policy denies."""
    _count("secret")
    return "the server ran a denied tool"


@server.tool()
async def hang() -> str:
    """Never answers."""
    _count("hang")
    await anyio.sleep_forever()
    return "unreachable"


@server.tool()
def crash() -> str:
    """Ends the server's process in the middle of the call."""
    _count("crash")
    os._exit(3)


if __name__ == "__main__":
    if "--http" in sys.argv:
        import uvicorn

        port = int(sys.argv[sys.argv.index("--http") + 1])
        uvicorn.run(server.streamable_http_app(), host="127.0.0.1", port=port, log_level="warning")
    else:
        server.run()
