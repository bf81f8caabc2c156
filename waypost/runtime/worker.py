"""Running an agent: task in, typed handler call, result out.

Each task becomes exactly one result event (``task.completed`` or ``task.failed``) on
the results topic. A batch's results are published and acknowledged before the consumer
loop commits the batch's offsets, so a worker that dies mid-batch has its tasks
delivered again rather than lost; the orchestrator applies a repeated result once.
With a database, each answer is recorded in the result ledger (``ledger``) and a task
delivered again after it was answered is answered from there, not run again.

Up to ``agent.concurrency`` tasks of a batch run at once, in threads; tasks with the
same record key (the task id) run one after another, in order. When ``stop`` is set no
more tasks start; those running get ``shutdown_grace_s`` to finish, their results are
published, and the batch's other tasks are handed back unfinished (left uncommitted, so
they are delivered again).

A task whose deadline passed gets no result (the orchestrator has dispatched it again),
unless it carries ``waypost-replay-of``: a dead letter an analyst replayed on purpose,
whose workflow waits for exactly that attempt.

With ``cancellations`` (``waypost.runtime.cancellations``), a task whose attempt is
known cancelled is not run either (no result; its offset is committed), and a running
handler's ``ctx.cancellation`` is set when its attempt is cancelled; what it returns
then is published as usual and ignored by the orchestrator.

With a ``governor`` (policies configured), ``ctx.act`` decides the handler's actions
through it (``waypost.governance.acting``); after the handler the task's usage beyond
what its actions reserved is recorded, and the governance events of the task go to the
governance topic in the same batch as its result, so they are acknowledged before the
offsets are committed. A handler that lets ``ApprovalRequired`` out fails the attempt
with the action it waits for (``TaskFailed.approval``): the orchestrator makes it an
escalation, and the approved task comes back with ``approvals``.

Running a handler is ``running``; what its run becomes, ``results``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pydantic

from waypost.bus.base import Publisher
from waypost.bus.dead_letters import REPLAY_OF_HEADER
from waypost.bus.loop import Delivery
from waypost.bus.records import OutgoingRecord
from waypost.errors import InvalidEvent, PublishError, UnexpectedEvent
from waypost.events import (
    AgentInfo,
    Codec,
    ErrorInfo,
    Event,
    Payload,
    TaskDispatched,
    TaskFailed,
    Usage,
    utcnow,
)
from waypost.governance import Governor, Spend
from waypost.memory import AgentMemory
from waypost.runtime.cancellations import Cancellations
from waypost.runtime.lanes import Lanes
from waypost.runtime.ledger import ResultLedger
from waypost.runtime.metrics import AgentMetrics
from waypost.runtime.recorded import Answer, Reply
from waypost.runtime.results import account, result_payload
from waypost.runtime.running import run_handler, task_context
from waypost.sdk import Agent
from waypost.telemetry import NO_TRACING, Tracing
from waypost.tools.governed import Toolbox
from waypost.topics import Topics

log = logging.getLogger(__name__)


@dataclass
class AgentWorker:
    """Turns task deliveries of one capability into published results.

    Results go out at least every ``publish_interval_s`` while a batch runs, so a slow
    handler does not hold back the results of the fast ones before it; a result the
    broker does not acknowledge is sent again (never recomputed) until it is, or until
    the shutdown grace ends: then the batch stays uncommitted and its tasks are
    delivered again. ``batch_size`` shrinks the batches of slow handlers to about
    ``batch_budget_s`` of work, so little is redone after a crash. ``completed`` and
    ``failed`` count the acknowledged results of each kind (for the agent registry).
    """

    agent: Agent[Any, Any]
    publisher: Publisher
    codec: Codec
    topics: Topics
    instance: str
    resources: dict[type, Any]
    memory: AgentMemory | None = None  # the agent's long-term memory (needs a database)
    governor: Governor | None = None  # decides ctx.act; None: no policies configured
    ledger: ResultLedger | None = None  # answers tasks delivered again; None: no database
    toolbox: Toolbox | None = None  # the MCP tool servers of ctx.tools; None: none configured
    cancellations: Cancellations | None = None  # attempts cancelled; None: not listening
    tracing: Tracing = field(default=NO_TRACING)
    metrics: AgentMetrics | None = None
    max_local_attempts: int = 1
    clock: Callable[[], datetime] = utcnow
    stop: threading.Event = field(default_factory=threading.Event)
    publish_interval_s: float = 1.0
    batch_budget_s: float = 10.0
    shutdown_grace_s: float = 10.0
    handled: int = 0
    completed: int = 0
    failed: int = 0
    answered_again: int = 0  # tasks delivered again and answered from the ledger
    not_run_cancelled: int = 0  # tasks not run: their attempt was cancelled already
    _seconds_per_task: float | None = None
    _grace_ends: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, deliveries: Sequence[Delivery]) -> list[Delivery] | None:
        """Run every task of a batch and publish the results (raises if not acknowledged);
        when stopping, returns the tasks that were not run to the end."""
        for delivery in deliveries:
            if not isinstance(delivery.event.payload, TaskDispatched):
                raise UnexpectedEvent(
                    f"agents consume task.dispatched events, not {delivery.event.ce_type}",
                    event_type=delivery.event.type,
                )
        if self.stop.is_set():
            return list(deliveries)  # none started: all of them come again
        deliveries, pending = self._answered_already(deliveries)
        lanes: Lanes[Delivery, list[Reply]] = Lanes(
            deliveries,
            key=lambda delivery: delivery.record.key,
            work=self._execute,
            threads=self.agent.concurrency,
            name=f"{self.agent.capability}-task",
            stop=self.stop,  # no task starts once stopping
        )
        error: BaseException | None = None
        last_publish = time.monotonic()
        while lanes.pending:
            left = self._grace_left()
            if left is not None:
                lanes.close()  # start no more tasks
                if left <= 0:
                    log.warning(
                        "%d %s task(s) still running when the shutdown grace (%g s) ended; "
                        "they are left uncommitted and will be delivered again",
                        lanes.running,
                        self.agent.capability,
                        self.shutdown_grace_s,
                    )
                    break
            for finished in lanes.take(0.1 if left is None else min(0.1, left)):
                if finished.error is not None:
                    error = error or finished.error
                    lanes.close()  # the loop handles the batch again, task by task
                elif finished.result is not None:
                    pending.extend(finished.result)
            due = time.monotonic() - last_publish >= self.publish_interval_s
            if error is None and pending and due:
                self._publish(pending)
                pending, last_publish = [], time.monotonic()
        if error is not None:
            raise error
        if pending:
            self._publish(pending)
        taken = lanes.taken()
        unfinished = [d for index, d in enumerate(deliveries) if index not in taken]
        return unfinished or None

    def _answered_already(
        self, deliveries: Sequence[Delivery]
    ) -> tuple[list[Delivery], list[Reply]]:
        """The deliveries still to run, and the recorded replies of the others (tasks
        delivered again after they were answered), to publish again. A dead letter an
        analyst replayed always runs: it is sent again on purpose, often edited."""
        if self.ledger is None:
            return list(deliveries), []
        attempts = [
            None if d.record.header(REPLAY_OF_HEADER) is not None else _attempt(d)
            for d in deliveries
        ]
        found = self.ledger.find([a for a in attempts if a is not None])
        if not found:
            return list(deliveries), []
        again = [
            reply
            for attempt in dict.fromkeys(attempts)
            if attempt is not None
            for reply in found.get(attempt, ())
        ]
        left = [d for d, attempt in zip(deliveries, attempts, strict=True) if attempt not in found]
        skipped = len(deliveries) - len(left)
        self.answered_again += skipped
        log.info(
            "%d %s task(s) delivered again were answered before; publishing their recorded "
            "results instead of running them again",
            skipped,
            self.agent.capability,
        )
        return left, [
            Reply(r.record, "governance" if r.kind == "governance" else "repeated") for r in again
        ]

    def batch_size(self, limit: int) -> int:
        """How many tasks to poll: fewer when handlers are slow."""
        if not self._seconds_per_task:
            return limit
        work_s = self._seconds_per_task / self.agent.concurrency
        return max(1, min(limit, int(self.batch_budget_s / work_s)))

    @property
    def _who(self) -> AgentInfo:
        return AgentInfo(
            capability=self.agent.capability, version=self.agent.version, instance=self.instance
        )

    def _grace_left(self) -> float | None:
        """None until ``stop`` is set; then the seconds left of the shutdown grace."""
        if not self.stop.is_set():
            return None
        if self._grace_ends is None:
            self._grace_ends = time.monotonic() + self.shutdown_grace_s
        return self._grace_ends - time.monotonic()

    def _publish(self, results: list[Reply]) -> None:
        delay = 0.5
        while True:
            outcome = self.publisher.send([result.record for result in results])
            kinds = [results[index].kind for index in outcome.delivered]
            self.failed += kinds.count("failed")
            self.completed += kinds.count("completed")
            self.handled += kinds.count("failed") + kinds.count("completed")
            if not outcome.failed:
                return
            results = [results[index] for index in sorted(outcome.failed)]
            log.warning(
                "%d result(s) not acknowledged (%s); sending them again",
                len(results),
                next(iter(outcome.failed.values())),
            )
            left = self._grace_left()
            if left is None:
                self.stop.wait(delay)  # wakes at once when stopping; then the grace counts
            elif left > 0:
                time.sleep(min(delay, left))
            else:
                raise PublishError(
                    f"stopping with {len(results)} result(s) unacknowledged; their tasks "
                    "will be delivered again"
                )
            delay = min(delay * 2, 10.0)

    def _observe(self, seconds: float) -> None:
        with self._lock:
            previous = self._seconds_per_task
            self._seconds_per_task = seconds if previous is None else 0.8 * previous + 0.2 * seconds

    def _execute(self, delivery: Delivery) -> list[Reply]:
        event, record = delivery.event, delivery.record
        task = event.payload
        assert isinstance(task, TaskDispatched)
        with self.tracing.processing(
            record.topic,
            traceparent=event.traceparent,
            tracestate=event.tracestate,
            attributes={
                "messaging.consumer.group.name": self.topics.agent_group(task.capability),
                "messaging.message.id": event.id,
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
                "waypost.workflow.id": task.workflow_id,
                "waypost.task.id": task.task_id,
                "waypost.task.step": task.step,
                "waypost.task.attempt": task.attempt,
                "waypost.agent.version": self.agent.version,
            },
        ):
            return self._run_task(delivery, task)

    def _run_task(self, delivery: Delivery, task: TaskDispatched) -> list[Reply]:
        if self._cancelled_already(task):
            return []
        deadline = datetime.fromisoformat(task.deadline)
        replay_of = delivery.record.header(REPLAY_OF_HEADER)
        if deadline < self.clock():
            if replay_of is None:
                log.info(
                    "dropping %s attempt %d of workflow %s: its deadline passed; the "
                    "orchestrator has re-dispatched it",
                    task.step,
                    task.attempt,
                    task.workflow_id,
                )
                return []
            # A dead letter replayed on purpose: its workflow waits for this very attempt.
            log.info(
                "running %s attempt %d of workflow %s past its deadline: it is a replay of "
                "dead letter %s",
                task.step,
                task.attempt,
                task.workflow_id,
                replay_of.decode(errors="replace"),
            )
        context = task_context(
            self.agent,
            task,
            deadline,
            resources=self.resources,
            memory=self.memory,
            governor=self.governor,
            toolbox=self.toolbox,
            tracing=self.tracing,
        )
        watching = (
            self.cancellations.watching(task.task_id, task.attempt, context.cancellation)
            if self.cancellations is not None
            else nullcontext()
        )
        started = time.perf_counter()
        with watching:
            outcome = run_handler(self.agent, task, context, attempts=self.max_local_attempts)
        handler_s = time.perf_counter() - started
        self._observe(handler_s)
        governance = context.governance
        if governance is not None:
            used = Spend(context.input_tokens + context.output_tokens, context.cost_usd)
            governance.settle(used, at=self.clock())
        usage = Usage(
            input_tokens=context.input_tokens,
            output_tokens=context.output_tokens,
            cost_usd=context.cost_usd,
            duration_ms=(time.perf_counter() - started) * 1000,
        )
        try:
            payload = result_payload(self._who, task, outcome, context.notes, usage)
            encoded = self._encode(delivery, payload)
        except (InvalidEvent, pydantic.ValidationError) as exc:
            # A result that breaks its schema (the handler's doing): report it as a
            # failure rather than let the task be dead-lettered without an answer.
            error = ErrorInfo(type="InvalidOutput", message=str(exc)[:2000], retryable=False)
            payload = result_payload(self._who, task, error, context.notes, Usage())
            encoded = self._encode(delivery, payload)
        account(self._who, task, outcome, payload, context, usage, self.metrics)
        record = OutgoingRecord(self.topics.results, encoded.key, encoded.value, encoded.headers)
        results = [self._governance(delivery, e) for e in governance.events] if governance else []
        results.append(Reply(record, "failed" if isinstance(payload, TaskFailed) else "completed"))
        if self.ledger is not None:
            # Before this lane takes another task: a crash from now on answers this
            # task from the ledger instead of running it again.
            answer = Answer(task.task_id, task.attempt, task.capability, tuple(results))
            self.ledger.record(answer, handler_s=handler_s)
        return results

    def _cancelled_already(self, task: TaskDispatched) -> bool:
        """Whether this attempt's workflow was cancelled before it started (then it is
        not run: nobody waits for its result)."""
        if self.cancellations is None or not self.cancellations.is_cancelled(
            task.task_id, task.attempt
        ):
            return False
        with self._lock:
            self.not_run_cancelled += 1
        log.info(
            "not running %s attempt %d of workflow %s: the workflow was cancelled",
            task.step,
            task.attempt,
            task.workflow_id,
        )
        return True

    def _governance(self, delivery: Delivery, payload: Payload) -> Reply:
        encoded = self._encode(delivery, payload)
        record = OutgoingRecord(self.topics.governance, encoded.key, encoded.value, encoded.headers)
        return Reply(record, "governance")

    def _encode(self, delivery: Delivery, payload: Payload) -> Any:
        traceparent, tracestate = self.tracing.outgoing(
            (delivery.event.traceparent, delivery.event.tracestate)
        )
        event = Event(
            payload,
            source=f"waypost/agent/{self.agent.capability}",
            subject=getattr(payload, "task_id", None),
            traceparent=traceparent,
            tracestate=tracestate,
        )
        return self.codec.encode(event)


def _attempt(delivery: Delivery) -> tuple[str, int]:
    task = delivery.event.payload
    assert isinstance(task, TaskDispatched)
    return task.task_id, task.attempt
