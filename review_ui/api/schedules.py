"""``/api/v1/schedules``: schedules that submit goals (docs/triggers.md).

Reading takes any role; adding, pausing, resuming and removing take admin (the role
that submits goals), and each change is audited with the caller's name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from orchestrator.errors import InvalidGoalInput, UnknownGoalType
from orchestrator.schedules import manage, store
from orchestrator.schedules.definition import NAME, Schedule, ScheduleSpec
from orchestrator.schedules.errors import ScheduleConflict, ScheduleNotFound
from orchestrator.schedules.store import StoredSchedule
from review_ui.auth.principal import Principal, api_roles
from review_ui.auth.roles import READ, SUBMIT_GOALS
from review_ui.deps import ConnectionDep, StateDep
from review_ui.openapi import problems
from review_ui.problems import Problem
from waypost.events import utcnow
from waypost.events.storable import value_problem

router = APIRouter(tags=["schedules"])
Reader = Annotated[Principal, Depends(api_roles(READ))]
Changer = Annotated[Principal, Depends(api_roles(SUBMIT_GOALS))]

_NOT_FOUND = {404: "No schedule of that name."}


class ScheduleCreate(ScheduleSpec):
    """A schedule to add: its name and its definition, as in a schedules file."""

    name: str = Field(pattern=NAME.pattern, description="Unique among all schedules.")


class FiredSlotPublic(BaseModel):
    """A slot that fired."""

    slot: datetime
    workflow_id: str | None = Field(description="the workflow it made (none if it could not)")
    late: bool = Field(description="a missed slot fired by the catch-up policy")
    error: str | None = Field(description="why no goal was submitted")
    fired_at: datetime


class SchedulePublic(BaseModel):
    """A schedule, its state and when it fires next."""

    name: str
    source: str = Field(
        description="`file` (defined in YAML, synced by the orchestrators) or `api`"
    )
    file: str | None = Field(description="the YAML file of a file-defined schedule")
    definition: dict[str, Any] = Field(description="the schedule as written")
    paused: bool
    next_fire_at: datetime | None = Field(description="the next slot to come; none while paused")
    fired_through: datetime = Field(description="every slot up to here is decided")
    last_error: str | None = Field(description="why the last slot could not submit its goal")
    created_at: datetime
    updated_at: datetime
    updated_by: str
    recent_fires: list[FiredSlotPublic] | None = Field(
        None, description="the latest fired slots, newest first (only on GET of one schedule)"
    )

    @classmethod
    def of(cls, row: StoredSchedule, now: datetime) -> SchedulePublic:
        """The public view of a stored schedule."""
        return cls(
            name=row.name,
            source=row.source,
            file=row.file,
            definition=dict(row.definition),
            paused=row.paused,
            next_fire_at=manage.upcoming(row, now),
            fired_through=row.fired_through,
            last_error=row.last_error,
            created_at=row.created_at,
            updated_at=row.updated_at,
            updated_by=row.updated_by,
            recent_fires=None,
        )


class ScheduleListPublic(BaseModel):
    """Every schedule, by name."""

    items: list[SchedulePublic]


@router.get("/schedules", response_model=ScheduleListPublic, responses=problems(401, 429, 503))
def list_schedules(connection: ConnectionDep, _: Reader) -> ScheduleListPublic:
    """Every schedule, file- and API-defined, with its next fire time."""
    now = utcnow()
    return ScheduleListPublic(items=[SchedulePublic.of(r, now) for r in store.list_all(connection)])


@router.post(
    "/schedules",
    status_code=201,
    response_model=SchedulePublic,
    responses=problems(
        400,
        401,
        403,
        409,
        422,
        429,
        503,
        why={
            409: "A schedule of that name exists (file- or API-defined).",
            422: "A body that breaks the schema or a rule of the description: an invalid "
            "cron expression, interval or time zone, both or neither of `cron` and "
            "`every`, a template reference that is not a schedule variable, an unknown "
            "goal type (`known` lists them), or an input its playbook refuses "
            "(`errors`).",
        },
    ),
)
def add_schedule(
    body: ScheduleCreate, connection: ConnectionDep, state: StateDep, principal: Changer
) -> SchedulePublic:
    """Add a schedule; its first slot is the first after now.

    Rules the schema cannot state (each a 422): exactly one of `cron` (5 fields, or 6
    with leading seconds) and `every` (whole seconds, 1 s to 366 d); `timezone` an IANA
    name; input strings may use only `${fire_time}`, `${schedule}` and `${slot}`; the
    goal type must be a playbook's, and the input of the next slot must pass its input
    schema, contain no NUL character and no integer beyond 64 bits."""
    spec = ScheduleSpec.model_validate(body.model_dump(exclude={"name"}, exclude_unset=True))
    problem = value_problem(body.model_dump(mode="json"))
    if problem is not None:
        raise Problem(422, "Invalid schedule", f"the schedule cannot be stored: {problem}")
    schedule = Schedule.of(body.name, spec)
    now = utcnow()
    try:
        state.playbooks.check_goal(
            schedule.goal.goal_type, schedule.goal_input(schedule.timing.after(now))
        )
    except UnknownGoalType as exc:
        raise Problem(422, "Unknown goal type", str(exc), known=state.playbooks.types()) from None
    except InvalidGoalInput as exc:
        errors = [{"field": where, "message": message} for where, message in exc.problems]
        raise Problem(422, "Invalid goal input", str(exc), errors=errors) from None
    try:
        row = manage.add(connection, schedule=schedule, actor=principal.name, now=now)
    except ScheduleConflict as exc:
        raise Problem(409, "Schedule exists", str(exc)) from None
    return SchedulePublic.of(row, now)


@router.get(
    "/schedules/{name}",
    response_model=SchedulePublic,
    responses=problems(401, 404, 429, 503, why=_NOT_FOUND),
)
def get_schedule(name: str, connection: ConnectionDep, _: Reader) -> SchedulePublic:
    """One schedule with its latest fired slots."""
    row = store.get(connection, name=name)
    if row is None:
        raise Problem(404, "Schedule not found", str(ScheduleNotFound(name)))
    found = SchedulePublic.of(row, utcnow())
    found.recent_fires = [
        FiredSlotPublic(
            slot=f.slot, workflow_id=f.workflow_id, late=f.late, error=f.error, fired_at=f.fired_at
        )
        for f in store.fired(connection, schedule=name, limit=20)
    ]
    return found


@router.delete(
    "/schedules/{name}",
    status_code=204,
    response_class=Response,
    responses=problems(
        401,
        403,
        404,
        409,
        429,
        503,
        why={**_NOT_FOUND, 409: "The schedule is defined in a file: edit the file, or pause it."},
    ),
)
def remove_schedule(name: str, connection: ConnectionDep, principal: Changer) -> Response:
    """Remove an API-defined schedule (a file-defined one is removed from its file)."""
    try:
        manage.remove(connection, name=name, actor=principal.name, now=utcnow())
    except ScheduleNotFound as exc:
        raise Problem(404, "Schedule not found", str(exc)) from None
    except ScheduleConflict as exc:
        raise Problem(409, "Schedule defined in a file", str(exc)) from None
    return Response(status_code=204)


@router.post(
    "/schedules/{name}/pause",
    response_model=SchedulePublic,
    responses=problems(401, 403, 404, 429, 503, why=_NOT_FOUND),
)
def pause_schedule(name: str, connection: ConnectionDep, principal: Changer) -> SchedulePublic:
    """Pause a schedule, file- or API-defined: no slot fires until it is resumed."""
    now = utcnow()
    try:
        row = manage.pause(connection, name=name, actor=principal.name, now=now)
    except ScheduleNotFound as exc:
        raise Problem(404, "Schedule not found", str(exc)) from None
    return SchedulePublic.of(row, now)


@router.post(
    "/schedules/{name}/resume",
    response_model=SchedulePublic,
    responses=problems(401, 403, 404, 429, 503, why=_NOT_FOUND),
)
def resume_schedule(name: str, connection: ConnectionDep, principal: Changer) -> SchedulePublic:
    """Resume a paused schedule; slots that came while it was paused do not fire."""
    now = utcnow()
    try:
        row = manage.resume(connection, name=name, actor=principal.name, now=now)
    except ScheduleNotFound as exc:
        raise Problem(404, "Schedule not found", str(exc)) from None
    return SchedulePublic.of(row, now)
