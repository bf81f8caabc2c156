"""A scripted OpenAI-compatible model for the LLM planner, served in the harness process.

``ScriptedModel`` answers ``POST /v1/chat/completions`` on 127.0.0.1 with one fixed,
valid plan of the chaos agents (``work``, then ``effect``), after a delay (so a fault
finds plans being asked for), or with 503 while an outage is on. It keeps every request:
when it came, when it was answered, how, and for which goal (the goal input's ``n``,
read from the prompt's last user message), so the harness can tell how often each
workflow's plan was asked for and why a plan was asked for again.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

MODEL_NAME = "chaos-scripted"
PATH = "/v1/chat/completions"

# The plan every request gets: chaos.pair's steps.
PLAN: dict[str, Any] = {
    "steps": [
        {
            "name": "work",
            "capability": "chaos-work",
            "depends_on": [],
            "input": {"n": "$goal.n"},
            "description": "The work whose token the effect needs.",
        },
        {
            "name": "effect",
            "capability": "chaos-effect",
            "depends_on": ["work"],
            "input": {"n": "$goal.n", "token": "$steps.work.output.token"},
            "description": "The side effect that must happen once per workflow.",
        },
    ],
    "output": {"n": "$steps.effect.output.n"},
}
PLAN_JSON = json.dumps(PLAN, separators=(",", ":"))
# A planner applies a plan within moments of its answer: a kill later than this after
# the answer did not stop that plan from being applied.
_APPLY_S = 2.0
_FIRST_BACKOFF_S = 2.0  # the planner's first wait after a model that did not answer
_SLACK_S = 0.3  # timestamps of two processes, and a claim renewed just before the request

Answer = Literal["plan", "unavailable", "cut"]
"""plan: 200 with the plan; unavailable: 503 (outage); cut: the client went away first."""


@dataclass(frozen=True, slots=True)
class Request:
    """One completion request as the model saw it."""

    n: int | None
    """The goal input's ``n`` (None: not found in the prompt)."""
    arrived: float
    """time.time() when it came."""
    answered: float
    answer: Answer


@dataclass(frozen=True)
class Cause:
    """When a fault was on, for telling why a plan was asked for again."""

    label: str
    start: float
    end: float
    kind: Literal["planner", "model"]
    """planner: the orchestrator asking died (``start`` = the kill); model: an outage."""


@dataclass
class PlanningCounts:
    """How many plans were asked for, for how many workflows, and why any twice."""

    requests: int = 0
    answered: int = 0
    """Answered 200 with the plan."""
    unavailable: int = 0
    """Answered 503 (the model was down)."""
    cut: int = 0
    """The asking orchestrator went away before the answer was written."""
    unknown_goal: int = 0
    """Requests whose prompt named no goal of this run."""
    workflows_asked: int = 0
    workflows: int = 0
    """Workflows submitted."""
    asked_again: int = 0
    """Workflows whose plan was asked for more than once."""
    repeats: dict[str, int] = field(default_factory=dict)
    """Requests after a workflow's first, by why the one before did not settle it:
    ``planner killed`` (the orchestrator died after asking), ``model down`` (503), or
    ``no cause`` (the earlier request was answered with a plan and no planner died)."""
    repeats_by_fault: dict[str, int] = field(default_factory=dict)
    """``planner killed`` and ``model down`` repeats per fault label."""
    unexplained_examples: list[str] = field(default_factory=list)
    max_per_workflow: int = 0
    replan_after_kill_s: tuple[float, float] | None = None
    """Fewest and most seconds from a kill to a ``planner killed`` repeat (the claim's
    lease, WAYPOST_PLANNER_LEASE_S, should dominate)."""
    early_after_kill: int = 0
    """``planner killed`` repeats asked before the dead planner's claim ran out: its
    request's arrival (the claim is renewed just before) plus the lease."""
    retry_after_503_s: tuple[float, float] | None = None
    """Fewest and most seconds from a 503 to the plan asked again (the planner's backoff:
    2 s, doubling up to WAYPOST_PLANNER_MAX_BACKOFF_S)."""
    early_after_503: int = 0
    """Plans asked again sooner than 2 s after a 503."""
    completed_unasked: int = 0
    """Completed workflows whose plan the model was never asked for."""

    def problems(self) -> list[str]:
        """What planning did that the planner promises it does not."""
        found = []
        if self.repeats.get("no cause"):
            found.append(
                f"{self.repeats['no cause']} plan(s) asked for again although the previous "
                "request was answered and no planner died"
            )
        if self.early_after_kill:
            found.append(
                f"{self.early_after_kill} plan(s) of a killed planner asked for again before "
                "its claim ran out"
            )
        if self.early_after_503:
            found.append(f"{self.early_after_503} plan(s) asked for again < 2 s after a 503")
        if self.completed_unasked:
            found.append(f"{self.completed_unasked} completed workflow(s) no plan was asked for")
        if self.unknown_goal:
            found.append(f"{self.unknown_goal} plan request(s) for no goal of this run")
        return found


class ScriptedModel:
    """The model's HTTP server in a thread of its own; ``base_url`` is for WAYPOST_LLM_BASE_URL."""

    def __init__(self, delay_s: tuple[float, float] = (0.2, 0.5)) -> None:
        self.delay_s = delay_s
        self.log_path: Path | None = None
        """Where each request is appended as a JSON line, when set."""
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._in_flight = 0
        self._down_until = 0.0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="scripted-model", daemon=True
        )

    @property
    def base_url(self) -> str:
        """The base URL the planner's client puts /chat/completions after."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def env(self, timeout_s: float, lease_s: float, poll_s: float) -> dict[str, str]:
        """What the orchestrator needs to plan with this model."""
        return {
            "WAYPOST_LLM_BASE_URL": self.base_url,
            "WAYPOST_LLM_MODEL": MODEL_NAME,
            "WAYPOST_LLM_TIMEOUT_S": f"{timeout_s:g}",
            "WAYPOST_PLANNER_LEASE_S": f"{lease_s:g}",
            "WAYPOST_PLANNER_POLL_INTERVAL_S": f"{poll_s:g}",
        }

    def start(self) -> None:
        """Start serving."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving (requests in flight finish in their own threads)."""
        if self._thread.is_alive():  # shutdown() waits forever for a loop never started
            self._server.shutdown()
            self._thread.join(10)
        self._server.server_close()

    def down_for(self, seconds: float) -> None:
        """Answer 503 to every request for the next ``seconds``."""
        with self._lock:
            self._down_until = time.monotonic() + seconds

    def in_flight(self) -> int:
        """Requests being answered right now (the delay before a plan)."""
        with self._lock:
            return self._in_flight

    def requests(self) -> list[Request]:
        """A copy of every request so far, in the order they were answered."""
        with self._lock:
            return list(self._requests)

    def _record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)
            if self.log_path is not None:
                with self.log_path.open("a") as log:
                    log.write(json.dumps(asdict(request)) + "\n")

    def _answer(self, body: Mapping[str, Any]) -> tuple[int, dict[str, Any], int | None]:
        """(status, JSON body, the goal's n) for one request; sleeps the delay first."""
        n = goal_number(body)
        with self._lock:
            down = time.monotonic() < self._down_until
        if down:
            return 503, {"error": {"message": "the scripted model is down", "code": 503}}, n
        with self._lock:
            self._in_flight += 1
        try:
            time.sleep(random.uniform(*self.delay_s))
        finally:
            with self._lock:
                self._in_flight -= 1
        prompt_chars = sum(len(str(m.get("content") or "")) for m in body.get("messages", []))
        usage = {
            "prompt_tokens": prompt_chars // 4,
            "completion_tokens": len(PLAN_JSON) // 4,
            "total_tokens": prompt_chars // 4 + len(PLAN_JSON) // 4,
        }
        return (
            200,
            {
                "id": f"chatcmpl-chaos-{time.monotonic_ns()}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": MODEL_NAME,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": PLAN_JSON},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            },
            n,
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        model = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                arrived = time.time()
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path.rstrip("/") != PATH:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._send(400, {"error": {"message": "the body is not JSON"}})
                    return
                status, payload, n = model._answer(body if isinstance(body, dict) else {})
                sent = self._send(status, payload)
                answer: Answer = "cut" if not sent else "plan" if status == 200 else "unavailable"
                model._record(Request(n, arrived, time.time(), answer))

            def _send(self, status: int, payload: Mapping[str, Any]) -> bool:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    self.wfile.flush()
                except OSError:  # the orchestrator was killed while it waited
                    self.close_connection = True
                    return False
                return True

            def log_message(self, format: str, *args: Any) -> None:
                pass  # one line per request would drown the progress lines

        return Handler


def goal_number(body: Mapping[str, Any]) -> int | None:
    """The goal input's ``n`` in a planner request: the JSON object that ends the last
    user message (the planner's prompt puts the goal input there)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = str(message.get("content") or "")
        start = content.find("{")
        if start < 0:
            continue
        with contextlib.suppress(ValueError):
            data = json.loads(content[start:])
            if isinstance(data, dict) and isinstance(data.get("n"), int):
                return int(data["n"])
        return None
    return None


def planning_counts(
    requests: Sequence[Request],
    goal_ids: Sequence[str],
    completed: set[str],
    causes: Sequence[Cause],
    lease_s: float,
    examples: int = 5,
) -> PlanningCounts:
    """Count the plans asked for and say why any workflow's plan was asked for again.

    A request after a workflow's first is explained by the one before it: a planner was
    killed while that one was asked, or in the moment after its answer when the plan is
    applied (``planner killed``), or it was answered 503 (``model down``); otherwise it
    has ``no cause``. A ``planner killed`` repeat sooner than ``lease_s`` after the
    request before it, or a ``model down`` one sooner than 2 s after the 503, broke the
    claim or the backoff."""
    counts = PlanningCounts(requests=len(requests), workflows=len(goal_ids))
    by_goal: defaultdict[int, list[Request]] = defaultdict(list)
    for request in requests:
        if request.answer == "plan":
            counts.answered += 1
        elif request.answer == "unavailable":
            counts.unavailable += 1
        else:
            counts.cut += 1
        if request.n is None or not 0 <= request.n < len(goal_ids):
            counts.unknown_goal += 1
        else:
            by_goal[request.n].append(request)
    counts.workflows_asked = len(by_goal)
    repeats: defaultdict[str, int] = defaultdict(int)
    per_fault: defaultdict[str, int] = defaultdict(int)
    after_kill: list[float] = []
    after_503: list[float] = []
    kills = [c for c in causes if c.kind == "planner"]
    outages = [c for c in causes if c.kind == "model"]
    for n, asked in sorted(by_goal.items()):
        asked.sort(key=lambda r: r.arrived)
        counts.max_per_workflow = max(counts.max_per_workflow, len(asked))
        if len(asked) > 1:
            counts.asked_again += 1
        for before, again in itertools.pairwise(asked):
            killed = next(
                (k for k in kills if before.arrived <= k.start <= before.answered + _APPLY_S),
                None,
            )
            down = next((o for o in outages if o.start - 1 <= before.answered <= o.end + 1), None)
            if before.answer == "unavailable":  # retried after a 503, killed or not
                repeats["model down"] += 1
                after_503.append(again.arrived - before.answered)
                if again.arrived < before.answered + _FIRST_BACKOFF_S - _SLACK_S:
                    counts.early_after_503 += 1
                if down is not None:
                    per_fault[down.label] += 1
            elif killed is not None:
                repeats["planner killed"] += 1
                per_fault[killed.label] += 1
                after_kill.append(again.arrived - killed.start)
                if again.arrived < before.arrived + lease_s - _SLACK_S:
                    counts.early_after_kill += 1
            else:
                repeats["no cause"] += 1
                if len(counts.unexplained_examples) < examples:
                    counts.unexplained_examples.append(
                        f"{goal_ids[n]}: asked at "
                        + ", ".join(
                            f"{time.strftime('%H:%M:%S', time.localtime(r.arrived))}"
                            f".{int(r.arrived % 1 * 1000):03d} ({r.answer})"
                            for r in asked
                        )
                    )
    counts.repeats = dict(repeats)
    if after_kill:
        counts.replan_after_kill_s = (round(min(after_kill), 1), round(max(after_kill), 1))
    if after_503:
        counts.retry_after_503_s = (round(min(after_503), 1), round(max(after_503), 1))
    counts.repeats_by_fault = dict(per_fault)
    asked_ids = {goal_ids[n] for n in by_goal}
    counts.completed_unasked = len(completed - asked_ids)
    return counts
