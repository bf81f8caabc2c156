"""One scenario run: a fresh `waypost up`, paced goals, the faults, then the counts."""

from __future__ import annotations

import secrets
import shutil
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bench.chaos import logscan
from bench.chaos.faults import FaultDriver
from bench.chaos.ledger import LedgerReader, count
from bench.chaos.load import Submitter
from bench.chaos.model import Cause, ScriptedModel, planning_counts
from bench.chaos.report import FaultRecord, RunResult
from bench.chaos.scenarios import MODEL, Scenario
from bench.chaos.stack import StackFailed, Started, UpStack
from bench.chaos.tracker import STUCK, Finished, Tracker, Verdict


@dataclass(frozen=True)
class Options:
    """How every run is paced and judged."""

    rate: float = 60.0
    threads: int = 6
    deadline_s: float = 300.0
    progress_s: float = 5.0
    keep: str = "failed"
    """Keep the data directory: never, failed (runs that fail) or always."""
    env: Mapping[str, str] = field(default_factory=dict)
    lease_s: float | None = None
    """Step timeout instead of the playbook's 5 s."""
    log_notes: int = 12
    model_delay_s: tuple[float, float] = (0.2, 0.5)
    """How long the scripted model takes to answer (uniform between the two)."""
    llm_timeout_s: float = 5.0
    """WAYPOST_LLM_TIMEOUT_S of scenarios with the scripted model."""
    planner_lease_s: float = 10.0
    """WAYPOST_PLANNER_LEASE_S of those: a killed planner's claims run out this soon."""
    planner_poll_s: float = 0.2
    """WAYPOST_PLANNER_POLL_INTERVAL_S of those."""


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_once(
    scenario: Scenario,
    size: int,
    run: int,
    runs: int,
    options: Options,
    echo: Callable[[str], None] = _progress,
) -> RunResult:
    """Run ``scenario`` once with ``size`` workflows; never raises for a platform fault."""
    model = ScriptedModel(options.model_delay_s) if scenario.model else None
    env = dict(options.env)
    if model is not None:  # --env still wins
        planner = model.env(options.llm_timeout_s, options.planner_lease_s, options.planner_poll_s)
        env = {**planner, **env}
    stack = UpStack(env, options.lease_s, scenario.playbooks)
    if model is not None:
        model.log_path = stack.data_dir / "model.jsonl"
    result = RunResult(scenario.name, size, run, runs, str(stack.data_dir))
    tag = f"[{scenario.name} {size} run {run}/{runs}]"
    echo(f"{tag} starting waypost up in {stack.data_dir}")
    began = time.monotonic()
    try:
        if model is not None:
            model.start()
            echo(f"{tag} scripted model at {model.base_url}")
        started = stack.start()
        echo(f"{tag} running at {started.http_url} (waypost up pid {stack.pid})")
        _drive(scenario, size, stack, started, result, options, tag, echo, model)
    except StackFailed as exc:
        result.error = str(exc)
    except KeyboardInterrupt:
        result.error = "interrupted"
        raise
    except Exception as exc:  # a harness bug must not leave a stack running or stop the rest
        traceback.print_exc()
        result.error = f"harness error: {type(exc).__name__}: {exc}"
    finally:
        result.duration_s = round(time.monotonic() - began, 1)
        result.supervisor = stack.supervisor_lines({f.target for f in scenario.faults})
        echo(f"{tag} stopping waypost up")
        code = stack.stop()
        if model is not None:
            model.stop()
        if code not in (0, None) and not result.error:
            result.error = f"waypost up exited with {code} when stopped"
        notes = logscan.scan(stack.data_dir / "logs")
        for note in notes:
            for name, n in note.files.items():
                result.log_counts[name] = result.log_counts.get(name, 0) + n
        result.log_notes = [note.render() for note in notes[: options.log_notes]]
        failed = bool(result.problems())
        if options.keep == "always" or (options.keep == "failed" and failed):
            echo(f"{tag} data and logs kept in {stack.data_dir}")
        else:
            shutil.rmtree(stack.data_dir, ignore_errors=True)
    return result


def _drive(
    scenario: Scenario,
    size: int,
    stack: UpStack,
    started: Started,
    result: RunResult,
    options: Options,
    tag: str,
    echo: Callable[[str], None],
    model: ScriptedModel | None = None,
) -> None:
    baseline = stack.children()
    prefix = f"chaos-{scenario.name}-{secrets.token_hex(3)}"
    goal_ids = [f"{prefix}-{n:05d}" for n in range(size)]
    ledger = LedgerReader(started.ledger)
    tracker = Tracker(started.http_url, started.token, goal_type=scenario.goal_type)
    submitter = Submitter(
        started.http_url,
        started.token,
        goal_ids,
        rate=options.rate,
        threads=options.threads,
        give_up_s=options.deadline_s,
        goal_type=scenario.goal_type,
    )
    driver = FaultDriver(
        stack,
        started.http_url,
        started.ledger,
        scenario.faults,
        submitter,
        size,
        echo,
        model=model,
    )
    clock = time.monotonic()

    def progress(phase: str) -> None:
        accepted, retries = submitter.snapshot()
        finished = tracker.finished()
        done = Counter(f.status for f in finished.values())
        ledger.poll()
        counts = count(ledger.executions)
        echo(
            f"{tag} {time.monotonic() - clock:5.0f}s {phase}: submitted {accepted}/{size} "
            f"(post retries {retries})  completed {done['completed']}  failed {done['failed']}"
            f"  effects {len(counts.effected)}  re-runs {counts.handler_reruns}"
            f"  retries {counts.retries}"
            + ("" if model is None else f"  plans asked {len(model.requests())}")
        )

    tracker.start()
    submitter.start()
    driver.start()
    try:
        next_line = time.monotonic() + options.progress_s
        while not (submitter.done() and driver.done()):
            if not stack.alive():
                raise StackFailed("waypost up exited during the run")
            if time.monotonic() >= next_line:
                progress("load")
                next_line += options.progress_s
            time.sleep(0.2)
        # Every fault is over and every goal is in: the deadline counts from now.
        deadline = time.monotonic() + options.deadline_s
        while time.monotonic() < deadline:
            accepted = submitter.accepted()
            finished = tracker.finished()
            if all(i in finished for i in accepted):
                break
            if not stack.alive():
                raise StackFailed("waypost up exited during the run")
            if time.monotonic() >= next_line:
                progress("draining")
                next_line += options.progress_s
            time.sleep(0.5)
        progress("end")
        tracker.stop()
        completed = _judge(
            result, stack, started, submitter, tracker, ledger, driver.records, baseline
        )
        if model is not None:
            result.planning = planning_counts(
                model.requests(),
                goal_ids,
                completed,
                _causes(driver.records),
                lease_s=float(
                    stack.extra_env.get("WAYPOST_PLANNER_LEASE_S", options.planner_lease_s)
                ),
            )
    finally:
        submitter.stop()
        driver.stop()
        tracker.stop()
        tracker.close()


def _judge(
    result: RunResult,
    stack: UpStack,
    started: Started,
    submitter: Submitter,
    tracker: Tracker,
    ledger: LedgerReader,
    faults: list[FaultRecord],
    baseline: dict[str, int],
) -> set[str]:
    """Fill in ``result``'s counts; the workflows completed."""
    accepted = submitter.accepted()
    state = submitter.state
    result.submitted = len(accepted)
    result.not_accepted = len(state.gave_up) + len(state.refused)
    result.refused_examples = [f"{k}: {v}" for k, v in list(state.refused.items())[:3]]
    result.submit_retries = state.retries
    result.submit_retry_reasons = dict(state.retry_reasons)
    try:
        tracker.sweep()
    except Exception as exc:  # the API may still be down: the verdicts below retry
        tracker.last_error = f"{type(exc).__name__}: {exc}"
    finished = tracker.finished()
    budget_end = time.monotonic() + 120
    verdicts: dict[str, Verdict] = {}
    for workflow_id in accepted:
        known = finished.get(workflow_id)
        if known is not None and known.status == "completed":
            continue
        remaining = budget_end - time.monotonic()
        verdicts[workflow_id] = (
            tracker.verdict(workflow_id, timeout_s=min(10.0, remaining))
            if remaining > 0
            else Verdict(workflow_id, "unknown", "no time left to ask", "", None)
        )
    for verdict in verdicts.values():
        if verdict.status == "completed":
            finished[verdict.workflow_id] = Finished("completed", verdict.finished_at, None)
    ledger.poll()
    counts = count(ledger.executions, [f.at_time for f in faults])
    result.executions = counts.executions
    result.handler_reruns = counts.handler_reruns
    result.reruns_by_capability = counts.reruns_by_capability
    result.retries = counts.retries
    result.later_attempts = counts.later_attempts
    result.duplicate_effects = counts.duplicate_effects
    result.duplicate_effect_examples = counts.duplicate_effect_examples
    completed = {i for i in accepted if i in finished and finished[i].status == "completed"}
    lost = [v for v in verdicts.values() if v.status != "completed"]
    result.completed = len(completed)
    result.lost = len(lost)
    result.stuck = sum(v.status in STUCK for v in lost)
    result.failed = sum(v.status == "failed" for v in lost)
    result.missing = sum(v.status in ("missing", "unknown") for v in lost)
    result.failed_reasons = dict(
        Counter(v.reason or "?" for v in lost if v.status == "failed").most_common(5)
    )
    result.stuck_examples = [
        f"{v.workflow_id} {v.status} [{v.tasks}] effect "
        + ("ran" if v.workflow_id in counts.effected else "did not run")
        for v in lost
        if v.status != "failed"
    ][:5]
    result.lost_effect_ran = sum(v.workflow_id in counts.effected for v in lost)
    result.completed_without_effect = len(completed - counts.effected)
    result.faults = faults
    for fault, reruns in zip(faults, counts.reruns_after_fault, strict=True):
        fault.recovery_s = _recovery(fault, accepted, finished)
        fault.reruns = reruns
    after = stack.children()
    targets = {f.target for f in faults}
    for name, pid in sorted(baseline.items()):
        if name not in targets and after.get(name) != pid:
            now = after.get(name)
            result.exited.append(f"{name} (pid {pid} -> {now if now else 'not running'})")
    return completed


def _causes(faults: list[FaultRecord]) -> list[Cause]:
    """The faults that may make a planner ask for a workflow's plan again."""
    causes = []
    for fault in faults:
        if fault.target == "orchestrator" and fault.old_pid is not None:
            causes.append(Cause(fault.label, fault.at_time, fault.at_time, "planner"))
        elif fault.target == MODEL and fault.restart_s is not None:
            causes.append(
                Cause(fault.label, fault.at_time, fault.at_time + fault.restart_s, "model")
            )
    return causes


def _recovery(
    fault: FaultRecord, accepted: Mapping[str, float], finished: Mapping[str, Finished]
) -> float | None:
    """Seconds from the fault until every workflow accepted before it was completed."""
    latest = fault.at_time
    for workflow_id, at in accepted.items():
        if at >= fault.at_time:
            continue
        done = finished.get(workflow_id)
        if done is None or done.status != "completed" or done.finished_at is None:
            return None
        latest = max(latest, done.finished_at)
    return round(latest - fault.at_time, 1)
