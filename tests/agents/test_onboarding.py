"""The onboarding agents: catalogue, derived identifiers, the three set-up plans and the
welcome e-mail (all pure), then their handlers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from agents.hires import (
    Catalogue,
    NewHire,
    employee_id,
    load_catalogue,
    previous_working_day,
    read_catalogue,
    user_name,
)
from agents.payroll import PayrollRequest, first_payday, plan_payroll, set_up_payroll
from agents.provisioning import grant_access, plan_access, plan_it, provision_it
from agents.welcome import WelcomeRequest, compose_welcome, welcome
from tests.agents.environment import Environment, context
from waypost import NonRetryableError

PLAYBOOK = Path(__file__).resolve().parents[2] / (
    "orchestrator/playbooks/builtin/employee.onboarding.yaml"
)
CATALOGUE = load_catalogue()
HIRE = {
    "name": "Ada Lovelace",
    "personal_email": "Ada@Example.org",
    "role": "software_engineer",
    "office": "lisbon",
    "start_date": "2027-01-11",
}


def _hire(**overrides: object) -> NewHire:
    return NewHire.model_validate({**HIRE, **overrides})


def _payroll(**overrides: object) -> PayrollRequest:
    return PayrollRequest.model_validate({**HIRE, "salary": 84000, **overrides})


def test_the_playbook_offers_exactly_the_catalogue_roles_and_offices() -> None:
    schema = yaml.safe_load(PLAYBOOK.read_text())["input_schema"]["properties"]

    assert set(schema["role"]["enum"]) == set(CATALOGUE.roles)
    assert set(schema["office"]["enum"]) == set(CATALOGUE.offices)


def test_the_employee_id_is_the_same_for_the_same_person_and_start() -> None:
    assert employee_id(_hire()) == employee_id(_hire(personal_email=" ada@example.ORG "))
    assert employee_id(_hire()) != employee_id(_hire(start_date="2027-01-12"))
    assert employee_id(_hire()).startswith("emp-")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Ada Lovelace", "ada.lovelace"),
        ("José Álvarez-Pérez", "jose.alvarez-perez"),
        ("Grace Brewster Murray Hopper", "grace.hopper"),
        ("Cher", "cher"),
    ],
)
def test_user_name(name: str, expected: str) -> None:
    assert user_name(name) == expected


def test_a_name_without_latin_letters_cannot_make_a_user_name() -> None:
    with pytest.raises(NonRetryableError, match="Latin-script"):
        user_name("李小龙")


@pytest.mark.parametrize(
    ("day", "expected"),
    [("2027-01-11", "2027-01-08"), ("2027-01-12", "2027-01-11"), ("2027-01-10", "2027-01-08")],
)
def test_previous_working_day(day: str, expected: str) -> None:
    assert previous_working_day(dt.date.fromisoformat(day)) == dt.date.fromisoformat(expected)


def test_it_plan_follows_the_role() -> None:
    plan = plan_it(_hire(), CATALOGUE)

    role = CATALOGUE.roles["software_engineer"]
    assert (plan.username, plan.work_email) == ("ada.lovelace", "ada.lovelace@lumenhome.example")
    assert (plan.laptop, plan.groups) == (role.laptop, role.groups)
    assert plan.ready_by == dt.date(2027, 1, 8)  # the Friday before a Monday start


def test_the_badge_opens_the_office_and_the_role_zones() -> None:
    access = plan_access(_hire(role="device_technician", office="berlin"), CATALOGUE)

    assert access.zones == ["main-entrance", "floor-2", "bike-room", "warehouse", "test-lab"]
    assert (access.office, access.arrive_at) == ("Berlin office", "09:00")
    assert (
        access.badge_id
        == plan_access(_hire(role="device_technician", office="berlin"), CATALOGUE).badge_id
    )
    assert access.employee_id == employee_id(_hire())


@pytest.mark.parametrize("field", ["role", "office"])
def test_an_unknown_role_or_office_is_not_retried(field: str) -> None:
    with pytest.raises(NonRetryableError, match=f"unknown {field} 'moon'; known: "):
        plan_access(_hire(**{field: "moon"}), CATALOGUE)


@pytest.mark.parametrize(
    ("start", "payday", "expected"),
    [
        ("2027-01-11", 25, "2027-01-25"),  # 14 days before payday: paid this month
        ("2027-01-16", 25, "2027-02-25"),  # 9 days: after the cut-off
        ("2027-12-20", 25, "2028-01-25"),  # over the year end
    ],
)
def test_first_payday(start: str, payday: int, expected: str) -> None:
    assert first_payday(dt.date.fromisoformat(start), payday) == dt.date.fromisoformat(expected)


def test_payroll_within_the_band_needs_only_the_usual_approval() -> None:
    record, concern = plan_payroll(_payroll(), CATALOGUE)

    assert concern is None
    assert (record.annual_salary, record.monthly_gross, record.currency) == (
        Decimal("84000.00"),
        Decimal("7000.00"),
        "EUR",
    )
    assert (record.title, record.department, record.within_band) == (
        "Software Engineer",
        "Engineering",
        True,
    )
    assert record.first_payday == dt.date(2027, 1, 25)


@pytest.mark.parametrize(("salary", "side"), [(120000, "above"), (30000, "below")])
def test_payroll_outside_the_band_says_why_it_needs_a_closer_look(salary: int, side: str) -> None:
    result = set_up_payroll.run(
        _payroll(salary=salary), context("payroll.setup", {Catalogue: CATALOGUE})
    )

    assert not result.output.within_band
    assert result.escalate is not None
    assert f"is {side} the Software Engineer pay band (62,000.00 EUR to 98,000.00 EUR)" in (
        result.escalate
    )


def _welcome_request(**overrides: object) -> WelcomeRequest:
    hire = _hire()
    values: dict[str, object] = {
        "name": hire.name,
        "personal_email": hire.personal_email,
        "start_date": hire.start_date,
        "manager": "Grace Hopper",
        "it": plan_it(hire, CATALOGUE),
        "payroll": plan_payroll(_payroll(), CATALOGUE)[0],
        "facilities": plan_access(hire, CATALOGUE),
    }
    values.update(overrides)
    return WelcomeRequest.model_validate(values)


def test_the_welcome_says_where_when_who_and_how_from_the_three_steps() -> None:
    message = compose_welcome(_welcome_request(), "Lumen Home")

    assert message.to == "Ada@Example.org"
    assert message.subject == "Welcome to Lumen Home, Ada!"
    body = message.body
    assert body.startswith("Hi Ada,\n\n")
    assert "joining Engineering as a Software Engineer" in body
    assert "Monday 11 January 2027, come to the Lisbon office" in body
    assert "at 09:30 and collect your badge B-" in body
    assert "Grace Hopper, your manager, will meet you there." in body
    assert "ada.lovelace (ada.lovelace@lumenhome.example)" in body
    assert "ready by Friday 8 January 2027" in body
    assert "first salary is paid on Monday 25 January 2027" in body


def test_the_welcome_uses_what_a_reviewer_edited() -> None:
    edited = plan_payroll(_payroll(), CATALOGUE)[0].model_copy(
        update={"first_payday": dt.date(2027, 2, 25)}
    )

    body = compose_welcome(_welcome_request(payroll=edited, manager=None), "Lumen Home").body

    assert "paid on Thursday 25 February 2027" in body
    assert "your manager" not in body


def test_the_handlers_read_the_catalogue_in_setup() -> None:
    resources = {Catalogue: read_catalogue(Environment())}

    it = provision_it.run(_hire(), context("it.provision", resources))
    access = grant_access.run(_hire(), context("facilities.access", resources))
    message = welcome.run(_welcome_request(), context("onboarding.welcome", resources))

    assert it.output.username == "ada.lovelace"
    assert access.output.office == "Lisbon office"
    assert message.output.subject == "Welcome to Lumen Home, Ada!"
