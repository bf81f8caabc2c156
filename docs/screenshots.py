"""Take the screenshots of docs/reviewing.md against a real stack.

    .venv/bin/python docs/screenshots.py

It starts `waypost up --demo` with the example agents and playbooks of docs/examples on
a free port, in a fresh data directory under /tmp; adds the reviewers rita and rob;
submits a few more goals; drives Chromium through the console as they would; writes
the PNGs to docs/images/; then stops the stack with SIGINT (what Ctrl-C sends) and
removes the data directory. It takes about three minutes, most of it waiting for an
escalation of `text.announce` (SLA 2 minutes) to become overdue.

Chromium: the Debian package (/usr/bin/chromium) or CHROMIUM=/path/to/chromium.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
WAYPOST = [sys.executable, "-m", "waypost"]
ADMIN_PASSWORD = "screenshots-admin-2026"  # noqa: S105 - a throwaway stack
PASSWORD = "correct horse battery"  # noqa: S105 - its reviewers
VIEWPORT = {"width": 1280, "height": 800}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MORE_TICKETS = [
    {
        "subject": "App shows the wrong temperature",
        "body": "Since yesterday the app shows 30 degrees in the living room but the "
        "thermostat says 21. Which one is right?",
        "customer": "Noor",
    },
    {
        "subject": "Refund or credit?",
        "body": "I returned the camera last month. Will I get the money back or a credit "
        "on my account?",
        "customer": "Eli",
    },
    {
        "subject": "Question",
        "body": "Can someone call me back about my account and the order?",
        "customer": "Mo",
    },
]
ANNOUNCE = "Kafka carries every task to the agents, and the agents send results back."


class Stack:
    """`waypost up --demo` in a process of its own, and its output."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "WAYPOST_DATA_DIR": str(data_dir),
            "WAYPOST_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(ROOT / "docs" / "examples"), os.environ.get("PYTHONPATH")) if p
            ),
        }
        command = [
            *WAYPOST,
            "up",
            "--demo",
            "--port",
            str(port),
            "--agents",
            "textkit",
            "--playbooks",
            "docs/examples/playbooks",
        ]
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if self.process.poll() is not None:
                raise RuntimeError("waypost up stopped:\n" + "\n".join(self.lines[-30:]))
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {text!r} from waypost up:\n" + "\n".join(self.lines))
            time.sleep(0.5)

    def waypost(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [*WAYPOST, *args],
            cwd=ROOT,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    def submit(self, goal_type: str, goal_input: dict[str, Any]) -> str:
        return self.waypost("goal", "submit", goal_type, "--input", json.dumps(goal_input))

    def api(self) -> httpx.Client:
        token = (self.data_dir / "api-token").read_text().strip()
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"})

    def escalation_of(self, workflow_id: str, timeout: float = 60) -> dict[str, Any]:
        """The pending escalation of a workflow, once it opened."""
        with self.api() as api:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                page = api.get("/api/v1/escalations", params={"page_size": 200}).json()
                for item in page["items"]:
                    if item["workflow_id"] == workflow_id:
                        found: dict[str, Any] = item
                        return found
                time.sleep(0.5)
        raise TimeoutError(f"workflow {workflow_id} opened no escalation")

    def stop(self) -> None:
        """SIGINT, as Ctrl-C in its terminal; waits until every child stopped."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=120)


@contextmanager
def running_stack() -> Iterator[Stack]:
    from waypost.stack.process import free_port

    # Outside root's home: the embedded PostgreSQL runs as another user when run as root.
    data_dir = Path(tempfile.mkdtemp(prefix="waypost-shots-", dir="/tmp"))
    data_dir.chmod(0o755)
    stack = Stack(data_dir, free_port())
    try:
        stack.wait_for("Demo complete")
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def log_in(browser: Browser, stack: Stack, name: str, password: str = PASSWORD) -> Page:
    context = browser.new_context(base_url=stack.url, viewport=VIEWPORT)  # type: ignore[arg-type]
    page = context.new_page()
    page.on("pageerror", lambda error: print(f"  page error ({name}): {error}"))
    page.goto("/login")
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("form button[type=submit]")
    page.wait_for_url("**/inbox")
    return page


def shot(target: Page | Any, name: str, **options: Any) -> None:
    path = IMAGES / f"{name}.png"
    target.screenshot(path=str(path), animations="disabled", **options)
    print(f"  {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KiB)")


def shot_top(page: Page, name: str, pad: int = 16) -> None:
    """The top of the page, down to the end of its content (no empty viewport below)."""
    page.evaluate("window.scrollTo(0, 0)")
    main = page.locator("#main").bounding_box()
    assert main is not None, "the page has no #main"
    height = min(VIEWPORT["height"], main["y"] + main["height"] + pad)
    shot(page, name, clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height})


def shot_around(page: Page, selectors: list[str], name: str, pad: int = 12) -> None:
    """A screenshot of the area around some elements near the top of the page."""
    page.evaluate("window.scrollTo(0, 0)")
    boxes = [page.locator(selector).first.bounding_box() for selector in selectors]
    assert all(boxes), f"not all of {selectors} are on the page"
    left = max(0, min(b["x"] for b in boxes if b) - pad)
    top = max(0, min(b["y"] for b in boxes if b) - pad)
    right = max(b["x"] + b["width"] for b in boxes if b) + pad
    bottom = max(b["y"] + b["height"] for b in boxes if b) + pad
    clip = {"x": left, "y": top, "width": right - left, "height": bottom - top}
    shot(page, name, clip=clip)


def open_escalation(page: Page, summary: str, step: str) -> None:
    """Open an escalation from the inbox (status any, so decided ones are found too)."""
    page.goto("/inbox?status=any&sort=newest")
    row = page.locator("tr[data-row]", has_text=summary).filter(has_text=step).first
    row.locator("a.open").click()
    page.wait_for_selector("[data-escalation]")


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.5)


def main() -> None:
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    IMAGES.mkdir(parents=True, exist_ok=True)
    print("starting the stack (waypost up --demo) ...")
    with running_stack() as stack, sync_playwright() as driver:
        for name in ("rita", "rob"):
            stack.waypost(
                "user", "add", name, "--role", "reviewer", "--password-stdin", stdin=PASSWORD
            )
        # Opened now: warning after 1 minute, overdue after 2 (its SLA).
        first = stack.submit("text.announce", {"text": ANNOUNCE})
        for ticket in MORE_TICKETS:
            stack.submit("support.ticket", ticket)
        first_opened = stack.escalation_of(first)
        browser = driver.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)

        rita = log_in(browser, stack, "rita")

        print("an edit that breaks the output schema, then a comment and a good edit")
        open_escalation(rita, "Hello", "triage")
        rita.keyboard.press("c")  # claim
        rita.wait_for_selector("text=Claimed: it is yours now.")
        rita.keyboard.press("e")  # to the edit field
        rita.fill("#edit-output", '{\n  "category": "weather",\n  "urgency": "low"\n}')
        rita.click("#edit-form button[type=submit]")
        rita.wait_for_selector("#edit-error")
        shot(rita.locator("section.untrusted"), "edit-error")
        rita.fill("#comment-text", "A check-in about an earlier talk, not a refund request.")
        rita.click("#comments button[type=submit]")
        rita.wait_for_selector("text=A check-in about an earlier talk")
        rita.fill("#edit-output", '{\n  "category": "product_question",\n  "urgency": "low"\n}')
        rita.fill("#edit-reason", "not a refund: a follow-up question")
        rita.click("#edit-form button[type=submit]")
        rita.wait_for_selector("text=Approved with your edited output.")

        print("the escalation page")
        open_escalation(rita, "Lock offline and billing", "triage")
        shot(rita, "escalation")
        shot(rita.locator("section.workflow"), "workflow")
        shot(rita.locator("section.similar"), "similar")

        print("a stale decision (409)")
        rob = log_in(browser, stack, "rob")
        open_escalation(rita, "Where is my order?", "reply")
        open_escalation(rob, "Where is my order?", "reply")
        rob.keyboard.press("a")  # approve
        rob.wait_for_selector("text=Approved: the workflow resumes")
        rita.keyboard.press("a")  # on the page as it was before rob decided
        rita.wait_for_selector(".conflict")
        shot_around(
            rita,
            ["#escalation .crumbs", "#escalation .esc-head", "#escalation .conflict"],
            "conflict",
        )

        print("history of a decided escalation")
        open_escalation(rita, "Hello", "triage")
        shot(rita.locator("#history"), "history")

        print("the live notice of new escalations")
        rita.goto("/inbox")
        # Opened 45 s after the first: in warning when the first is overdue.
        opened = _epoch(first_opened["opened_at"])
        wait_until(lambda: time.time() >= opened + 45, 60, "45 seconds")
        stack.submit("text.announce", {"text": "Reviewers decide what the agents were unsure of."})
        rita.wait_for_selector("#updates a", timeout=60_000)
        shot_around(rita, ["#results .counts", "#updates a"], "new-escalations")

        print("the inbox, once the first text.announce escalation is overdue")
        due = _epoch(first_opened["due_at"])
        wait_until(lambda: time.time() > due + 3, 180, "the first escalation to be overdue")
        rita.goto("/inbox")
        shot_top(rita, "inbox")

        print("bulk approve")
        for row in rita.locator("tr[data-row]", has_text="text.announce").all():
            row.locator('input[name="selected"]').check()
        rita.click("button[value=approve]")
        rita.wait_for_selector("section.outcome")
        shot(rita.locator("section.outcome"), "bulk")

        print("users (admin)")
        admin = log_in(browser, stack, "admin", ADMIN_PASSWORD)
        admin.goto("/admin/users")
        shot_top(admin, "users")
        browser.close()
    print("stack stopped")


def _epoch(timestamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


if __name__ == "__main__":
    main()
