"""`python -m bench.memory`: does `waypost up` under a steady load stay inside its memory bound?

Starts its own `waypost up` with bench.chaos.stack.UpStack (fresh data directory under
/tmp, free port, random admin password, the built-in agents plus bench.chaos.ledger_agent
and the chaos.pair playbook) and WAYPOST_BROKER_MEMORY_LIMIT_MB / _PARTITION_LIMIT from
the options, then:

- Load: `POST /api/v1/goals` at --rate goals/s for --minutes from 4 threads (a POST that
  fails with a connection error, 5xx or 429 is repeated with its Idempotency-Key for up
  to 60 s), alternating the built-in support.ticket (triage and knowledge in parallel,
  then reply: embeddings, a pgvector search, schema checks) and chaos.pair (two dependent
  tasks in the ledger agent): 2.5 tasks a goal. The tickets are the two demo samples
  that pass every review threshold, so each workflow can complete without a reviewer.
- Memory: every 10 s the RSS of each process, found with psutil from `waypost up`'s PID:
  `waypost up`, broker (tansu), postgres (postmaster and all backends summed), the
  orchestrator, each agent process, indexer, http; the broker's also every second, for
  its max. A backend's RSS counts the shared buffers it touched, so postgres's summed
  PSS (shared pages counted once) and USS (private pages) are shown too. "start" is the
  first sample after --warmup s of load, "end" the last under load, "max" over the run.
- Each minute: submitted, completed (the orchestrator's workflow duration count), broker
  RSS, longest partition (log end offsets), `restarting broker:` lines so far.
- Then it waits up to --drain s until no workflow is accepted or running and pages
  `GET /api/v1/workflows` for the status of every one.

Judged: the broker's max RSS against --limit-mb (the recycler looks every 5 s and
restarts it at once from 90 % of the limit, so 5 s of growth stay under it); every other
process's memory at the end of the load against --growth x its start (a leak shows
there; the max is printed too) (postgres by USS: shared buffers are capped
by its configuration); total RSS start vs end is reported. Ends with one JSON line.
`waypost up` is stopped by SIGTERM to its PID; the data directory is removed unless
--keep. Exit status 1 if a workflow did not complete or a bound was broken.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import shutil
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from prometheus_client.parser import text_string_to_metric_families

from bench.chaos.load import GOAL_TYPE as PAIR
from bench.chaos.stack import StackFailed, Started, UpStack
from waypost.stack.demo import SAMPLE_TICKETS

TICKET = "support.ticket"
# "Charged twice" and "Cannot log in": reply confidence 0.65 (threshold 0.6); the third
# sample, "Where is my order?", drafts at 0.56 and waits for a reviewer.
TICKETS = SAMPLE_TICKETS[:2]
MB = 2**20
UP = "waypost up"
RESTART = "restarting broker:"
PG_ROWS = ("postgres PSS (summed)", "postgres USS (summed)")
TOTALS = ("total RSS", "total, postgres by PSS")


def post_goal(client: httpx.Client, key: str, n: int) -> str:
    """Submit the n-th goal of the mix: accepted, refused (why) or gave up."""
    ticket = {**TICKETS[n // 2 % len(TICKETS)], "customer": f"Customer {n}"}
    kind, body = (PAIR, {"n": n}) if n % 2 else (TICKET, ticket)
    give_up, delay = time.monotonic() + 60, 0.2
    while time.monotonic() + delay < give_up:
        with contextlib.suppress(httpx.HTTPError):
            answer = client.post(
                "/api/v1/goals",
                json={"type": kind, "input": body},
                headers={"Idempotency-Key": key},
            )
            if answer.status_code == 202:
                return "accepted"
            if answer.status_code < 500 and answer.status_code != 429:
                return f"refused: {answer.status_code} {answer.text[:150]}"
        time.sleep(delay)
        delay = min(2 * delay, 2.0)
    return "gave up"


@dataclass
class Memory:
    """Samples of every process's memory: start (after warm-up), end (of the load), max."""

    seen: dict[int, psutil.Process] = field(default_factory=dict)
    peak: dict[str, int] = field(default_factory=dict)
    start: dict[str, int] = field(default_factory=dict)
    end: dict[str, int] = field(default_factory=dict)

    def take(self, stack: UpStack, *, loading: bool, warm: bool) -> dict[str, int]:
        """Bytes per role (a child with all its descendants) and the totals, now."""
        rows: dict[str, int] = {}
        pg = {"pss": 0, "uss": 0}
        # Children come in PID order, the order `waypost up` starts them in.
        for role, pid in {UP: stack.pid, **stack.children()}.items():
            try:
                top = psutil.Process(pid)
                family = [top] if role == UP else [top, *top.children(recursive=True)]
            except (psutil.Error, TypeError):
                continue
            rows[role] = 0
            for process in family:
                self.seen.setdefault(process.pid, process)
                with contextlib.suppress(psutil.Error):
                    if role != "postgres":
                        rows[role] += process.memory_info().rss
                        continue
                    full = process.memory_full_info()
                    rows[role] += full.rss
                    pg = {"pss": pg["pss"] + full.pss, "uss": pg["uss"] + full.uss}
        total = sum(rows.values())
        rows |= dict(zip(PG_ROWS, pg.values(), strict=True))
        rows |= dict(zip(TOTALS, (total, total - rows.get("postgres", 0) + pg["pss"]), strict=True))
        self._peaks(rows)
        if loading:
            self.end = rows
            self.start = self.start or (rows if warm else {})
        return rows

    def peek_broker(self, stack: UpStack) -> None:
        """Read the broker's RSS alone (often: the recycler acts on it every 5 s)."""
        with contextlib.suppress(psutil.Error, KeyError):
            self._peaks({"broker": psutil.Process(stack.children()["broker"]).memory_info().rss})

    def _peaks(self, rows: dict[str, int]) -> None:
        for name, value in rows.items():
            self.peak[name] = max(self.peak.get(name, 0), value)

    def table(self, *, final: bool) -> str:
        """MB per process: start, and in the final table also end and max."""
        columns = [self.start, self.end, self.peak] if final else [self.start]
        heads = ["start MB", "end MB", "max MB"][: len(columns)]
        lines = [f"  {'process':<36}" + "".join(f"{h:>10}" for h in heads)]
        for name in dict.fromkeys(k for c in columns for k in c):
            cells = (f"{c[name] / MB:10.1f}" if name in c else f"{'-':>10}" for c in columns)
            lines.append(f"  {name:<36}" + "".join(cells))
        return "\n".join(lines)


def longest_partition(admin: AdminClient) -> int | None:
    """The log end offset of the broker's longest partition (None while it restarts)."""
    try:
        topics = admin.list_topics(timeout=5).topics
        wanted = {
            TopicPartition(name, p): OffsetSpec.latest()
            for name, meta in topics.items()
            if not name.startswith("__")
            for p in meta.partitions
        }
        futures = admin.list_offsets(wanted, request_timeout=5).values() if wanted else []
    except KafkaException:
        return None
    ends = []
    for future in futures:
        with contextlib.suppress(KafkaException):
            ends.append(int(future.result().offset))
    return max(ends, default=None)


def completed_so_far(metrics_url: str) -> int | None:
    """Workflows the orchestrator completed since it started (its /metrics)."""
    try:
        families = text_string_to_metric_families(httpx.get(metrics_url, timeout=5).text)
    except httpx.HTTPError:
        return None
    samples = (s for family in families for s in family.samples)
    name, labels = "waypost_workflow_duration_seconds_count", {"outcome": "completed"}
    return int(
        sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())
    )


def restarts(stack: UpStack) -> tuple[list[str], int]:
    """(why `waypost up` restarted the broker, each time; how often the broker crashed)."""
    lines = stack.up_log.read_text(errors="replace").splitlines()
    reasons = [line.split(RESTART, 1)[1].strip() for line in lines if RESTART in line]
    return reasons, sum("broker stopped unexpectedly" in line for line in lines)


def statuses(client: httpx.Client, wanted: tuple[str, ...]) -> dict[str, str]:
    """Workflow id -> status of every workflow of the mix with one of these statuses."""
    found: dict[str, str] = {}
    for kind in (TICKET, PAIR):
        for status in wanted:
            params: dict[str, str | int] = {"type": kind, "status": status, "limit": 200}
            while True:
                answer = client.get("/api/v1/workflows", params=params)
                answer.raise_for_status()
                page = answer.json()
                found.update((item["id"], item["status"]) for item in page["items"])
                if not page.get("next_cursor"):
                    break
                params["cursor"] = page["next_cursor"]
    return found


def measure(
    stack: UpStack, started: Started, args: argparse.Namespace, memory: Memory
) -> dict[str, Any]:
    """Load, sample, report each minute, drain; the figures of the run."""
    (target,) = (
        t["targets"][0]
        for t in json.loads((stack.data_dir / "prometheus-targets.json").read_text())
        if t["labels"]["process"] == "orchestrator"
    )
    bootstrap = json.loads((stack.data_dir / "stack.json").read_text())["kafka_bootstrap"]
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})  # quiet on restarts
    auth = {"Authorization": f"Bearer {started.token}"}
    client = httpx.Client(base_url=started.http_url, headers=auth, timeout=30)
    pool = ThreadPoolExecutor(4, thread_name_prefix="submit")
    sent: dict[str, Future[str]] = {}
    prefix, longest_max, drain_end = f"mem-{secrets.token_hex(3)}", 0, 0.0
    t0 = next_peek = next_sample = time.monotonic()
    load_end, next_minute = t0 + args.minutes * 60, t0 + 60
    while not drain_end or (time.monotonic() < drain_end and _in_flight(client)):
        time.sleep(2 if drain_end else 0.05)
        now = time.monotonic()
        if not stack.alive():
            raise StackFailed("waypost up exited during the run")
        while now < load_end and len(sent) < (now - t0) * args.rate:
            key = f"{prefix}-{len(sent):06d}"
            sent[key] = pool.submit(post_goal, client, key, len(sent))
        if now >= next_peek:
            next_peek += 1
            memory.peek_broker(stack)
        if now >= next_sample:
            next_sample += 10
            last = memory.take(stack, loading=not drain_end, warm=now - t0 >= args.warmup)
            if memory.start is last:
                print(f"RSS {now - t0:.0f} s into the load:\n{memory.table(final=False)}")
        if now >= next_minute:
            next_minute += 60
            longest = longest_partition(admin)
            longest_max = max(longest_max, longest or 0)
            done = completed_so_far(f"http://{target}/metrics")
            taken = sum(f.done() and f.result() == "accepted" for f in sent.values())
            print(
                f"minute {round((now - t0) / 60):3d}: submitted {taken}  completed "
                f"{'?' if done is None else done}  broker {last.get('broker', 0) / MB:.0f} MB"
                f"  longest partition {'?' if longest is None else longest}"
                f"  broker restarts {len(restarts(stack)[0])}",
                flush=True,
            )
        if not drain_end and now >= load_end:
            pool.shutdown(wait=True)
            drain_end = time.monotonic() + args.drain
            print(f"load over after {now - t0:.0f} s; draining (at most {args.drain:g} s)")
    drained_s = time.monotonic() - load_end
    outcomes = {key: future.result() for key, future in sent.items()}
    found = statuses(client, ("completed", "failed", "running", "accepted"))
    client.close()
    accepted = [key for key, outcome in outcomes.items() if outcome == "accepted"]
    counts = Counter(found.get(key, "missing") for key in accepted)
    reasons, crashes = restarts(stack)
    return dict(
        options=vars(args),
        sent=len(sent),
        submitted=len(accepted),
        completed=counts["completed"],
        not_completed=len(accepted) - counts["completed"],
        statuses=dict(counts),
        not_accepted=sorted({o for o in outcomes.values() if o != "accepted"})[:3],
        drain_s=round(drained_s, 1),
        broker_restarts=len(reasons),
        broker_restart_reasons=reasons,
        broker_crashes=crashes,
        longest_partition_max_seen=longest_max,
    )


def _in_flight(client: httpx.Client) -> bool:
    try:
        return bool(statuses(client, ("accepted", "running")))
    except httpx.HTTPError:
        return True


def judge(figures: dict[str, Any], memory: Memory, args: argparse.Namespace) -> bool:
    """Print the end table and the verdicts; add the memory figures; True if all held."""
    start, end, peak = memory.start or memory.end, memory.end, memory.peak
    print(f"RSS at start, at the end of the load, max over the run:\n{memory.table(final=True)}")
    print(
        f"workflows: {figures['submitted']} submitted, {figures['completed']} completed, "
        f"{figures['not_completed']} not completed {figures['statuses']}; "
        f"{figures['sent'] - figures['submitted']} goals not accepted "
        f"{figures['not_accepted']}; drained in {figures['drain_s']} s"
    )
    print(f"broker restarts: {figures['broker_restarts']} (crashes: {figures['broker_crashes']})")
    for reason in figures["broker_restart_reasons"]:
        print(f"  {RESTART} {reason}")
    broker_max = peak.get("broker", 0)
    broker_ok = args.limit_mb <= 0 or broker_max <= args.limit_mb * MB
    print(
        f"broker: max RSS {broker_max / MB:.1f} MB, limit {args.limit_mb} MB: "
        + ("within" if broker_ok else f"OVER by {broker_max / MB - args.limit_mb:.1f} MB")
    )
    judged = [r for r in start if r not in ("broker", "postgres", PG_ROWS[0], *TOTALS)]
    # By the end of the load, not the max: a leak shows there; a brief spike (PostgreSQL
    # sorting while the broker restarts, say) does not make one.
    over = {r: end[r] / start[r] for r in judged if end[r] > args.growth * start[r]}
    print(
        f"other processes, end <= {args.growth:g} x start (postgres by USS): "
        + ("all within" if not over else "OVER: ")
        + ", ".join(f"{role} {times:.2f} x" for role, times in over.items())
    )
    ratios = ", ".join(f"{name} {end[name] / start[name]:.2f} x" for name in TOTALS)
    print(f"stack memory, end / start: {ratios}")
    columns = {"start": start, "end": end, "max": peak}
    figures["mb"] = {
        name: {when: round(column.get(name, 0) / MB, 1) for when, column in columns.items()}
        for name in {**start, **peak}
    }
    figures.update(broker_within_limit=broker_ok, others_within_growth=not over)
    return bool(broker_ok and not over and figures["not_completed"] == 0)


def main(argv: list[str] | None = None) -> int:
    """Run the bench; exit status 0 if every workflow completed within every bound."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--minutes", type=float, default=30.0, help="how long to load (default 30)")
    add("--rate", type=float, default=20.0, help="goals a second (default 20)")
    add("--limit-mb", type=int, default=512, help="WAYPOST_BROKER_MEMORY_LIMIT_MB")
    add("--partition-limit", type=int, default=20000, help="WAYPOST_BROKER_PARTITION_LIMIT")
    add("--warmup", type=float, default=30.0, help="s of load before the start sample")
    add("--drain", type=float, default=300.0, help="most s to wait for the last workflows")
    add("--growth", type=float, default=1.5, help="bound of max / start (default 1.5)")
    add("--keep", action="store_true", help="keep the data directory and its logs")
    args = parser.parse_args(argv)
    limits = {
        "WAYPOST_BROKER_MEMORY_LIMIT_MB": str(args.limit_mb),
        "WAYPOST_BROKER_PARTITION_LIMIT": str(args.partition_limit),
    }
    stack, memory, figures = UpStack(limits), Memory(), None
    print(f"starting waypost up in {stack.data_dir}", flush=True)
    try:
        started = stack.start()
        print(f"running (pid {stack.pid}): {args.rate:g} goals/s for {args.minutes:g} min")
        figures = measure(stack, started, args, memory)
    except StackFailed as exc:
        print(f"error: {exc}")
    finally:
        code = stack.stop()
        left = [p for p in memory.seen.values() if _running(p)]
        for process in left:  # each one a process of this stack
            with contextlib.suppress(psutil.Error):
                process.kill()
        print(f"waypost up stopped (exit {code}); left running: {[p.pid for p in left] or 'none'}")
        if args.keep:
            print(f"data and logs kept in {stack.data_dir}")
        else:
            if (stack.data_dir / "postgres").is_symlink():  # relocated when run as root
                shutil.rmtree((stack.data_dir / "postgres").resolve(), ignore_errors=True)
            shutil.rmtree(stack.data_dir, ignore_errors=True)
    if figures is None:
        return 1
    ok = judge(figures, memory, args)
    figures.update(exit_code=code, left_running=len(left))
    print(json.dumps(figures, separators=(",", ":")))
    return 0 if ok else 1


def _running(process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    return False


if __name__ == "__main__":
    raise SystemExit(main())
