"""`waypost up --demo`: submit sample goals of the three built-in workflows and print
what each step produced."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

import click

from waypost.cli.client import Client
from waypost.cli.render import progress_line, workflow_text

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
