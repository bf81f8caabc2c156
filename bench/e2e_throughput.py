"""End-to-end throughput: single-step workflows through the whole platform vs raw Kafka.

Platform: N goal events produced to `<ns>.goals` (as any Kafka client would) -> the
orchestrator plans each into a one-step workflow (Postgres + outbox) -> the relay
dispatches the task -> an agent process echoes it -> the orchestrator applies the
result and completes the workflow -> workflow.completed arrives on
`<ns>.workflow.events`. The clock runs from the first goal produced to the last
workflow.completed received.

Raw baseline, same broker, same run: N records produced -> a plain confluent-kafka
echo process consumes and re-produces them -> a sink consumes them. Same clock; the
median of three runs (a raw run is short, so single runs are noisy).

Options scale the platform out (--orchestrators, --agents) or set WAYPOST_* settings
for its processes (--env NAME=VALUE). --tracing runs the platform a second time with
OpenTelemetry on, every span exported over OTLP/HTTP to a receiver in the bench process,
and prints the traced rate over the untraced one.

The last line printed is JSON: platform_tasks_per_s, raw_msgs_per_s, ratio (and with
--tracing traced_tasks_per_s, traced_spans_received, traced_ratio_to_untraced).
"""

from __future__ import annotations

import argparse
import json
import sys
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
from waypost.events import Event, GoalSubmitted, default_codec
from waypost.topics import Topics

COMPLETED = ("ce_type", b"waypost.workflow.completed")


def platform_rate(
    stack: Stack,
    count: int,
    logdir: Path,
    *,
    orchestrators: int = 1,
    agents: int = 1,
    extra_env: dict[str, str] | None = None,
) -> float:
    """Workflows per second from first goal produced to last workflow.completed."""
    namespace, schema = unique("bench"), unique("bench_")
    migrate_schema(stack, schema)
    topics = Topics(namespace)
    env = waypost_env(
        stack,
        namespace=namespace,
        schema=schema,
        WAYPOST_PLAYBOOK_DIRS=str(ROOT / "bench" / "playbooks"),
        **(extra_env or {}),
    )
    commands = [
        *[
            (f"orchestrator-{i}", ["-m", "waypost", "orchestrator", "run"])
            for i in range(orchestrators)
        ],
        *[
            (f"agent-{i}", ["-m", "waypost", "agent", "run", "bench.echo_agent"])
            for i in range(agents)
        ],
    ]
    with processes(commands, env, logdir):
        wait_for_topic(stack, topics.workflow_events, "orchestrator")
        sink = Sink(stack.bootstrap, topics.workflow_events)
        out = producer(stack.bootstrap)
        codec = default_codec()

        def goal(n: int) -> None:
            encoded = codec.encode(
                Event(GoalSubmitted(type="bench.echo", input={"n": n}), source="bench")
            )
            out.produce(
                topics.goals, key=encoded.key, value=encoded.value, headers=list(encoded.headers)
            )

        return timed_rate(goal, out, sink, count, COMPLETED)


def tracing_rate(
    stack: Stack, args: argparse.Namespace, extra: dict[str, str], untraced: float
) -> dict[str, float]:
    """The platform's rate with tracing on, every span exported over OTLP/HTTP to a
    receiver in this process (queue large enough that the SDK drops none)."""
    from tests.support.otlp import otlp_receiver

    with otlp_receiver() as receiver:
        print(f"platform with tracing: {args.tasks} workflows ...", file=sys.stderr)
        env = {
            **extra,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_BSP_MAX_QUEUE_SIZE": "200000",
            "OTEL_BSP_SCHEDULE_DELAY": "500",
        }
        rate = platform_rate(
            stack,
            args.tasks,
            args.logs,
            orchestrators=args.orchestrators,
            agents=args.agents,
            extra_env=env,
        )
        spans = receiver.count()  # received by the time the last workflow completed
    print(f"platform with tracing: {rate:,.0f} tasks/s ({spans} spans)", file=sys.stderr)
    return {
        "traced_tasks_per_s": round(rate, 1),
        "traced_spans_received": spans,
        "traced_ratio_to_untraced": round(rate / untraced, 3),
    }


def main() -> None:
    """Run both pipelines and print their rates."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=5000, help="workflows (and raw messages)")
    parser.add_argument("--logs", type=Path, default=ROOT / ".bench", help="process logs")
    parser.add_argument("--orchestrators", type=int, default=1, help="orchestrator processes")
    parser.add_argument("--agents", type=int, default=1, help="agent processes")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra WAYPOST_* setting for the platform's processes",
    )
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="also run with tracing on (every span exported to an OTLP receiver here) and "
        "print the ratio of the two rates",
    )
    args = parser.parse_args()
    args.logs.mkdir(parents=True, exist_ok=True)
    with embedded_stack() as stack:
        print(f"platform: {args.tasks} single-step workflows ...", file=sys.stderr)
        extra = dict(item.split("=", 1) for item in args.env)
        platform = platform_rate(
            stack,
            args.tasks,
            args.logs,
            orchestrators=args.orchestrators,
            agents=args.agents,
            extra_env=extra,
        )
        print(f"platform: {platform:,.0f} tasks/s", file=sys.stderr)
        traced: dict[str, float] = {}
        if args.tracing:
            traced = tracing_rate(stack, args, extra, platform)
        # A raw run takes well under a second, so one run is noisy: take the median of 3.
        print(f"raw: {args.tasks} messages through an echo pipeline, 3 runs ...", file=sys.stderr)
        raw_runs = sorted(raw_pipeline_rate(stack, args.tasks, args.logs) for _ in range(3))
        raw = raw_runs[1]
        print(
            "raw: " + ", ".join(f"{r:,.0f}" for r in raw_runs) + f" msgs/s (median {raw:,.0f})",
            file=sys.stderr,
        )
    result = {
        "tasks": args.tasks,
        "orchestrators": args.orchestrators,
        "agents": args.agents,
        "platform_tasks_per_s": round(platform, 1),
        "raw_msgs_per_s": round(raw, 1),
        "ratio": round(platform / raw, 3),
    }
    print(f"ratio: {result['ratio']}")
    if traced:
        result.update(traced)
        print(f"tracing on/off: {traced['traced_ratio_to_untraced']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
