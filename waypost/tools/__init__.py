"""MCP tools for agents: tool servers as configuration, calls governed like ``ctx.act``.

    # tools/helpdesk.yaml: servers: {helpdesk: {command: python, args: [-m, helpdesk]}}
    found = ctx.tools.call("helpdesk", "search", {"query": "refund"})   # in a handler

``config`` reads and reloads the server files, ``client`` owns the SDK sessions on one
event loop thread per process (``transports`` opens stdio and streamable-HTTP
connections), ``governed`` is what ``ctx.tools`` does for one task (governance, schema
check, span, metrics, reasoning trace), ``setup`` gives a worker its toolbox, ``cli``
is `waypost tools`. Protocol code is the official ``mcp`` SDK's. See docs/mcp.md.

Nothing is imported here, so that ``waypost`` commands do not pay for it: import the
modules (``waypost.tools.governed.TaskTools``, ``waypost.tools.errors.ToolUnavailable``).
"""
