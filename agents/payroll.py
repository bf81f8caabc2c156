"""The ``payroll.setup`` capability: the payroll record of a new hire.

The ``employee.onboarding`` playbook sends every record to a reviewer
(``requires_approval``); a salary outside the role's pay band also makes the agent say so
(``escalate``), so the reviewer sees why it deserves a second look. ``plan_payroll`` is
pure.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from agents.hires import Catalogue, NewHire, employee_id, read_catalogue
from agents.money import Money, cents, format_money
from waypost import AgentContext, AgentResult, agent

CUTOFF_DAYS = 10
"""A hire who starts fewer than this many days before the office's payday is first paid
the month after (payroll closes about then)."""


class PayrollRequest(NewHire):
    """Input of ``payroll.setup``: the hire and the agreed annual gross salary."""

    salary: Money = Field(gt=0)


class PayrollRecord(BaseModel):
    """Output of ``payroll.setup``: what a reviewer approves or edits."""

    employee_id: str
    name: str
    title: str
    department: str
    annual_salary: Money
    monthly_gross: Money
    currency: str
    within_band: bool
    first_payday: dt.date


def first_payday(start: dt.date, payday: int) -> dt.date:
    """The office's payday of the start month, or of the next month after the cut-off."""
    this_month = start.replace(day=payday)
    if (this_month - start).days >= CUTOFF_DAYS:
        return this_month
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return dt.date(year, month, payday)


def plan_payroll(request: PayrollRequest, catalogue: Catalogue) -> tuple[PayrollRecord, str | None]:
    """The record, and why a person must look at it beyond the usual approval (no I/O)."""
    role = catalogue.role(request.role)
    office = catalogue.office(request.office)
    band = role.pay_band
    within = band.min <= request.salary <= band.max
    record = PayrollRecord(
        employee_id=employee_id(request),
        name=request.name,
        title=role.title,
        department=role.department,
        annual_salary=cents(request.salary),
        monthly_gross=cents(request.salary / 12),
        currency=catalogue.currency,
        within_band=within,
        first_payday=first_payday(request.start_date, office.payday),
    )
    concern = None
    if not within:
        salary = format_money(request.salary, catalogue.currency)
        side = "above" if request.salary > band.max else "below"
        concern = (
            f"the salary of {salary} is {side} the {role.title} pay band "
            f"({format_money(band.min, catalogue.currency)} to "
            f"{format_money(band.max, catalogue.currency)}); confirm it was agreed"
        )
    return record, concern


@agent("payroll.setup", version="1", description="The payroll record of a new hire.")
def set_up_payroll(request: PayrollRequest, ctx: AgentContext) -> AgentResult[PayrollRecord]:
    """Plan the hire's payroll record; outside the pay band, ask for a closer look."""
    record, concern = plan_payroll(request, ctx.resource(Catalogue))
    ctx.note(
        f"{format_money(record.monthly_gross, record.currency)} a month, first paid "
        f"{record.first_payday}; {'within' if record.within_band else 'outside'} the pay band"
    )
    return AgentResult(record, escalate=concern)


set_up_payroll.setup(read_catalogue)
