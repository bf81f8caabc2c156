"""`waypost up --demo`: submit sample support tickets and print what each step produced."""

from __future__ import annotations

import threading
from collections.abc import Callable

import click

from waypost.cli.client import Client
from waypost.cli.render import progress_line, workflow_text

SAMPLE_TICKETS = [
    {
        "subject": "Charged twice for my subscription",
        "body": "Hi, my card was charged twice for the May invoice of my Pro plan. "
        "Please refund the duplicate payment.",
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
]


def run_demo(
    http_url: str, token: str, echo: Callable[[str], None], stop_requested: threading.Event
) -> None:
    """Submit the sample tickets; print each workflow once it finished or waits for a
    reviewer; say where the waiting ones can be decided."""
    client = Client(http_url, token=token)
    waiting = 0
    try:
        echo(click.style(f"Demo: submitting {len(SAMPLE_TICKETS)} support tickets", bold=True))
        ids = [client.submit_goal("support.ticket", ticket) for ticket in SAMPLE_TICKETS]
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
            echo("")
            waiting += sum(t["status"] == "awaiting_review" for t in workflow["tasks"])
        summary = "Demo complete."
        if waiting:
            summary += f" {waiting} result(s) wait for a reviewer: {http_url}/inbox"
        echo(click.style(summary, bold=True, fg="green") + " The stack keeps running.")
    finally:
        client.close()


def settled(workflow: dict[str, object]) -> bool:
    """Finished, or nothing can happen until a reviewer decides: a result waits for
    review and no task is in flight (pending steps wait on the reviewed one)."""
    tasks = workflow["tasks"]
    assert isinstance(tasks, list)
    in_flight = any(t["status"] in ("dispatched", "retry_wait") for t in tasks)
    waiting = any(t["status"] == "awaiting_review" for t in tasks)
    return workflow["status"] in ("completed", "failed") or (waiting and not in_flight)
