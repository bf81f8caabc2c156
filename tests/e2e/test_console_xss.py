"""Agent output is untrusted: a corpus of XSS and htmx-attribute payloads, returned by an
agent as its output (values and keys), its reasoning notes, its reason to ask for a
human, its error messages and the goal's input, stays inert text in the real browser.

`waypost serve` runs as a real process on the real PostgreSQL; escalations are opened
the way the orchestrator opens them (its Applier: plan the goal, a failed attempt, a
retry, then the agent's result). Chromium opens the inbox and every escalation (through
htmx and as a whole page) and submits the edit form with each payload. For every payload:
no dialog, no request other than the page's own, no CSP violation, no uncaught error, no
element or attribute the payload could have created, the session still valid, and each
place that shows the payload shows exactly its text."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine

from orchestrator.playbooks.model import Playbook
from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.publishing.records import Outgoing
from orchestrator.service.applier import Applier
from orchestrator.store import audit
from orchestrator.store import escalations as escalation_rows
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.workflows import NewWorkflow
from orchestrator.workflow.breaker import BreakerPolicy
from orchestrator.workflow.messages import RetryDue, TaskAttemptFailed, TaskSucceeded
from orchestrator.workflow.state import EscalationState, TaskError
from review_ui.console.render import pretty_json
from tests.e2e.browser import (
    ARTIFACTS,
    E2E_PLAYBOOKS,
    GOAL_TYPE,
    Session,
    Watch,
    add_reviewer,
    assert_png,
    assert_still_logged_in,
    browser_session,
    chromium,
    module_platform,
    skip_without_chromium,
    start_console,
)
from tests.e2e.conftest import PLAYBOOKS, Platform
from waypost.events import default_codec, new_id, utcnow
from waypost.topics import Topics

skip_without_chromium()
pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # browser flows of 5-10 s each
REVIEWER = "rita"
INBOX = "/inbox?page_size=200"

PAYLOADS: tuple[str, ...] = (
    # script and event handlers
    "<script>alert(1)</script>",
    '<script src="/static/htmx.min.js"></script><script src="/static/console.js"></script>',
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<details open ontoggle=alert(1)><summary>x</summary></details>",
    "<video><source onerror=alert(1)></video><audio src=x onerror=alert(1)>",
    "<body onload=alert(1)><html onmouseover=alert(1)>",
    "<script>unclosed",
    # URLs that run code, frames, objects
    '<a href="javascript:alert(1)">click me</a>',
    '<a href="jav&#x09;ascript:alert(1)">tabbed javascript: URL</a>',
    "javascript:alert(1)",
    '<iframe srcdoc="<script>parent.alert(1)</script>"></iframe>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<object data="javascript:alert(1)"></object><embed src="javascript:alert(1)">',
    # breaking out of attributes and of the elements the text is printed in
    '"><script>alert(1)</script>',
    "' onmouseover='alert(1)' x='",
    '" autofocus onfocus="alert(1)" x="',
    "` onmouseover=alert(1) `",
    "</pre><script>alert(1)</script><pre>",
    "</textarea><script>alert(1)</script><textarea>",
    "</TEXTAREA ><img src=x onerror=alert(1)>",
    "</title><script>alert(1)</script>",
    "</li></ol><script>alert(1)</script><ol><li>",
    "--><script>alert(1)</script><!--",
    "<![CDATA[<script>alert(1)</script>]]>",
    '<img src="',
    "<plaintext><xmp>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<template><script>alert(1)</script></template>",
    # template syntax (Jinja, JS template literals, others)
    "{{7*7}} {{ config }} {{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% for x in range(3) %}{{ x }}{% endfor %}{# hidden #}{% raw %}",
    "${7*7} #{7*7} <%= 7*7 %> {{constructor.constructor('alert(1)')()}}",
    # htmx attributes: requests on load, inline handlers, out-of-band swaps
    '<div hx-get="/logout" hx-trigger="load">logout on load</div>',
    '<form hx-post="/logout" hx-trigger="load"><button>x</button></form>',
    '<div hx-on:load="alert(1)">hx-on:load</div>',
    '<div hx-get="/inbox" hx-trigger="load" hx-on::after-request="alert(1)">after</div>',
    '<div data-hx-post="/logout" data-hx-trigger="load">data-hx</div>',
    '<div hx-get="/inbox" hx-trigger="load" hx-vals=\'js:{x: alert(1)}\'>vals</div>',
    '<div hx-post="/inbox/bulk" hx-trigger="load" hx-headers=\'{"X-CSRF-Token": "x"}\''
    ' hx-vals=\'{"op": "approve"}\'>bulk</div>',
    '<div id="main" hx-swap-oob="true">replaced</div><p hx-swap-oob="innerHTML:#flash">o</p>',
    '<div hx-get="https://evil.invalid/" hx-trigger="load"></div>',
    '<a hx-get="/logout" hx-trigger="load" href="/logout">log out</a>',
    # navigation, base URL, forms
    '<meta http-equiv="refresh" content="0;url=/logout">',
    '<meta http-equiv="refresh" content="0;url=https://evil.invalid/">',
    '<base href="https://evil.invalid/">',
    '<form action="/logout" method="post"><button autofocus>Continue</button></form>',
    '<form id="f" action="/logout" method="post"></form>'
    '<input form="f" autofocus onfocus="this.form.submit()">',
    '<button form="approve-form" formaction="/logout" formmethod="post">Approve</button>',
    '<input name="op" value="approve" form="bulk">'
    '<input type="checkbox" name="selected" value="x:1:y" form="bulk" checked>',
    # CSS
    '<style>@import url("https://evil.invalid/x.css"); body { background: url(/logout) }</style>',
    '<div style="background:url(/logout)">styled</div>',
    '<link rel="stylesheet" href="https://evil.invalid/x.css">',
    # already escaped text must stay as typed (no double decoding)
    "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#60;b&#62; &quot;",
    # unicode: RTL override, full-width and zero-width look-alikes, separators, BOM
    "\u202e<script>alert(1)</script>\u202c gnp.exe",
    "\uff1cscript\uff1ealert(1)\uff1c/script\uff1e \uff4a\uff41\uff56\uff41script:"
    " \u200b<\u200bscript>",
    "\u2028\u2029<img src=x onerror=alert(1)>\ufeff \U0001f642 \u00e9 \u4e2d\u6587"
    " \u0639\u0631\u0628\u064a",
    "line one\n</li><script>alert(1)</script>\tend",
    # very long
    "<img src=x onerror=alert(1)>" * 2000,
)


# --- the escalations ----------------------------------------------------------------------


@dataclass
class Opened:
    """An escalation of the corpus and the payload in it."""

    escalation_id: str
    workflow_id: str
    payload: str


def agent_output(payload: str) -> dict[str, Any]:
    """What the agent returns: the payload as a value, a key and deep inside."""
    return {"text": payload, "attempt": 2, payload: {"nested": [payload, {payload: payload}]}}


def open_escalation(
    engine: Engine,
    applier: Applier,
    payload: str,
    *,
    subject: str | None = None,
    output: Mapping[str, Any] | None = None,
    reasoning: Sequence[str] | None = None,
) -> Opened:
    """An escalation opened as the orchestrator opens one: the goal is planned, the first
    attempt fails (the payload in the error), the retry returns the agent's output, its
    reasoning and its reason to ask for a human (the payload in each)."""
    at = utcnow() - timedelta(minutes=5)
    workflow_id = new_id()
    goal_input = {
        "subject": payload if subject is None else subject,
        "text": payload,
        payload: payload,
        "nested": {payload: [payload, {"deep": payload}]},
    }
    with engine.begin() as conn:
        applier.plan_new(conn, goals=[NewWorkflow(workflow_id, GOAL_TYPE, goal_input, at)], now=at)
    with engine.begin() as conn:
        states = workflow_rows.lock(conn, ids=[workflow_id])
        task = states[workflow_id].tasks["drafted"]
        steps = [
            (TaskAttemptFailed(task.id, 1, TaskError(f"AgentError{payload}", payload)), at),
            (RetryDue(task.id), at + timedelta(seconds=1)),
            (
                TaskSucceeded(
                    task.id,
                    2,
                    dict(output if output is not None else agent_output(payload)),
                    confidence=0.42,
                    reasoning=tuple(reasoning or (payload, f"and once more: {payload}")),
                    escalate=payload,
                ),
                at + timedelta(seconds=2),
            ),
        ]
        for event, now in steps:
            applied = applier.apply(conn, states=states, inputs=[(workflow_id, event)], now=now)
            assert applied.applied == 1, applied.notes
        (escalation_id,) = states[workflow_id].escalations
    return Opened(escalation_id, workflow_id, payload)


def joined(limit: int = 3900) -> str:
    """As many payloads as fit in a reviewer's text field (space-separated)."""
    text = ""
    for payload in PAYLOADS:
        if "\n" not in payload and len(text) + len(payload) + 1 <= limit:
            text = f"{text} {payload}" if text else payload
    return text


@dataclass
class Corpus:
    """The module's console, browser and escalations."""

    platform: Platform
    base: str
    browser: Browser
    applier: Applier
    playbook: Playbook
    opened: list[Opened] = field(default_factory=list)
    seeds: list[Opened] = field(default_factory=list)

    def escalation(self, escalation_id: str) -> EscalationState:
        """The escalation as stored now."""
        with self.platform.engine.connect() as conn:
            found = escalation_rows.get(conn, escalation_id=escalation_id)
        assert found is not None
        return found[1]


@pytest.fixture(scope="module")
def corpus(
    broker: Any, postgres: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Corpus]:
    """`waypost serve` on a schema holding an escalation per payload, one with every
    payload at once, and two decided ones (a rejection and an edit whose reason and
    output carry payloads) that the similar-decisions panel shows."""
    with module_platform(broker, postgres, tmp_path_factory.mktemp("xss")) as platform:
        base = start_console(platform, workers=False)
        add_reviewer(platform, REVIEWER)
        registry = PlaybookRegistry.load([PLAYBOOKS, E2E_PLAYBOOKS])
        applier = Applier(
            playbooks=registry,
            outgoing=Outgoing(Topics(platform.namespace), default_codec()),
            random=lambda: 0.5,
            # Every escalation starts with a failed attempt: no circuit may open on them.
            breakers=BreakerPolicy(failure_threshold=0),
        )
        playbook = registry.require(GOAL_TYPE)
        engine = platform.engine
        opened = [open_escalation(engine, applier, payload) for payload in PAYLOADS]
        every = {payload: payload for payload in PAYLOADS}
        opened.append(
            open_escalation(
                engine,
                applier,
                joined(),
                subject="Every payload at once",
                output={"text": "every payload", "attempt": 2, **every, "all": [every]},
                reasoning=PAYLOADS,
            )
        )
        seeds = [
            open_escalation(engine, applier, payload, subject=f"Seed {payload}")
            for payload in ('"><script>alert(1)</script>', "</title><script>alert(1)</script>")
        ]
        decide_over_api(platform, base, seeds[0], "reject", reason=joined())
        decide_over_api(
            platform,
            base,
            seeds[1],
            "edit",
            output={"text": joined(), "attempt": 1, **every},
            reason="<b>edited</b> <img src=x onerror=alert(1)>",
        )
        with chromium() as browser:
            yield Corpus(platform, base, browser, applier, playbook, opened, seeds)


def decide_over_api(
    platform: Platform, base: str, opened: Opened, action: str, **fields: Any
) -> None:
    """A decision through the JSON API (as another reviewer's tool would make it)."""
    headers = {"Authorization": f"Bearer {platform.api_token()}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as api:
        shown = api.get(f"/api/v1/escalations/{opened.escalation_id}").json()
        response = api.post(
            f"/api/v1/escalations/{opened.escalation_id}/decision",
            json={
                "action": action,
                "version": shown["version"],
                "digest": shown["digest"],
                **fields,
            },
        )
        assert response.status_code == 202, response.text


# --- the browser --------------------------------------------------------------------------


@pytest.fixture
def session(corpus: Corpus, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    """A fresh browser context, logged in through the form, watched."""
    with browser_session(
        corpus.browser,
        corpus.base,
        corpus.platform,
        request,
        tmp_path,
        login=REVIEWER,
    ) as opened:
        yield opened


# Everything on a page that markup could have created: elements that run, load or
# navigate, event handlers, htmx attributes the templates never use, javascript: URLs.
# The templates' own elements are known exactly (two scripts from /static, three <meta>
# in the head, one logout form in the header, the step graph's <svg>).
SCAN = r"""() => {
  const problems = [];
  const say = (what, el) => problems.push(what + ": " + el.outerHTML.slice(0, 160));
  const forbidden = new Set(["iframe", "frame", "frameset", "object", "embed", "applet",
    "base", "style", "img", "image", "video", "audio", "source", "track", "picture",
    "canvas", "portal", "noscript", "template", "math", "marquee", "isindex", "keygen",
    "param", "dialog", "slot", "xmp", "plaintext", "listing", "noembed", "noframes",
    "font", "center", "blink"]);
  const forms = new RegExp("^/(inbox|inbox/bulk([?].*)?|logout|admin/users(/disable)?|" +
    "escalations/[^/?]+/(decision|claim|unclaim|assign|comments)([?]from=[^?#]*)?)$");
  const hxTargets = new RegExp("^/(inbox|inbox/updates|inbox/bulk|admin/users|" +
    "workflows|agents|quality|governance|" +
    "escalations/[^/?#]+)([/?].*)?$");
  const hxNames = new Set(["hx-get", "hx-post", "hx-target", "hx-swap", "hx-push-url",
    "hx-trigger", "hx-disable", "hx-headers"]);
  const triggers = new Set(["every 10s", "change, submit"]);
  const dataNames = new Set(["data-inbox", "data-row", "data-id", "data-escalation",
    "data-moved-on", "data-help-toggle", "data-select-all"]);
  const scripts = /^\/static\/(htmx\.min|console)\.js\?v=[0-9a-f]{10}$/;
  const urlNames = new Set(["href", "src", "action", "formaction", "xlink:href", "data",
    "poster", "background", "srcset", "ping"]);
  for (const el of document.querySelectorAll("*")) {
    const tag = el.localName;
    if (forbidden.has(tag)) say("<" + tag + ">", el);
    if (tag === "script" && !scripts.test(el.getAttribute("src") || "")) say("script", el);
    if (tag === "meta" && el.parentElement !== document.head) say("meta outside head", el);
    if (tag === "link" && !["stylesheet", "icon"].includes(el.getAttribute("rel")))
      say("link", el);
    if (tag === "svg" && !el.classList.contains("dag")) say("svg", el);
    if (tag === "form") {
      const action = el.getAttribute("action") || "";
      if (!forms.test(action)) say("form action", el);
      if (action === "/logout" && !el.closest("header.topbar")) say("logout form", el);
    }
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      const value = attr.value;
      if (name.startsWith("on")) say("handler " + name, el);
      if (["style", "srcdoc", "formaction", "formmethod", "form", "contenteditable",
           "http-equiv", "ping"].includes(name)
          // The output's field sits beside the goal input, sent with the edit form.
          && !(name === "form" && el.id === "edit-output" && value === "edit-form"))
        say("attribute " + name, el);
      if (name === "autofocus" && el.id !== "name") say("autofocus", el);
      if (name.startsWith("data-") && !dataNames.has(name)) say("attribute " + name, el);
      if (name.startsWith("hx-") && !hxNames.has(name)) say("attribute " + name, el);
      if (name === "hx-headers" && el !== document.body) say("hx-headers", el);
      if (name === "hx-trigger" && !triggers.has(value)) say("hx-trigger", el);
      if ((name === "hx-get" || name === "hx-post") && !hxTargets.test(value))
        say(name, el);
      const bare = value.replace(/[\s\u0000-\u001f]/g, "");
      if (urlNames.has(name) && /^(javascript|vbscript|data):/i.test(bare)
          && !(tag === "link" && value === "data:,")) say("URL " + name, el);
    }
  }
  if (document.querySelectorAll("script").length !== 2) problems.push("scripts: " +
    document.querySelectorAll("script").length);
  if (document.querySelectorAll("form[action='/logout']").length !== 1)
    problems.push("logout forms: " + document.querySelectorAll("form[action='/logout']").length);
  // Where untrusted text is printed: text only, nothing but the templates' own markup.
  const textOnly = "h1, pre.json, ol.reasoning > li, td.summary a.open, span.reason, " +
    "div.step-summary, p.step-summary, " +
    "p.comment-text, .why p > *, .similar tbody td:nth-child(1) > a, " +
    ".similar tbody td:nth-child(3), .similar tbody td:nth-child(4), " +
    ".decision > p:nth-of-type(2), span.kv > span, ol.attempts time";
  for (const el of document.querySelectorAll(textOnly)) {
    if (el.children.length) say("markup inside text", el);
  }
  const intruders = "ol.attempts > li > :not(time), span.kv > :not(span.k), " +
    ".history tbody td:last-child > :not(span.kv)";
  for (const el of document.querySelectorAll(intruders)) say("markup inside text", el);
  if (document.querySelector("h1") === null) problems.push("no <h1>: the page broke");
  return problems;
}"""

# What each place that shows untrusted text shows.
DETAIL = r"""() => {
  const texts = (selector) => Array.from(document.querySelectorAll(selector), (e) => e.textContent);
  const edit = document.getElementById("edit-output");
  return {
    title: document.title,
    h1: texts(".esc-head h1"),
    why: texts("section.why p:first-of-type"),
    goal: texts(".esc-main .untrusted .goal-input pre.json"),
    output: texts(".esc-main .untrusted .proposal pre.json"),
    reasoning: texts(".untrusted ol.reasoning > li"),
    edit: edit === null ? null : edit.value,
    inputs: texts(".inputs pre.json"),
    attempts: texts("ol.attempts > li"),
    similar: Array.from(document.querySelectorAll(".similar tbody tr"),
      (row) => [row.cells[0].textContent, row.cells[3].textContent]),
    decision_reason: texts(".decision > p:nth-of-type(2)"),
    decision_output: texts(".decision .untrusted pre.json"),
    comments: texts("p.comment-text"),
    history: texts(".history tbody td:last-child"),
  };
}"""

INBOX_ROWS = r"""() => Array.from(document.querySelectorAll("tr[data-row]"), (row) => {
  const box = row.querySelector("input[name=selected]");
  const open = row.querySelector("td.summary a.open");
  const reason = row.querySelector("span.reason");
  return {
    id: decodeURIComponent(open.getAttribute("href").split("?")[0].split("/").pop()),
    label: box === null ? null : box.getAttribute("aria-label"),
    summary: open.textContent,
    reason: reason.textContent,
    title: reason.getAttribute("title"),
  };
})"""


def expected_detail(corpus: Corpus, escalation_id: str) -> dict[str, Any]:
    """What the detail page must show, as text, from the stored escalation."""
    with corpus.platform.engine.connect() as conn:
        found = escalation_rows.get(conn, escalation_id=escalation_id)
        assert found is not None
        workflow, escalation = found
        similar = escalation_rows.similar(conn, escalation_id=escalation_id)
        history = audit.for_escalation(conn, escalation_id=escalation_id)
    content = escalation.content
    summary = escalation_rows.summary(content)
    decision = escalation.decision
    pending = escalation.status.value == "pending"
    attempts = workflow.tasks["drafted"].attempts
    return {
        "title": f"{summary} · Waypost",
        "h1": [summary],
        "why": [f"{escalation.kind.replace('_', ' ')} {escalation.reason}"],
        "goal": [pretty_json(content["goal_input"])],
        # The output's JSON is shown once: in the edit field while the reviewer may decide.
        "output": [] if pending else [pretty_json(content["output"])],
        "reasoning": list(content["reasoning"]),
        "edit": pretty_json(content["output"]) if pending else None,
        "inputs": [pretty_json(content["task_input"])],
        "attempt_errors": [
            f": {a.error.type}: {a.error.message}" if a.error else None for a in attempts
        ],
        "similar": [[s.summary, s.reason or "—"] for s in similar],
        "decision_reason": [f"Reason: {decision.reason}"] if decision and decision.reason else [],
        "decision_output": [pretty_json(decision.output)]
        if decision and decision.output is not None
        else [],
        "comments": [e.detail.get("text", "") for e in history if e.action == "comment"],
        "history": ["".join(f"{k} {v}" for k, v in e.detail.items()) for e in history],
    }


def detail_problems(page: Page, corpus: Corpus, escalation_id: str) -> list[str]:
    """How the page differs from the escalation shown as text (and what markup got in)."""
    shown = page.evaluate(DETAIL)
    wanted = expected_detail(corpus, escalation_id)
    problems = list(page.evaluate(SCAN))
    errors = wanted.pop("attempt_errors")
    attempts = shown.pop("attempts")
    if len(attempts) != len(errors) or not all(
        error is None or shown_text.endswith(error)
        for shown_text, error in zip(attempts, errors, strict=False)
    ):
        problems.append(f"attempts: shown {_short(attempts)}, errors {_short(errors)}")
    for key, value in wanted.items():
        if shown[key] != value:
            problems.append(f"{key}: shown {_short(shown[key])}, stored {_short(value)}")
    return problems


def inbox_problems(page: Page, corpus: Corpus, ids: Sequence[str]) -> list[str]:
    """How the inbox rows differ from the escalations shown as text."""
    problems = list(page.evaluate(SCAN))
    shown = {row["id"]: row for row in page.evaluate(INBOX_ROWS) if row["id"]}
    with corpus.platform.engine.connect() as conn:
        rows = escalation_rows.rows_by_id(conn, ids=list(ids))
    for escalation_id in ids:
        row, stored = shown.get(escalation_id), rows[escalation_id]
        wanted = {
            "id": escalation_id,
            # Only a pending escalation has a checkbox to select it by.
            "label": f"Select {stored.summary}" if stored.status == "pending" else None,
            "summary": stored.summary,
            "reason": stored.reason,
            "title": stored.reason,
        }
        if row != wanted:
            problems.append(f"inbox row {escalation_id}: {_short(row)} != {_short(wanted)}")
    return problems


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 400 else text[:400] + "…"


def label(opened: Opened) -> str:
    """A payload as a failure message names it."""
    return f"payload {PAYLOADS.index(opened.payload) if opened.payload in PAYLOADS else 'all'}" + (
        f" {_short(opened.payload[:80])}"
    )


def quiet(watch: Watch) -> list[str]:
    """What the watch saw since the last call (and forget it)."""
    problems = [f"dialog {d}" for d in watch.dialogs]
    problems += [f"CSP violation {c}" for c in watch.csp]
    problems += [f"console {c}" for c in watch.unexpected_console()]
    problems += [f"uncaught {e}" for e in watch.page_errors]
    problems += [f"request {r}" for r in watch.unexpected_requests()]
    for seen in (watch.dialogs, watch.csp, watch.console, watch.page_errors, watch.requests):
        seen.clear()
    return problems


# --- the tests ----------------------------------------------------------------------------


def test_the_watch_sees_markup_that_runs(corpus: Corpus, session: Session) -> None:
    """The detectors work: markup put into the page on purpose (as a template bug
    would) is seen by the DOM scan, the CSP report, the dialog and the request log."""
    page, watch = session.page, session.watch
    opened = corpus.opened[0]
    watch.known_paths.add(f"/escalations/{opened.escalation_id}")
    page.goto(f"/escalations/{opened.escalation_id}")
    assert detail_problems(page, corpus, opened.escalation_id) == []
    assert quiet(watch) == []

    page.evaluate(
        """() => document.querySelector("pre.json").insertAdjacentHTML("beforeend",
        '<img src="/canary.png" onerror="alert(1)"><div hx-get="/logout" hx-trigger="load">')"""
    )
    page.evaluate("() => window.alert('canary')")  # what an executed payload would do
    page.wait_for_function("() => document.querySelector('img[src=\"/canary.png\"]').complete")
    expect(page.locator("h1")).to_be_visible()
    found = page.evaluate(SCAN)
    assert any(p.startswith("<img>") for p in found), found
    assert any(p.startswith("handler onerror") for p in found), found
    assert any(p.startswith("hx-get") for p in found), found
    assert any(p.startswith("markup inside text") for p in found), found
    seen = quiet(watch)
    assert "dialog alert: canary" in seen, seen
    assert any(p.startswith("CSP violation script-src") for p in seen), seen
    assert any("/canary.png" in p and p.startswith("request GET") for p in seen), seen


@pytest.mark.slow
def test_payloads_from_an_agent_are_inert_text_in_the_inbox_and_on_each_escalation(
    corpus: Corpus, session: Session
) -> None:
    page, watch = session.page, session.watch
    watch.allow_status(422)  # the refused edits
    failures: list[str] = []
    ids = [o.escalation_id for o in corpus.opened]

    page.goto(INBOX)
    failures += [f"inbox: {p}" for p in inbox_problems(page, corpus, ids) + quiet(watch)]

    for opened in corpus.opened:
        path = f"/escalations/{opened.escalation_id}"
        watch.known_paths.add(path)
        watch.allow_post(f"{path}/decision")
        page.goto(INBOX)
        # Through htmx: the inbox's link swaps the escalation into the page.
        page.locator(f'tr[data-row]:has(input[value^="{opened.escalation_id}:"]) a.open').click()
        expect(page.locator("#edit-output")).to_be_attached()
        problems = detail_problems(page, corpus, opened.escalation_id) + quiet(watch)
        failures += [f"{label(opened)} (htmx): {p}" for p in problems]
        # As a whole page.
        page.reload()
        problems = detail_problems(page, corpus, opened.escalation_id) + quiet(watch)
        failures += [f"{label(opened)} (page): {p}" for p in problems]
        # The edit form, refused (the payload breaks the schema): the reviewer's JSON
        # comes back in the textarea and the schema errors quote the payload.
        edited = {**corpus.escalation(opened.escalation_id).content["output"]}
        edited["attempt"] = opened.payload
        typed = json.dumps(edited, indent=2, ensure_ascii=False)
        page.locator("#edit-output").fill(typed)
        page.locator("#edit-form button[type=submit]").click()
        expect(page.locator("#edit-error")).to_be_visible()
        problems = list(page.evaluate(SCAN)) + quiet(watch)
        if page.locator("#edit-output").input_value() != typed:
            problems.append("the edit textarea lost the reviewer's JSON")
        errors = corpus.playbook.step("drafted").output_problems(edited)
        shown = page.locator("#edit-error li").all_text_contents()
        if shown != [f"{where}: {message}" for where, message in errors]:
            problems.append(f"schema errors shown {_short(shown)}, expected {_short(errors)}")
        failures += [f"{label(opened)} (refused edit): {p}" for p in problems]

    page.goto("/inbox?status=any&page_size=200")
    all_ids = ids + [s.escalation_id for s in corpus.seeds]
    failures += [f"inbox (any): {p}" for p in inbox_problems(page, corpus, all_ids) + quiet(watch)]
    for seed in corpus.seeds:  # decided: the reviewer's reason and output, and no form
        watch.known_paths.add(f"/escalations/{seed.escalation_id}")
        page.goto(f"/escalations/{seed.escalation_id}")
        problems = detail_problems(page, corpus, seed.escalation_id) + quiet(watch)
        failures += [f"decided {label(seed)}: {p}" for p in problems]

    assert failures == [], "\n".join(failures)
    for opened in corpus.opened:  # nothing was decided by a payload
        assert corpus.escalation(opened.escalation_id).version == 1
    assert_still_logged_in(session.context, corpus.base, REVIEWER)


def test_a_reviewers_text_with_payloads_is_inert_too(corpus: Corpus, session: Session) -> None:
    """What reviewers type (a comment, an edited output, a reason to reject) is shown to
    other reviewers on the escalation, in its history and in the similar-decisions panel
    of others: it is text there too."""
    page, watch = session.page, session.watch
    engine, applier = corpus.platform.engine, corpus.applier
    text = joined()
    commented = open_escalation(engine, applier, "<b>comment on me</b>", subject="Comment")
    edited = open_escalation(engine, applier, "<i>edit me</i>", subject="Edit <i>me</i>")
    rejected = open_escalation(engine, applier, "<u>reject me</u>", subject="Reject <u>me</u>")
    failures: list[str] = []

    for opened in (commented, edited, rejected):
        path = f"/escalations/{opened.escalation_id}"
        watch.known_paths.add(path)
        for action in ("decision", "comments"):
            watch.allow_post(f"{path}/{action}")

    page.goto(f"/escalations/{commented.escalation_id}")
    page.fill("#comment-text", text)
    page.click("#comments button[type=submit]")
    expect(page.locator("p.comment-text")).to_have_count(1)
    problems = detail_problems(page, corpus, commented.escalation_id) + quiet(watch)
    page.reload()
    problems += detail_problems(page, corpus, commented.escalation_id) + quiet(watch)
    failures += [f"comment: {p}" for p in problems]

    page.goto(f"/escalations/{edited.escalation_id}")
    output = {"text": text, "attempt": 1, **{payload: payload for payload in PAYLOADS}}
    page.locator("#edit-output").fill(json.dumps(output, ensure_ascii=False))
    page.fill("#edit-reason", text)
    page.click("#edit-form button[type=submit]")
    expect(page.locator(".notice")).to_contain_text("edited output")
    page.goto(f"/escalations/{edited.escalation_id}")  # the decision moved on to the next
    decision = corpus.escalation(edited.escalation_id).decision
    assert decision is not None
    assert (decision.output, decision.reason) == (output, text)
    problems = detail_problems(page, corpus, edited.escalation_id) + quiet(watch)
    failures += [f"edit: {p}" for p in problems]

    page.goto(f"/escalations/{rejected.escalation_id}")
    page.fill("#reject-reason", text)
    page.click("#reject-form button[type=submit]")
    expect(page.locator(".notice")).to_contain_text("Rejected")
    page.goto(f"/escalations/{rejected.escalation_id}")  # the decision moved on to the next
    decision = corpus.escalation(rejected.escalation_id).decision
    assert decision is not None
    assert decision.reason == text
    problems = detail_problems(page, corpus, rejected.escalation_id) + quiet(watch)
    failures += [f"reject: {p}" for p in problems]

    # Another escalation of the step lists these decisions as similar past ones.
    other = corpus.opened[-1]
    watch.known_paths.add(f"/escalations/{other.escalation_id}")
    page.goto(f"/escalations/{other.escalation_id}")
    expect(page.locator(".similar tbody tr")).not_to_have_count(0)
    problems = detail_problems(page, corpus, other.escalation_id) + quiet(watch)
    shown = page.locator(".similar tbody td:nth-child(4)").all_text_contents()
    if text not in shown:
        problems.append(f"the rejection's reason is not among the similar ones: {_short(shown)}")
    failures += [f"similar: {p}" for p in problems]

    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "console-xss-escalation-detail.png"
    page.screenshot(path=str(screenshot), full_page=True, caret="initial")
    assert_png(screenshot)
    assert failures == [], "\n".join(failures)
    assert_still_logged_in(session.context, corpus.base, REVIEWER)
