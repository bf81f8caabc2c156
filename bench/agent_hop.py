"""One agent hop: tasks per second through a Waypost agent vs a raw Kafka echo.

Waypost: N task.dispatched events produced to `<ns>.tasks.bench-echo` (as the
orchestrator's relay would) -> one `waypost agent run bench.echo_agent` process (decode,
validate, run the handler, encode and validate the result, publish, commit) ->
task.completed on `<ns>.results`. The clock runs from the first task produced to the
last result received.

Raw baseline, same broker, same run: N records produced -> a plain confluent-kafka echo
process consumes and re-produces them -> a sink. Same clock; the median of three runs.

Options: --tasks N, --env NAME=VALUE (a WAYPOST_* setting for the agent process).
The last line printed is JSON: waypost_tasks_per_s, raw_msgs_per_s, ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from pathlib import Path

from bench.harness import (
    ROOT,
    Sink,
    Stack,
    embedded_stack,
    migrate_schema,
    processes,
    producer,
    raw_pipeline_rate,
    timed_rate,
    unique,
    wait_for_topic,
    waypost_env,
)
from waypost.events import Event, TaskDispatched, default_codec, utcnow
from waypost.topics import Topics

CAPABILITY = "bench-echo"
COMPLETED = ("ce_type", b"waypost.task.completed")


def waypost_rate(
    stack: Stack, count: int, logdir: Path, extra_env: dict[str, str] | None = None
) -> float:
    """Results per second from the first task produced to the last result received."""
    namespace, schema = unique("hop"), unique("hop_")
    migrate_schema(stack, schema)  # the agent lists itself in the registry
    topics = Topics(namespace)
    env = waypost_env(stack, namespace=namespace, schema=schema, **(extra_env or {}))
    agent = [("agent-hop", ["-m", "waypost", "agent", "run", "bench.echo_agent"])]
    with processes(agent, env, logdir):
        wait_for_topic(stack, topics.results, "agent")
        sink = Sink(stack.bootstrap, topics.results)
        out = producer(stack.bootstrap)
        codec = default_codec()
        deadline = (utcnow() + timedelta(hours=1)).isoformat()

        def task(n: int) -> None:
            payload = TaskDispatched(
                workflow_id=f"wf-{n}",
                task_id=f"task-{n}",
                step="echo",
                capability=CAPABILITY,
                attempt=1,
                goal_type="bench.hop",
                input={"n": n},
                deadline=deadline,
            )
            encoded = codec.encode(Event(payload, source="bench"))
            out.produce(
                topics.tasks(CAPABILITY),
                key=encoded.key,
                value=encoded.value,
                headers=list(encoded.headers),
            )

        return timed_rate(task, out, sink, count, COMPLETED)


def main() -> None:
    """Run both hops and print their rates."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=10000, help="tasks (and raw messages)")
    parser.add_argument("--logs", type=Path, default=ROOT / ".bench", help="process logs")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra WAYPOST_* setting for the agent process",
    )
    args = parser.parse_args()
    args.logs.mkdir(parents=True, exist_ok=True)
    extra = dict(item.split("=", 1) for item in args.env)
    with embedded_stack() as stack:
        print(f"waypost: {args.tasks} tasks through one agent hop ...", file=sys.stderr)
        hop = waypost_rate(stack, args.tasks, args.logs, extra)
        print(f"waypost: {hop:,.0f} tasks/s", file=sys.stderr)
        print(f"raw: {args.tasks} messages through an echo hop, 3 runs ...", file=sys.stderr)
        raw_runs = sorted(raw_pipeline_rate(stack, args.tasks, args.logs) for _ in range(3))
        raw = raw_runs[1]
        print(
            "raw: " + ", ".join(f"{r:,.0f}" for r in raw_runs) + f" msgs/s (median {raw:,.0f})",
            file=sys.stderr,
        )
    result = {
        "tasks": args.tasks,
        "waypost_tasks_per_s": round(hop, 1),
        "raw_msgs_per_s": round(raw, 1),
        "ratio": round(hop / raw, 3),
    }
    print(f"ratio: {result['ratio']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
