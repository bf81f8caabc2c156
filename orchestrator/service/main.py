"""The orchestrator process: wiring of the intake, relay and reconciler threads."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from orchestrator.cascades import service as cascade_service
from orchestrator.cascades.outgoing import CascadeOutgoing
from orchestrator.planning.service import planning_loop
from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.publishing.outbox import OutboxPublisher
from orchestrator.quality.metrics import quality_gauges
from orchestrator.quality.watch import drift_watch
from orchestrator.schedules.service import scheduler
from orchestrator.service.applier import Applier
from orchestrator.service.intake import Intake
from orchestrator.service.metrics import OrchestratorMetrics, StoreGauges
from orchestrator.service.observations import NO_OBSERVER, Observer
from orchestrator.service.reconciler import Reconciler
from orchestrator.service.relay import Relay
from orchestrator.workflow.breaker import BreakerPolicy
from orchestrator.workflow.retry import RetryPolicy
from waypost import service
from waypost.bus.base import Bus
from waypost.bus.loop import ConsumerLoop
from waypost.errors import BusError, TopicError
from waypost.events import default_codec, utcnow
from waypost.outages import Outages
from waypost.settings import OrchestratorSettings, load
from waypost.telemetry import NO_TRACING, Tracing
from waypost.topics import Topics

log = logging.getLogger(__name__)


def workers(
    settings: OrchestratorSettings,
    *,
    bus: Bus,
    engine: Engine,
    stop: threading.Event,
    tracing: Tracing = NO_TRACING,
    metrics: Observer = NO_OBSERVER,
    outages: Outages | None = None,
) -> dict[str, Callable[[], None]]:
    """The orchestrator's threads, ready to run; they ride out database and broker
    outages in place, reporting them to ``outages``."""
    outages = outages or Outages()
    playbooks = PlaybookRegistry.load(settings.playbook_dirs)
    topics = Topics(settings.namespace)
    codec = default_codec()
    specs = topics.specs(playbooks.capabilities(), settings)
    specs += [s for s in cascade_service.topic_specs(playbooks, topics, settings) if s not in specs]
    admin = bus.admin()
    try:
        admin.ensure_topics(specs)
    except TopicError as exc:
        log.warning("%s; the reconciler will try again", exc)
    # Triggered workflows' events carry their cascade depth (orchestrator/cascades/).
    outgoing = CascadeOutgoing(topics, codec, tracing=tracing)
    applier = Applier(
        playbooks=playbooks,
        outgoing=outgoing,
        random=random.Random().random,  # noqa: S311 - retry jitter, not secrecy
        retry=RetryPolicy(settings.retry_backoff_initial_s, settings.retry_backoff_max_s),
        breakers=BreakerPolicy(
            failure_threshold=settings.breaker_failure_threshold,
            window_s=settings.breaker_window_s,
            open_s=settings.breaker_open_s,
        ),
    )
    publisher = OutboxPublisher(engine, bus.publisher("orchestrator"), defer_removal=True)
    intake = Intake(
        engine=engine,
        applier=applier,
        publisher=publisher,
        clock=utcnow,
        metrics=metrics,
        group=topics.orchestrator_group,
    )
    consumer = ConsumerLoop(
        subscriber=bus.subscriber(
            topics.orchestrator_group,
            [topics.goals, topics.results, topics.decisions],
            "orchestrator",
        ),
        dead_letters=bus.publisher("orchestrator-dlq"),
        handler=intake.handle,
        group=topics.orchestrator_group,
        codec=codec,
        stop=stop,
        batch_size=settings.consume_batch_size,
        max_local_attempts=settings.consumer_max_attempts,
        transient=(OperationalError, BusError),
        on_idle=intake.idle,
        outages=outages,
    )
    relay = Relay(
        engine=engine,
        publisher=bus.publisher("orchestrator-relay"),
        clock=utcnow,
        grace_s=settings.relay_grace_s,
        batch_size=settings.relay_batch_size,
        poll_interval_s=settings.relay_poll_interval_s,
        outages=outages,
    )
    reconciler = Reconciler(
        engine=engine,
        applier=applier,
        admin=admin,
        topic_specs=specs,
        publisher=publisher,
        clock=utcnow,
        interval_s=settings.reconcile_interval_s,
        replan_after_s=settings.goal_replan_after_s,
        topic_check_interval_s=settings.topic_check_interval_s,
        metrics=metrics,
        outages=outages,
    )
    log.info(
        "orchestrator ready: playbooks %s; consuming %s, %s as %s",
        ", ".join(playbooks.types()),
        topics.goals,
        topics.results,
        topics.orchestrator_group,
    )
    threads = {
        "intake": consumer.run,
        "relay": lambda: relay.run(stop),
        "reconciler": lambda: reconciler.run(stop),
    }
    cascade = cascade_service.consumer_loop(
        settings,
        playbooks=playbooks,
        bus=bus,
        engine=engine,
        outgoing=outgoing,
        stop=stop,
        outages=outages,
    )
    if cascade is not None:
        threads["cascades"] = cascade.run
    schedules = scheduler(
        settings,
        engine=engine,
        playbooks=playbooks,
        outgoing=outgoing,
        publisher=publisher,
        outages=outages,
    )
    threads["schedules"] = lambda: schedules.run(stop)
    # Decision quality: announces agent versions reviewers reject or edit too often.
    quality = drift_watch(
        settings, engine=engine, outgoing=outgoing, publisher=publisher, outages=outages
    )
    threads["quality"] = lambda: quality.run(stop)
    planning = planning_loop(
        settings,
        engine=engine,
        playbooks=playbooks,
        applier=applier,
        publisher=publisher,
        admin=admin,
        metrics=metrics,
        outages=outages,
    )
    if planning is not None:
        # Each thread plans one workflow at a time: a model answers in seconds.
        for number in range(1, settings.planner_concurrency + 1):
            threads[f"planner-{number}"] = lambda: planning.run(stop)
    return threads


SERVICE = service.Service("orchestrator")


def main(settings: OrchestratorSettings | None = None) -> int:
    """Run the orchestrator until SIGTERM/SIGINT."""
    settings = settings or load(OrchestratorSettings)

    def build(process: service.Started) -> dict[str, Callable[[], None]]:
        metrics = OrchestratorMetrics(process.telemetry.registry)
        process.telemetry.registry.register(StoreGauges(process.engine, utcnow))
        process.telemetry.registry.register(quality_gauges(settings, process.engine))
        return workers(
            settings,
            bus=process.bus(),
            engine=process.engine,
            stop=process.stop,
            tracing=process.telemetry.tracing,
            metrics=metrics,
            outages=process.outages,
        )

    return service.run(SERVICE, settings, build)
