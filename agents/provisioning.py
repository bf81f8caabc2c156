"""The ``it.provision`` and ``facilities.access`` capabilities: accounts, laptop and badge
for a new hire, planned from the role and office catalogue.

The reference agents return the plan (what to create, by when); they create nothing.
``plan_it`` and ``plan_access`` are pure.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from pydantic import BaseModel

from agents.hires import (
    Catalogue,
    NewHire,
    employee_id,
    previous_working_day,
    read_catalogue,
    user_name,
)
from waypost import AgentContext, agent


class ItAccounts(BaseModel):
    """Output of ``it.provision``."""

    employee_id: str
    username: str
    work_email: str
    laptop: str
    groups: list[str]
    ready_by: dt.date
    """Accounts and laptop are ready the working day before the start date."""


class BuildingAccess(BaseModel):
    """Output of ``facilities.access``."""

    employee_id: str
    badge_id: str
    office: str
    address: str
    zones: list[str]
    collect_from: str
    """Where the badge waits on the first day."""
    arrive_at: str
    """When the first day starts (local time)."""


def plan_it(hire: NewHire, catalogue: Catalogue) -> ItAccounts:
    """The user name, mailbox, laptop and groups of the hire's role (no I/O)."""
    role = catalogue.role(hire.role)
    username = user_name(hire.name)
    return ItAccounts(
        employee_id=employee_id(hire),
        username=username,
        work_email=f"{username}@{catalogue.email_domain}",
        laptop=role.laptop,
        groups=role.groups,
        ready_by=previous_working_day(hire.start_date),
    )


def plan_access(hire: NewHire, catalogue: Catalogue) -> BuildingAccess:
    """The badge: the office's zones plus the role's, collected at reception (no I/O)."""
    role = catalogue.role(hire.role)
    office = catalogue.office(hire.office)
    staff = employee_id(hire)
    number = int(hashlib.sha256(staff.encode()).hexdigest()[:8], 16) % 1_000_000
    zones = [*office.zones, *(z for z in role.zones if z not in office.zones)]
    return BuildingAccess(
        employee_id=staff,
        badge_id=f"B-{number:06d}",
        office=office.name,
        address=office.address,
        zones=zones,
        collect_from=office.reception,
        arrive_at=office.first_day_time,
    )


@agent("it.provision", version="1", description="Accounts, mailbox and laptop for a new hire.")
def provision_it(hire: NewHire, ctx: AgentContext) -> ItAccounts:
    """Plan the hire's accounts and laptop from their role."""
    plan = plan_it(hire, ctx.resource(Catalogue))
    ctx.note(f"{len(plan.groups)} group(s) of role {hire.role!r}; ready by {plan.ready_by}")
    return plan


@agent("facilities.access", version="1", description="Building badge and zones for a new hire.")
def grant_access(hire: NewHire, ctx: AgentContext) -> BuildingAccess:
    """Plan the hire's badge from their office and role."""
    access = plan_access(hire, ctx.resource(Catalogue))
    ctx.note(f"zones: {', '.join(access.zones)}")
    return access


provision_it.setup(read_catalogue)
grant_access.setup(read_catalogue)
