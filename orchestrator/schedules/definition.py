"""A schedule as it is written, in a YAML file or an API request, and as it is used.

nightly-report:
  cron: "0 2 * * *"           # or 6 fields with leading seconds; or every: 30s
  timezone: Europe/Berlin      # IANA name; default UTC
  catch_up: one                # skip | one | all | {bounded: N}; default one
  goal:
    type: report.daily
    input: {day: "${fire_time}"}   # variables: fire_time, schedule, slot
  description: the daily report
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.schedules.policy import CatchUp
from orchestrator.schedules.timing import Cron, Every, Timing, zone
from waypost.durations import parse_duration
from waypost.triggers.mapping import GOAL_TYPE, GoalMapping

NAME = re.compile(r"^[a-z][a-z0-9._-]{0,62}$")
BAD_NAME = (
    "is not a schedule name: 1-63 lower-case letters, digits, '.', '_' or '-', starting "
    "with a letter"
)
VARIABLES = ("fire_time", "schedule", "slot")
_LONGEST_INTERVAL_S = 366 * 86400


class GoalSpec(BaseModel):
    """The goal each slot submits: a goal type and an input template."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(description="The goal type (a playbook's `type`).")
    input: dict[str, Any] = Field(
        default_factory=dict,
        description="The goal input; strings may use ${fire_time}, ${schedule} and ${slot}.",
    )

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        if not GOAL_TYPE.match(value):
            raise ValueError(
                f"{value!r} is not a goal type: lower-case letters, digits, '.', '_' or '-', "
                "starting with a letter"
            )
        return value

    @field_validator("input")
    @classmethod
    def _template(cls, value: dict[str, Any]) -> dict[str, Any]:
        for reference in GoalMapping("x", value).references():
            if reference not in VARIABLES:
                raise ValueError(
                    f"${{{reference}}} is not a schedule variable; a schedule has no message, "
                    "its variables are ${fire_time}, ${schedule} and ${slot}"
                )
        return value


class Bounded(BaseModel):
    """Catch-up of the latest N missed slots."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bounded: int = Field(ge=1, le=1000, description="How many of the latest missed slots fire.")


class ScheduleSpec(BaseModel):
    """A schedule's definition: exactly one of `cron` and `every`, and its goal."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cron: str | None = Field(
        None,
        description="A cron expression: 5 fields (minute hour day month weekday), or 6 "
        "with a leading seconds field.",
    )
    every: str | int | None = Field(
        None, description="A fixed interval of whole seconds, e.g. `30s`, `5m`, `1h`."
    )
    timezone: str = Field("UTC", description="The IANA time zone of `cron` and of ${fire_time}.")
    catch_up: Literal["skip", "one", "all"] | Bounded = Field(
        "one",
        description="Which slots missed while no orchestrator ran fire: `skip` (none), "
        "`one` (the latest), `all`, or `{bounded: N}` (the latest N).",
    )
    goal: GoalSpec
    description: str = Field("", max_length=500)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            Cron(value, ZoneInfo("UTC"))
        return value

    @field_validator("every")
    @classmethod
    def _every(cls, value: str | int | None) -> str | int | None:
        if value is None:
            return None
        seconds = parse_duration(value)
        if seconds < 1 or seconds != int(seconds) or seconds > _LONGEST_INTERVAL_S:
            raise ValueError(
                f"{value!r} is not a whole number of seconds from 1 s to 366 d; for longer "
                "periods write a cron expression"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        zone(value)
        return value

    @model_validator(mode="after")
    def _one_timing(self) -> ScheduleSpec:
        if (self.cron is None) == (self.every is None):
            raise ValueError("give exactly one of cron: (an expression) and every: (an interval)")
        return self


@dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule ready to fire."""

    name: str
    timing: Timing
    zone: ZoneInfo
    catch_up: CatchUp
    goal: GoalMapping
    spec: ScheduleSpec

    @classmethod
    def of(cls, name: str, spec: ScheduleSpec) -> Schedule:
        """The schedule a (validated) definition describes."""
        tz = zone(spec.timezone)
        timing: Timing
        if spec.cron is not None:
            timing = Cron(spec.cron, tz)
        else:
            assert spec.every is not None  # checked by the model
            timing = Every(int(parse_duration(spec.every)))
        catch_up = (
            CatchUp("bounded", spec.catch_up.bounded)
            if isinstance(spec.catch_up, Bounded)
            else CatchUp(spec.catch_up)
        )
        return cls(name, timing, tz, catch_up, GoalMapping(spec.goal.type, spec.goal.input), spec)

    @classmethod
    def read(cls, name: str, document: Mapping[str, Any]) -> Schedule:
        """The schedule of a stored definition (pydantic's ValidationError if it is wrong)."""
        return cls.of(name, ScheduleSpec.model_validate(dict(document)))

    def document(self) -> dict[str, Any]:
        """The definition as stored (JSON), without defaults left unset."""
        return self.spec.model_dump(mode="json", exclude_none=True)

    def variables(self, slot: datetime) -> dict[str, str]:
        """What the goal input template may use for one slot."""
        return {
            "fire_time": slot.astimezone(self.zone).isoformat(),
            "schedule": self.name,
            "slot": slot_id(slot),
        }

    def goal_input(self, slot: datetime) -> dict[str, Any]:
        """The goal input of one slot."""
        return self.goal.apply({}, self.variables(slot))

    def goal_id(self, slot: datetime) -> str:
        """The goal (and workflow) id of one slot: the same slot always makes the same id."""
        return f"schedule:{self.name}:{slot_id(slot)}"


def slot_id(slot: datetime) -> str:
    """A slot as it appears in goal ids and ${slot}: its UTC time, ``20250130T020000Z``."""
    return slot.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
