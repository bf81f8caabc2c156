"""`waypost up --demo`: submit sample goals of the three built-in workflows and print
what each step produced, which steps called MCP tools, and how to call the A2A endpoint."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

import click

from waypost.cli.client import Client
from waypost.cli.render import progress_line, workflow_text

_TOOL_NOTE = re.compile(r"^tool (?P<tool>\S+/\S+) \(arguments sha256 \w+\): (?P<outcome>\w+)")

SAMPLE_TICKETS = [
    {
        "subject": "Charged twice for my subscription",
        "body": "Hi, my card was charged twice for the May invoice of my Pro plan. "
        "Please refund the duplicate payment of $24.99.",
        "customer": "Dana",
    },
    {
        "subject": "Cannot log in after password reset",
        "body": "I reset my password this morning but the login page still says my "
        "credentials are wrong, and now my account seems locked. I need access today.",
        "customer": "Sam",
    },
    {
        "subject": "Where is my order?",
        "body": "My order was supposed to arrive last week and the tracking number has not "
        "updated in six days. Can you tell me where the parcel is?",
        "customer": "Ari",
    },
    # Two the triage examples do not settle: they wait for a reviewer in the console.
    {
        "subject": "Lock offline and billing",
        "body": "My smart lock went offline after the update and I was also billed for a "
        "plan I cancelled.",
        "customer": "Kim",
    },
    {
        "subject": "Hello",
        "body": "Hello team, just checking in about the thing we discussed last week.",
        "customer": "Lou",
    },
    # A refund above the policy limit (100.00): the reply agent asks for a human.
    {
        "subject": "Refund for my returned thermostat",
        "body": "I sent the thermostat back two weeks ago and you confirmed the return. "
        "Please refund the $249.00 I paid.",
        "customer": "Noor",
    },
]

# Accounts of agents/data/billing_ledger.json: acct-1002's last charge is an anomaly (its
# credit waits for approval); acct-1003's 4 % price rise is not.
SAMPLE_ACCOUNTS = [{"account_id": "acct-1002"}, {"account_id": "acct-1003"}]

# Payroll set-up always waits for approval.
SAMPLE_HIRES = [
    {
        "name": "Ada Lovelace",
        "personal_email": "ada@example.org",
        "role": "software_engineer",
        "office": "lisbon",
        "start_date": "2027-01-11",
        "salary": 84000,
        "manager": "Grace Hopper",
    },
]

SAMPLE_GOALS: list[tuple[str, Mapping[str, object]]] = [
    *(("support.ticket", ticket) for ticket in SAMPLE_TICKETS),
    *(("billing.anomaly", account) for account in SAMPLE_ACCOUNTS),
    *(("employee.onboarding", hire) for hire in SAMPLE_HIRES),
]


def run_demo(
    http_url: str, token: str | None, echo: Callable[[str], None], stop_requested: threading.Event
) -> None:
    """Submit the sample goals; print each workflow once it finished or waits for a
    reviewer; say where the waiting ones can be decided."""
    client = Client(http_url, token=token)
    waiting = 0
    try:
        echo(
            click.style(
                f"Demo: submitting {len(SAMPLE_TICKETS)} support tickets, "
                f"{len(SAMPLE_ACCOUNTS)} billing checks and {len(SAMPLE_HIRES)} new "
                + ("hire" if len(SAMPLE_HIRES) == 1 else "hires"),
                bold=True,
            )
        )
        # All at once, so the workflows run side by side; then printed in order.
        ids = [client.submit_goal(goal_type, goal) for goal_type, goal in SAMPLE_GOALS]
        for workflow_id in ids:
            if stop_requested.is_set():
                return
            workflow = client.wait(
                workflow_id,
                timeout_s=120,
                on_change=lambda w: echo("  " + progress_line(w)),
                until=settled,
            )
            echo("")
            echo(workflow_text(workflow))
            for line in tool_lines(workflow):
                echo(click.style(line, fg="cyan"))
            echo("")
            waiting += sum(t["status"] == "awaiting_review" for t in workflow["tasks"])
        summary = "Demo complete."
        if waiting:
            summary += f" {waiting} result(s) wait for a reviewer: {http_url}/inbox"
        echo(click.style(summary, bold=True, fg="green") + " The stack keeps running.")
        echo("")
        echo(a2a_hint(http_url))
    finally:
        client.close()


def tool_lines(workflow: dict[str, Any]) -> list[str]:
    """One line per MCP tool call of the workflow's steps, read from their reasoning
    traces (``tool <server>/<tool> (arguments sha256 ...): <outcome>``)."""
    lines = []
    for task in workflow["tasks"]:
        for note in task.get("reasoning") or []:
            found = _TOOL_NOTE.match(note)
            if found:
                lines.append(
                    f"  {task['step']} called the MCP tool {found['tool']} "
                    f"(governed as mcp:{found['tool']}): {found['outcome']}"
                )
    return lines


def a2a_hint(http_url: str) -> str:
    """How to reach the stack as an A2A agent: its Agent Card and a message/send."""
    message = {
        "messageId": "demo-1",
        "role": "ROLE_USER",
        "metadata": {"skill": "support.ticket"},
        "parts": [{"data": {"subject": "Charged twice", "body": "Billed twice in May."}}],
    }
    body = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}}
    )
    return (
        f"A2A: other agents read Waypost's skills (one per goal type) from its Agent Card, "
        f"{http_url}/.well-known/agent-card.json, and send a goal with message/send "
        "(JSON-RPC method SendMessage in A2A 1.0; the skill in the metadata, the goal input "
        f"as the data part), with an API token (waypost token create) as bearer:\n"
        f'  curl -s {http_url}/a2a -H "Authorization: Bearer $TOKEN" '
        f"-H 'Content-Type: application/json' -H 'A2A-Version: 1.0' -d '{body}'"
    )


def settled(workflow: dict[str, object]) -> bool:
    """Finished, or nothing can happen until a reviewer decides: a result waits for
    review and no task is in flight (pending steps wait on the reviewed one)."""
    tasks = workflow["tasks"]
    assert isinstance(tasks, list)
    in_flight = any(t["status"] in ("dispatched", "retry_wait") for t in tasks)
    waiting = any(t["status"] == "awaiting_review" for t in tasks)
    return workflow["status"] in ("completed", "failed") or (waiting and not in_flight)
