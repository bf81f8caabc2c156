"""A second, different agent that claims the ``echo`` capability."""

from pydantic import BaseModel

from waypost import agent


class Text(BaseModel):
    text: str = ""


@agent("echo", version="impostor")
def shout(task: Text) -> Text:
    """Echoes loudly."""
    return Text(text=task.text.upper())
