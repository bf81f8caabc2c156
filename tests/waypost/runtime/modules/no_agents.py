"""A module that defines no agents (loading it is a configuration error)."""

from pydantic import BaseModel


class NotAnAgent(BaseModel):
    text: str = ""
