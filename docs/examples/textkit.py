"""Two small agents used by docs/writing-an-agent.md: ``wordcount`` and ``headline``.

Run them with the stack:

    PYTHONPATH=docs/examples waypost up --agents textkit --playbooks docs/examples/playbooks
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from pydantic import BaseModel, Field

from waypost import AgentContext, AgentEnvironment, AgentResult, NonRetryableError, agent

_WORD = re.compile(r"[a-z']+")


class Text(BaseModel):
    """Input of ``wordcount``."""

    text: str = Field(min_length=1)
    language: str = "en"


class Counts(BaseModel):
    """Output of ``wordcount``."""

    words: int
    sentences: int
    top_words: list[str]


@agent("wordcount", version="1")
def wordcount(task: Text) -> Counts:
    """Count words and sentences; a bare return value means confidence 1.0."""
    if task.language != "en":
        # The same input will fail the same way: do not retry it.
        raise NonRetryableError(f"only English is supported, not {task.language!r}")
    words = _WORD.findall(task.text.lower())
    sentences = max(1, len(re.findall(r"[.!?]+", task.text)))
    top = [word for word, _ in Counter(words).most_common(3)]
    return Counts(words=len(words), sentences=sentences, top_words=top)


@dataclass(frozen=True)
class StopWords:
    """Words a headline leaves out; built once per worker by ``load_stop_words``."""

    words: frozenset[str]


class HeadlineRequest(BaseModel):
    """Input of ``headline``."""

    text: str
    top_words: list[str] = []
    style: str = "plain"


class Headline(BaseModel):
    """Output of ``headline``."""

    headline: str


@agent("headline", version="1", description="A one-line headline for a text.")
def headline(task: HeadlineRequest, ctx: AgentContext) -> AgentResult[Headline]:
    """Build a headline from the text's most frequent words."""
    stop = ctx.resource(StopWords).words
    keywords = [w for w in task.top_words if w not in stop]
    ctx.note(f"attempt {ctx.task.attempt} of step {ctx.task.step!r} in {ctx.task.workflow_id}")
    if not keywords:
        ctx.note("no keywords left after removing stop words; using the first words")
        keywords = task.text.split()[:3]
        confidence = 0.4
    else:
        confidence = 0.9
    title = " ".join(keywords).title()
    if task.style == "loud":
        title = title.upper() + "!"
    # Record what a model call would cost; here we count words instead.
    ctx.add_usage(input_tokens=len(task.text.split()), output_tokens=len(title.split()))
    return AgentResult(
        Headline(headline=title),
        confidence=confidence,
        reasoning=[f"keywords: {', '.join(keywords)}"],
    )


@headline.setup
def load_stop_words(env: AgentEnvironment) -> StopWords:
    """Runs once per worker process, before its first task."""
    return StopWords(frozenset({"the", "a", "an", "and", "of", "to", "is", "in", "it"}))
