"""The ``onboarding.welcome`` capability: the welcome e-mail, once IT, payroll and
facilities are set up.

``compose_welcome`` is pure: everything it says comes from the three steps' outputs.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from agents.hires import Catalogue, first_name, long_date, read_catalogue
from agents.payroll import PayrollRecord
from agents.provisioning import BuildingAccess, ItAccounts
from waypost import AgentContext, agent


class WelcomeRequest(BaseModel):
    """Input of ``onboarding.welcome``: the hire and what the three set-up steps produced."""

    name: str = Field(min_length=1)
    personal_email: str = Field(min_length=3)
    start_date: dt.date
    manager: str | None = None
    it: ItAccounts
    payroll: PayrollRecord
    facilities: BuildingAccess


class WelcomeMessage(BaseModel):
    """Output of ``onboarding.welcome``: the e-mail as it would be sent."""

    to: str
    subject: str
    body: str


def compose_welcome(request: WelcomeRequest, company: str) -> WelcomeMessage:
    """The welcome e-mail to the hire's personal address (no I/O)."""
    it, pay, access = request.it, request.payroll, request.facilities
    first_day = (
        f"On your first day, {long_date(request.start_date)}, come to the {access.office} "
        f"({access.address}) at {access.arrive_at} and collect your badge {access.badge_id} "
        f"from {access.collect_from}."
    )
    if request.manager:
        first_day += f" {' '.join(request.manager.split())}, your manager, will meet you there."
    paragraphs = [
        f"Hi {first_name(request.name)},",
        f"Welcome to {company}! We're delighted you're joining {pay.department} as a {pay.title}.",
        first_day,
        f"You'll sign in as {it.username} ({it.work_email}); your accounts and your "
        f"{it.laptop} will be ready by {long_date(it.ready_by)}.",
        f"You're on the payroll as {pay.employee_id}; your first salary is paid on "
        f"{long_date(pay.first_payday)}.",
        f"See you soon,\nThe People Team, {company}",
    ]
    return WelcomeMessage(
        to=request.personal_email,
        subject=f"Welcome to {company}, {first_name(request.name)}!",
        body="\n\n".join(paragraphs),
    )


@agent("onboarding.welcome", version="1", description="The welcome e-mail for a new hire.")
def welcome(request: WelcomeRequest, ctx: AgentContext) -> WelcomeMessage:
    """Write the welcome e-mail from the set-up steps' outputs."""
    return compose_welcome(request, ctx.resource(Catalogue).company)


welcome.setup(read_catalogue)
