"""The dead-letter workbench end to end in a real browser: `waypost serve` and the
dead-letter indexer as real processes on the real broker and PostgreSQL, Chromium driven
by Playwright. A goal whose input broke its playbook's schema lies on the goals'
dead-letter topic; an analyst logs in, filters the list down to it, opens it, fixes the
payload, dry-runs the fix (diff, schema check passed), replays it and follows the replay
to its end; the fixed record is then on the goals topic, marked as a replay. Screenshots
go to test-artifacts/."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.sync_api import Browser, expect

from orchestrator.dead_letters.records import REPLAY_OF
from orchestrator.errors import InvalidGoalInput
from orchestrator.store import dead_letters as index
from orchestrator.store.dead_letters import DeadLetterFilter
from review_ui.auth import store as auth_store
from review_ui.auth.roles import Role
from tests.e2e.browser import (
    ARTIFACTS,
    GOAL_TYPE,
    PASSWORD,
    Session,
    assert_png,
    browser_session,
    chromium,
    log_in,
    module_platform,
    skip_without_chromium,
    start_console,
)
from tests.e2e.conftest import Platform
from tests.waiting import wait_for
from waypost.bus.dead_letters import Failure, dead_letter
from waypost.bus.records import ReceivedRecord
from waypost.events import Event, GoalSubmitted, default_codec, utcnow

skip_without_chromium()
pytestmark = pytest.mark.e2e
ANALYST = "ann"


@dataclass
class Workbench:
    """The module's running processes, console URL and browser."""

    platform: Platform
    base: str
    browser: Browser


@pytest.fixture(scope="module")
def workbench(
    broker: Any, postgres: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Workbench]:
    """`waypost serve` and `waypost indexer run` (no orchestrator: nothing consumes the
    goals topic, so what a replay sends stays there to be read), and an analyst."""
    with module_platform(broker, postgres, tmp_path_factory.mktemp("dlq")) as platform:
        base = start_console(platform, workers=False)
        platform.start("indexer", "indexer", "run")
        with platform.engine.begin() as conn:
            auth_store.add_user(conn, name=ANALYST, password=PASSWORD, role=Role.ANALYST)
        with chromium() as browser:
            yield Workbench(platform, base, browser)


@pytest.fixture
def session(
    workbench: Workbench, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Session]:
    """A fresh browser context on the console, watched."""
    with browser_session(
        workbench.browser,
        workbench.base,
        workbench.platform,
        request,
        tmp_path,
        login=None,
    ) as opened:
        yield opened


def dead_letter_a_goal(platform: Platform, goal_input: dict[str, Any]) -> str:
    """Publish the dead letter of a goal the orchestrator refused (its input breaks the
    playbook's schema), as its consumer loop would; returns the goal's id."""
    event = Event(GoalSubmitted(type=GOAL_TYPE, input=goal_input), source="test")
    encoded = default_codec().encode(event)
    consumed = ReceivedRecord(
        platform.topics.goals, 0, 7, encoded.key, encoded.value, encoded.headers
    )
    error = InvalidGoalInput(GOAL_TYPE, [("text", "'text' is a required property")])
    now = utcnow()
    failure = Failure(error, 1, now, now)
    platform.publish([dead_letter(consumed, failure, group=platform.topics.orchestrator_group)])
    return event.id


def indexed(platform: Platform, event_id: str) -> int:
    """The id the indexer gave the dead letter of event ``event_id``, once it has one."""

    def probe() -> int | None:
        with platform.engine.connect() as conn:
            found = index.search(
                conn,
                filters=DeadLetterFilter(status=None, text=event_id),
                namespace=platform.namespace,
            )
        return found.rows[0].id if found.rows else None

    return wait_for(probe, timeout=60, interval=0.2, what=f"the dead letter of {event_id}")


@pytest.mark.slow  # several seconds of broker or browser time: make test-slow
def test_an_analyst_fixes_a_dead_letter_and_replays_it(
    workbench: Workbench, session: Session
) -> None:
    platform, page, watch = workbench.platform, session.page, session.watch
    marker = uuid.uuid4().hex[:8]
    broken = {"txet": f"typo {marker}"}
    goal_id = dead_letter_a_goal(platform, broken)
    letter_id = indexed(platform, goal_id)
    watch.known_paths |= {"/dlq", f"/dlq/{letter_id}", "/dlq/replays"}
    log_in(page, ANALYST)

    # The list, filtered down to this dead letter by its error class and its text.
    page.click("nav a[href='/dlq']")
    expect(page).to_have_url(re.compile(r"/dlq$"))
    expect(page.locator("h1")).to_have_text("Dead letters")
    expect(page.locator(".histogram rect.bar")).to_have_count(1)
    page.fill("input[name=error]", "InvalidGoalInput")
    page.fill("input[name=text]", goal_id)
    page.press("input[name=text]", "Enter")
    expect(page).to_have_url(re.compile(rf"/dlq\?.*text={goal_id}"))
    expect(page.locator("a.open")).to_have_text([f"#{letter_id}"])
    expect(page.locator(".facet li.current", has_text="InvalidGoalInput")).to_have_count(1)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dlq-list.png"), full_page=True, caret="initial")

    # Open it: why it failed, and the payload to fix.
    page.click(f"a.open[href='/dlq/{letter_id}']")
    expect(page).to_have_url(re.compile(rf"/dlq/{letter_id}$"))
    expect(page.locator("h1")).to_have_text(f"Dead letter #{letter_id}")
    expect(page.locator(".error-message")).to_contain_text("'text' is a required property")
    edit = page.locator("#dlq-edit")
    expect(edit).to_have_value(json.dumps({"type": GOAL_TYPE, "input": broken}, indent=2))

    # Fix it and dry-run the fix: the diff, and the schema check passed.
    fixed = {"type": GOAL_TYPE, "input": {"text": f"fixed {marker}"}}
    edit.fill(json.dumps(fixed, indent=2))
    watch.allow_post(f"/dlq/{letter_id}/replay")
    page.click("#dry-run-button")
    expect(page.locator("#dry-run .dlq-verdict-sent")).to_contain_text("Valid")
    expect(page.locator("#dry-run .diff-remove")).to_contain_text([f'"txet": "typo {marker}"'])
    expect(page.locator("#dry-run .diff-add")).to_contain_text([f'"text": "fixed {marker}"'])
    expect(edit).to_have_value(json.dumps(fixed, indent=2))  # the edit is kept
    shot = ARTIFACTS / "dlq-dry-run.png"
    page.screenshot(path=str(shot), full_page=True, caret="initial")
    assert_png(shot)

    # Replay it and follow the replay until it is done.
    request_id = page.locator("input[name=request_id]").get_attribute("value")
    assert request_id
    watch.known_paths.add(f"/dlq/replays/{request_id}")
    page.click("#replay-button")
    progress = page.locator("#progress")
    expect(progress.locator(".status")).to_have_text("done", timeout=30_000)
    expect(progress).to_contain_text("1 sent")

    # The dead letter is replayed, with the replay in its history and in the log.
    page.reload()
    expect(page.locator(".esc-head .status")).to_have_text("replayed")
    history = page.locator(".dlq-history tbody tr")
    expect(history).to_have_count(1)
    expect(history).to_contain_text(request_id)
    expect(history.locator(".dlq-verdict")).to_have_text("sent")
    page.click(".crumbs a[href='/dlq/replays']")
    expect(page).to_have_url(re.compile(r"/dlq/replays$"))
    row = page.locator("tbody tr", has_text=request_id)
    expect(row).to_contain_text(ANALYST)
    expect(row).to_contain_text("1 in all: 1 sent")
    expect(row.locator(".status")).to_have_text("done")
    page.screenshot(path=str(ARTIFACTS / "dlq-replay-history.png"), full_page=True, caret="initial")
    watch.assert_quiet()

    # The fixed goal is back on the goals topic, marked as the replay of the dead letter.
    (replayed,) = [
        record
        for record in platform.read_topic(platform.topics.goals, expect=1)
        if record.header(REPLAY_OF) == str(letter_id).encode()
    ]
    assert orjson.loads(replayed.value or b"") == fixed
    assert replayed.key == goal_id.encode()
    assert replayed.header("ce_id") == goal_id.encode()
