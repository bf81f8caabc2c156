"""Testing the textkit agents without Kafka: call Agent.run with a hand-made context."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from textkit import Headline, HeadlineRequest, StopWords, Text, headline, wordcount

from waypost import AgentContext, NonRetryableError, TaskInfo


def context(capability: str, resources: dict[type, object] | None = None) -> AgentContext:
    task = TaskInfo(
        workflow_id="wf-1",
        task_id="task-1",
        step=capability,
        capability=capability,
        attempt=1,
        goal_type="text.digest",
        deadline=datetime.now(UTC) + timedelta(seconds=30),
    )
    return AgentContext(task=task, resources=resources or {})


def test_wordcount_counts_words() -> None:
    result = wordcount.run(Text(text="One fish. Two fish."), context("wordcount"))
    assert result.output.words == 4
    assert result.confidence == 1.0  # a bare return value


def test_wordcount_refuses_other_languages() -> None:
    with pytest.raises(NonRetryableError):
        wordcount.run(Text(text="Bonjour", language="fr"), context("wordcount"))


def test_headline_uses_the_setup_resource() -> None:
    # run() does not call setup functions: hand the handler its resources yourself.
    ctx = context("headline", {StopWords: StopWords(frozenset({"the"}))})
    result = headline.run(HeadlineRequest(text="x", top_words=["the", "kafka"]), ctx)
    assert result.output == Headline(headline="Kafka")
    assert result.confidence == 0.9
    assert ctx.notes[0].startswith("attempt 1")
    assert ctx.input_tokens == 1
