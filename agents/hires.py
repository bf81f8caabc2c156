"""New hires: the shipped role and office catalogue, and what every onboarding agent
derives from a hire the same way (employee id, user name, dates).

The catalogue (``agents/data/onboarding_catalogue.json``) says, per role, the laptop,
groups, building zones and pay band, and per office its address, zones and payday.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from typing import TypeVar

from pydantic import BaseModel, Field

from agents.data import read_text
from agents.money import Money
from waypost import AgentEnvironment, NonRetryableError

_T = TypeVar("_T")


class PayBand(BaseModel):
    """The annual salaries a role is normally paid, in the catalogue's currency."""

    min: Money
    max: Money


class Role(BaseModel):
    """What a role needs on day one, and what it pays."""

    title: str
    department: str
    laptop: str
    groups: list[str]
    zones: list[str]
    pay_band: PayBand


class Office(BaseModel):
    """Where a hire works."""

    name: str
    address: str
    reception: str
    first_day_time: str
    zones: list[str]
    payday: int = Field(ge=1, le=28)


class Catalogue(BaseModel):
    """The company's roles and offices."""

    company: str
    email_domain: str
    currency: str
    roles: dict[str, Role]
    offices: dict[str, Office]

    def role(self, name: str) -> Role:
        """The role called ``name``; an unknown one cannot succeed on retry."""
        return _known(self.roles, name, "role")

    def office(self, name: str) -> Office:
        """The office called ``name``; an unknown one cannot succeed on retry."""
        return _known(self.offices, name, "office")


class NewHire(BaseModel):
    """Who is starting, as every onboarding step receives it."""

    name: str = Field(min_length=1, max_length=200)
    personal_email: str = Field(min_length=3, max_length=320)
    role: str
    office: str
    start_date: dt.date


def employee_id(hire: NewHire) -> str:
    """The same id for the same person and start date, whichever agent asks."""
    key = f"{hire.personal_email.strip().lower()}\n{hire.start_date.isoformat()}"
    return "emp-" + hashlib.sha256(key.encode()).hexdigest()[:8]


def user_name(name: str) -> str:
    """``José Álvarez-Pérez`` as ``jose.alvarez-perez``: first and last name, ASCII."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    words = re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", folded)
    if not words:
        raise NonRetryableError(f"cannot make a user name from {name!r}; give a Latin-script name")
    return words[0] if len(words) == 1 else f"{words[0]}.{words[-1]}"


def first_name(name: str) -> str:
    """The first word of a name, as a greeting uses it."""
    return name.split()[0]


def previous_working_day(day: dt.date) -> dt.date:
    """The last Monday-to-Friday before ``day``."""
    day -= dt.timedelta(days=1)
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


def long_date(day: dt.date) -> str:
    """``Tuesday 1 December 2026``."""
    return f"{day:%A} {day.day} {day:%B %Y}"


def load_catalogue() -> Catalogue:
    """The shipped role and office catalogue."""
    return Catalogue.model_validate_json(read_text("onboarding_catalogue.json"))


def read_catalogue(env: AgentEnvironment) -> Catalogue:
    """Setup function of every onboarding agent: read the catalogue once per worker."""
    return load_catalogue()


def _known(entries: dict[str, _T], name: str, what: str) -> _T:
    try:
        return entries[name]
    except KeyError:
        known = ", ".join(sorted(entries))
        raise NonRetryableError(f"unknown {what} {name!r}; known: {known}") from None
