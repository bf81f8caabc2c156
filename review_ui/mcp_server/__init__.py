"""Waypost as an MCP server (docs/mcp.md, "Waypost as an MCP server"): tools to submit
workflows, decide escalations and read dead letters, and resources for the playbooks
and workflows, served at ``/mcp`` in the HTTP app (``http.py``) and over stdio by
`waypost mcp serve` (``stdio.py``). Every call runs the JSON API's own route function
as the caller, with the JSON API's roles, and is audited (``calls.py``)."""
