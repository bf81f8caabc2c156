"""A worker's connections to its MCP tool servers, through the official ``mcp`` SDK.

    client = ToolClient(toolset.current)   # servers by name, looked up on every call
    client.start()                         # one event loop thread for the process
    client.tools("helpdesk")               # [ToolInfo, ...] (connects on first use)
    client.call("helpdesk", "search", {"query": "refund"})
    client.close()                         # ends every session (stdio servers exit)

Handlers are synchronous and run in several threads; the SDK is asynchronous. So the
client owns one asyncio event loop in a thread of its own, and the synchronous methods
submit coroutines to it. Each server has at most one session, opened on first use and
reused by every call from every thread. A session is owned by one task (``_Session``)
that enters the SDK's transport and ``ClientSession`` context managers and leaves them
when told to close: the SDK's anyio task groups must be left by the task that entered
them.

A call that times out (``timeout`` of the server), a server that exits or closes the
connection, and an answer the SDK cannot read all raise ``ToolUnavailable`` and end
the session, so the next call connects again (a stdio server is started again). A
tool's own error result (``isError``) is a result, not a failure of the session.
A changed server definition (``ToolSet`` reload) ends its old session on the next use.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine, Mapping
from contextlib import AsyncExitStack
from typing import Any, TypeVar

from waypost.tools.config import ToolServer
from waypost.tools.errors import ToolUnavailable, UnknownToolServer
from waypost.tools.model import ToolInfo, ToolResult
from waypost.tools.transports import open_transport

log = logging.getLogger("waypost.tools")
T = TypeVar("T")
_GRACE_S = 5.0  # beyond a server's timeout, for the loop itself to answer


class _Session:
    """One server's session, owned by the task running ``own``."""

    def __init__(self, server: ToolServer) -> None:
        self.server = server
        self.session: Any = None  # mcp.ClientSession once ready
        self.tools: list[ToolInfo] = []
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # A caller that gave up waiting never reads the failure: read it here, so asyncio
        # does not report it as "never retrieved".
        self.ready.add_done_callback(lambda done: done.cancelled() or done.exception())
        self.closing = asyncio.Event()
        self.ended = False

    async def own(self, environ: Mapping[str, str]) -> None:
        """Open the session, list the tools, hold it until ``closing``, then close it."""
        from mcp import ClientSession

        try:
            async with AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(open_transport(self.server, environ))
                session = await stack.enter_async_context(
                    ClientSession(read, write, read_timeout_seconds=self.server.timeout)
                )
                await session.initialize()
                self.tools = await _list_tools(session)
                self.session = session
                self.ready.set_result(None)
                await self.closing.wait()
        except BaseException as exc:  # reported to whoever waits
            if not self.ready.done():
                self.ready.set_exception(
                    exc
                    if isinstance(exc, Exception)
                    else ConnectionError("the connection was cancelled")
                )
            if not isinstance(exc, Exception):
                raise
            log.info("MCP server %r: session ended (%s)", self.server.name, _why(exc))
        finally:
            self.ended = True


class ToolClient:
    """Sessions with the MCP servers ``servers()`` names, for synchronous callers."""

    def __init__(
        self,
        servers: Callable[[], Mapping[str, ToolServer]],
        *,
        environ: Mapping[str, str],
    ) -> None:
        """``servers``: the current definitions by name (``ToolSet.current``);
        ``environ``: where ``${NAME}`` references are resolved (the process environment)."""
        self._servers = servers
        self._environ = environ
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="mcp-tools", daemon=True)
        self._sessions: dict[str, _Session] = {}  # touched on the loop only
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def start(self) -> None:
        """Start the event loop thread (no server is contacted yet)."""
        self._thread.start()

    def server(self, name: str) -> ToolServer:
        """The definition of server ``name`` (``UnknownToolServer`` if there is none)."""
        found = self._servers().get(name)
        if found is None:
            known = ", ".join(sorted(self._servers())) or "none"
            raise UnknownToolServer(
                f"no MCP tool server {name!r} is configured (configured: {known}; "
                "WAYPOST_TOOL_DIRS)"
            )
        return found

    def tools(self, server: str) -> list[ToolInfo]:
        """The tools ``server`` offers (listed when its session opened)."""
        spec = self.server(server)
        return self._submit(self._tools_of(spec), spec, None)

    def call(self, server: str, tool: str, arguments: dict[str, Any]) -> ToolResult:
        """Call ``tool`` of ``server`` (no governance here: see ``governed``)."""
        spec = self.server(server)
        return self._submit(self._call(spec, tool, arguments), spec, tool)

    def close(self) -> None:
        """End every session and stop the loop thread."""
        if self._closed or not self._thread.is_alive():
            self._closed = True
            return
        self._closed = True
        future = asyncio.run_coroutine_threadsafe(self._close_all(), self._loop)
        try:
            future.result(timeout=_GRACE_S * 2)
        except Exception as exc:  # closing anyway
            log.warning("MCP sessions did not close cleanly: %s", exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_GRACE_S)

    # --- on the loop ------------------------------------------------------------------

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _submit(self, work: Coroutine[Any, Any, T], spec: ToolServer, tool: str | None) -> T:
        if self._closed or not self._thread.is_alive():
            work.close()
            raise ToolUnavailable(spec.name, tool, "the tool client is not running")
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        try:
            # The coroutine enforces the server's timeout; this one only guards the loop.
            return future.result(timeout=spec.timeout * 2 + _GRACE_S)
        except TimeoutError:
            future.cancel()
            raise ToolUnavailable(spec.name, tool, "no answer; the event loop is stuck") from None

    async def _open(self, spec: ToolServer) -> _Session:
        """The live session of ``spec`` (opened now if there is none, or it changed)."""
        lock = self._locks.setdefault(spec.name, asyncio.Lock())
        async with lock:
            current = self._sessions.get(spec.name)
            if current is not None and (current.ended or current.server != spec):
                current.closing.set()
                current = None
            if current is None:
                current = _Session(spec)
                task = asyncio.create_task(current.own(self._environ), name=f"mcp-{spec.name}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                self._sessions[spec.name] = current
            try:
                await asyncio.wait_for(asyncio.shield(current.ready), spec.timeout)
            except TimeoutError:
                self._drop(current)
                raise ToolUnavailable(
                    spec.name, None, f"could not connect within {spec.timeout:g} s"
                ) from None
            except KeyError as exc:
                self._drop(current)
                raise ToolUnavailable(
                    spec.name, None, f"environment variable {exc.args[0]} is not set"
                ) from None
            except Exception as exc:
                self._drop(current)
                raise ToolUnavailable(spec.name, None, f"could not connect: {_why(exc)}") from None
            return current

    async def _tools_of(self, spec: ToolServer) -> list[ToolInfo]:
        return list((await self._open(spec)).tools)

    async def _call(self, spec: ToolServer, tool: str, arguments: dict[str, Any]) -> ToolResult:
        from mcp import MCPError
        from mcp_types import REQUEST_TIMEOUT

        session = await self._open(spec)
        try:
            # The SDK times the request (and tells the server to stop); wait_for only
            # guards against a transport that never gives up.
            answer = await asyncio.wait_for(
                session.session.call_tool(tool, arguments, read_timeout_seconds=spec.timeout),
                spec.timeout + _GRACE_S,
            )
            return _result(spec.name, tool, answer)
        except (TimeoutError, MCPError) as exc:
            if isinstance(exc, MCPError) and exc.code != REQUEST_TIMEOUT:
                self._drop(session)
                raise ToolUnavailable(
                    spec.name,
                    tool,
                    f"the server answered with an error ({exc.message}); the session is "
                    "closed and the next call connects again",
                ) from None
            self._drop(session)
            raise ToolUnavailable(
                spec.name,
                tool,
                f"no answer within {spec.timeout:g} s (timeout); the "
                "session is closed and the next call connects again",
            ) from None
        except Exception as exc:
            self._drop(session)
            raise ToolUnavailable(
                spec.name,
                tool,
                f"the call failed ({_why(exc)}); the session is closed and "
                "the next call connects again",
            ) from None

    def _drop(self, session: _Session) -> None:
        session.closing.set()
        if self._sessions.get(session.server.name) is session:
            del self._sessions[session.server.name]

    async def _close_all(self) -> None:
        for session in list(self._sessions.values()):
            session.closing.set()
        self._sessions.clear()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=_GRACE_S)


async def _list_tools(session: Any) -> list[ToolInfo]:
    """Every tool of the server, page after page."""
    from mcp_types import PaginatedRequestParams

    found: list[ToolInfo] = []
    cursor: str | None = None
    while True:
        params = PaginatedRequestParams(cursor=cursor) if cursor is not None else None
        listed = await session.list_tools(params=params)
        found += [
            ToolInfo(tool.name, tool.description or "", dict(tool.input_schema or {}))
            for tool in listed.tools
        ]
        cursor = listed.next_cursor
        if cursor is None:
            return found


def _result(server: str, tool: str, answer: Any) -> ToolResult:
    content = tuple(part.model_dump(mode="json", exclude_none=True) for part in answer.content)
    text = "\n".join(part["text"] for part in content if part.get("type") == "text")
    structured = answer.structured_content
    return ToolResult(
        server=server,
        tool=tool,
        text=text,
        structured=dict(structured) if isinstance(structured, dict) else None,
        content=content,
        is_error=bool(answer.is_error),
    )


def _why(exc: BaseException) -> str:
    """A one-line reason; an exception group (anyio) by its first leaf."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


__all__ = ["ToolClient"]
