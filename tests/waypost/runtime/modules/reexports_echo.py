"""Imports the test echo agent and adds one of its own: re-exporting is not a clash."""

from pydantic import BaseModel

from tests.support.agents import echo
from waypost import agent

__all__ = ["count", "echo"]


class Text(BaseModel):
    text: str = ""


class Length(BaseModel):
    length: int


@agent("count")
def count(task: Text) -> Length:
    """Counts characters."""
    return Length(length=len(task.text))
