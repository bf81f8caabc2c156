"""The orchestrator's schedules thread, built from its settings."""

from __future__ import annotations

from sqlalchemy import Engine

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.publishing.outbox import OutboxPublisher
from orchestrator.publishing.records import Outgoing
from orchestrator.schedules import files
from orchestrator.schedules.firing import Scheduler
from waypost.events import utcnow
from waypost.outages import Outages
from waypost.settings import OrchestratorSettings


def scheduler(
    settings: OrchestratorSettings,
    *,
    engine: Engine,
    playbooks: PlaybookRegistry,
    outgoing: Outgoing,
    publisher: OutboxPublisher,
    outages: Outages,
) -> Scheduler:
    """The firing loop, with the schedule files of the playbook directories loaded now
    (ScheduleFileError, naming file, field and line, stops the start)."""
    return Scheduler(
        engine=engine,
        playbooks=playbooks,
        outgoing=outgoing,
        publisher=publisher,
        clock=utcnow,
        files=files.load_dirs(settings.playbook_dirs),
        poll_interval_s=settings.schedule_poll_interval_s,
        grace_s=settings.schedule_grace_s,
        outages=outages,
    )
