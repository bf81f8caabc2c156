"""`python -m bench.chaos [SCENARIO...]`: faults against `waypost up`, counted from outside.

Each scenario run starts its own `waypost up` (fresh data directory, the chaos agents of
bench.chaos.ledger_agent and the chaos.pair playbook; planner-kill adds chaos.planned,
planned by a scripted model the harness serves), submits goals over the HTTP API at a
steady pace, strikes its faults, waits until every workflow finished or the deadline
passed, and prints what happened; definitions of every count are in bench/chaos/README.md.
Exit status 1 if any run lost a workflow, left one stuck, had a duplicate effect (or
another failure listed under the table), else 0.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence

from bench.chaos.model import PlanningCounts
from bench.chaos.report import RunResult, table
from bench.chaos.run import Options, run_once
from bench.chaos.scenarios import Scenario, scenarios

QUICK_WORKFLOWS = 200
QUICK_RATE = 20.0
QUICK_FREEZE_S = 10.0
QUICK_DEADLINE_S = 120.0
MODEL_OUTAGE_S = 5.0


def _parser(known: dict[str, Scenario]) -> argparse.ArgumentParser:
    listing = "\n".join(
        textwrap.fill(s.help, 88, initial_indent=f"  {name:<18} ", subsequent_indent=" " * 21)
        for name, s in known.items()
    )
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos",
        description=(
            "Inject faults into a running `waypost up` and count, from outside the\n"
            "platform, what was lost, duplicated or re-run.\n\n"
            "scenarios (all by default, in this order):\n" + listing
        ),
        epilog=textwrap.fill(
            "Counts (bench/chaos/README.md defines each): submitted = goals the API "
            "accepted; completed, lost (stuck, failed, missing) per GET "
            "/api/v1/workflows/{id}; duplicate effects, handler re-runs and retries from "
            "the chaos agents' ledger; recovery = seconds from a fault until every workflow "
            "accepted before it completed. Exit status 1 if any run failed.",
            88,
        )
        + "\n\nexample: python -m bench.chaos broker-restart --workflows 1000 --runs 2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "scenario", nargs="*", metavar="SCENARIO", help="scenarios to run: " + ", ".join(known)
    )
    parser.add_argument(
        "--workflows",
        type=int,
        metavar="N",
        help="workflows per run (default 3000; broker-restart runs 1000 and 3000, "
        "planner-kill 500)",
    )
    parser.add_argument(
        "--runs",
        type=int,
        metavar="N",
        help="runs per scenario and size (default 10 for broker-restart, 1 for the others)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=(
            f"smoke run: {QUICK_WORKFLOWS} workflows, 1 run, {QUICK_RATE:g} goals/s, "
            f"{QUICK_FREEZE_S:g} s freeze, {QUICK_DEADLINE_S:g} s deadline (options given "
            "explicitly still win)"
        ),
    )
    parser.add_argument(
        "--rate", type=float, metavar="GOALS_PER_S", help="submission pace (default 60)"
    )
    parser.add_argument(
        "--threads", type=int, default=6, metavar="N", help="submitting threads (default 6)"
    )
    parser.add_argument(
        "--deadline",
        type=float,
        metavar="S",
        help="seconds after the last fault (or last goal) for every workflow to finish "
        "(default 300)",
    )
    parser.add_argument(
        "--lease",
        type=float,
        metavar="S",
        help="step timeout (the lease counted from dispatch) instead of the playbook's 5 s; "
        "an agent drops a redelivered task whose lease ran out, so a longer lease lets "
        "re-runs after an agent kill show",
    )
    parser.add_argument(
        "--freeze", type=float, metavar="S", help="agent-freeze: seconds stopped (default 30)"
    )
    parser.add_argument(
        "--model-delay",
        type=_delay,
        default=(0.2, 0.5),
        metavar="S[-S]",
        help="planner-kill: how long the scripted model takes to answer a plan, fixed or "
        "uniform between two values (default 0.2-0.5)",
    )
    parser.add_argument(
        "--model-outage",
        type=float,
        metavar="S",
        help=f"planner-kill: seconds the model answers 503 (default {MODEL_OUTAGE_S:g})",
    )
    parser.add_argument(
        "--keep",
        choices=("never", "failed", "always"),
        default="failed",
        help="keep a run's data directory and logs (default: when the run failed)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for `waypost up` and its processes (repeatable)",
    )
    parser.add_argument(
        "--log-notes",
        type=int,
        default=12,
        metavar="N",
        help="how many grouped warning/error log lines to print per run (default 12)",
    )
    return parser


def _delay(text: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    try:
        span = (float(low), float(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write seconds, e.g. 0.3 or 0.2-0.5") from None
    if not 0 <= span[0] <= span[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: write MIN-MAX with 0 <= MIN <= MAX")
    return span


def _reasons(counts: dict[str, int]) -> str:
    return "".join(f", {n} {what}" for what, n in counts.items())


def _print_run(result: RunResult) -> None:
    print(
        f"\n== {result.scenario}, {result.size} workflows, run {result.run}/{result.runs} "
        f"({result.duration_s:g} s)"
    )
    print(
        f"   submitted {result.submitted} (POST retries {result.submit_retries}"
        f"{_reasons(result.submit_retry_reasons)})  completed {result.completed}  lost "
        f"{result.lost} (stuck {result.stuck}, failed {result.failed}, missing "
        f"{result.missing}; effect ran for {result.lost_effect_ran} of them)"
    )
    print(
        f"   duplicate effects {result.duplicate_effects}  handler re-runs "
        f"{result.handler_reruns}{_reasons(result.reruns_by_capability)}  retries "
        f"{result.retries} (executions of attempts > 1: {result.later_attempts})"
    )
    for fault in result.faults:
        recovery = "never" if fault.recovery_s is None else f"{fault.recovery_s:g} s"
        if fault.old_pid is None and fault.restart_s is not None:
            back = f"over after {fault.restart_s:g} s"
        elif fault.restart_s is None:
            back = f"pid {fault.old_pid} not back"
        elif fault.old_pid == fault.new_pid:
            back = f"pid {fault.old_pid} continued after {fault.restart_s:g} s"
        else:
            back = f"pid {fault.old_pid} -> {fault.new_pid} after {fault.restart_s:g} s"
        ready = "" if fault.ready_s is None else f", /readyz 200 after {fault.ready_s:g} s"
        print(
            f"   fault {fault.label} at {fault.at_s:g} s ({fault.submitted_before} accepted): "
            f"{back}{ready}; recovery {recovery}; {fault.reruns} handler re-runs after it"
            + (f"; {fault.note}" if fault.note else "")
        )
    if result.planning is not None:
        _print_planning(result.planning)
    print(
        "   Waypost processes no fault targeted that exited: "
        + (", ".join(result.exited) if result.exited else "none (same PIDs before and after)")
    )
    for problem in result.problems():
        print(f"   FAIL: {problem}")
    for example in result.stuck_examples:
        print(f"   not completed: {example}")
    for reason, n in result.failed_reasons.items():
        print(f"   failed ({n}): {reason}")
    for example in result.duplicate_effect_examples:
        print(f"   duplicate effect: {example}")
    for example in result.refused_examples:
        print(f"   refused: {example}")
    for line in result.supervisor:
        print(f"   waypost up: {line}")
    if result.log_notes:
        print("   log lines (warnings, errors, exceptions; grouped):")
        for note in result.log_notes:
            print(f"   {note}")
    print(result.json_line(), flush=True)


def _print_planning(p: PlanningCounts) -> None:
    print(
        f"   plans asked for {p.requests} for {p.workflows} workflows ({p.workflows_asked} "
        f"asked about): {p.answered} answered with the plan, {p.unavailable} answered 503"
        + (f", {p.cut} cut off" if p.cut else "")
        + (f", {p.unknown_goal} for no goal of this run" if p.unknown_goal else "")
    )
    why = ", ".join(f"{n} {cause}" for cause, n in sorted(p.repeats.items())) or "none"
    faults = "; ".join(f"{label}: {n}" for label, n in p.repeats_by_fault.items())
    print(
        f"   plans asked again for {p.asked_again} workflows (at most {p.max_per_workflow} "
        f"for one); requests after a workflow's first: {why}"
        + (f" (by fault: {faults})" if faults else "")
    )
    if p.replan_after_kill_s:
        low, high = p.replan_after_kill_s
        print(
            f"   a killed planner's workflows were asked for again {low:g}-{high:g} s after "
            f"the kill ({p.early_after_kill} before its claim ran out)"
        )
    if p.retry_after_503_s:
        low, high = p.retry_after_503_s
        print(
            f"   after a 503 a plan was asked for again {low:g}-{high:g} s later (the "
            f"planner's backoff; {p.early_after_503} sooner than 2 s)"
        )
    for example in p.unexplained_examples:
        print(f"   asked again without cause: {example}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenarios asked for; the exit status says whether any run failed."""
    probe = argparse.ArgumentParser(add_help=False)
    probe.add_argument("--freeze", type=float)
    probe.add_argument("--quick", action="store_true")
    probe.add_argument("--model-outage", type=float)
    early, _ = probe.parse_known_args(argv)
    freeze = early.freeze or (QUICK_FREEZE_S if early.quick else 30.0)
    known = scenarios(freeze, early.model_outage or MODEL_OUTAGE_S)
    parser = _parser(known)
    args = parser.parse_args(argv)
    unknown = [s for s in args.scenario if s not in known]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    env = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--env {item!r}: write NAME=VALUE")
        env[name] = value
    options = Options(
        rate=args.rate or (QUICK_RATE if args.quick else 60.0),
        threads=args.threads,
        deadline_s=args.deadline or (QUICK_DEADLINE_S if args.quick else 300.0),
        keep=args.keep,
        env=env,
        lease_s=args.lease,
        log_notes=args.log_notes,
        model_delay_s=args.model_delay,
    )
    results: list[RunResult] = []
    try:
        for name in args.scenario or list(known):
            scenario = known[name]
            sizes = (
                (args.workflows,)
                if args.workflows
                else (QUICK_WORKFLOWS,)
                if args.quick
                else scenario.sizes
            )
            runs = args.runs or (1 if args.quick else scenario.runs)
            for size in sizes:
                for run in range(1, runs + 1):
                    result = run_once(scenario, size, run, runs, options)
                    results.append(result)
                    _print_run(result)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        if not results:
            return 130
    print()
    table(results, sys.stdout)
    return 1 if any(r.problems() for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
