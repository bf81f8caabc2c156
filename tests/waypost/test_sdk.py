"""The agent SDK: what ``@agent`` accepts, and how a handler's return value is normalised."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from waypost import Agent, AgentContext, AgentResult, TaskInfo, agent
from waypost.errors import AgentDefinitionError


class Question(BaseModel):
    text: str


class Answer(BaseModel):
    text: str


class Other(BaseModel):
    value: int = 0


def _context(**resources: Any) -> AgentContext:
    task = TaskInfo(
        workflow_id="wf",
        task_id="t",
        step="answer",
        capability="answer",
        attempt=1,
        goal_type="g",
        deadline=datetime(2030, 1, 1, tzinfo=UTC),
    )
    return AgentContext(task=task, resources=dict(resources.get("resources", {})))


# --- declaring an agent -------------------------------------------------------------------


def test_a_typed_function_becomes_an_agent() -> None:
    @agent("answer", version="2.1", description="Answers.")
    def answer(question: Question, ctx: AgentContext) -> AgentResult[Answer]:
        return AgentResult(Answer(text=question.text))

    assert isinstance(answer, Agent)
    assert (answer.capability, answer.version, answer.description) == ("answer", "2.1", "Answers.")
    assert (answer.input_model, answer.output_model, answer.takes_context) == (
        Question,
        Answer,
        True,
    )
    assert repr(answer) == "Agent('answer', version='2.1')"


def test_the_description_defaults_to_the_docstrings_first_line() -> None:
    @agent("answer")
    def answer(question: Question) -> Answer:
        """Answers questions.

        At length.
        """
        return Answer(text="")

    assert answer.description == "Answers questions."
    assert answer.version == "1"
    assert answer.takes_context is False


@pytest.mark.parametrize(
    "returns",
    [Answer, AgentResult[Answer], AgentResult[Answer] | None, Answer | None],
    ids=["model", "result", "optional-result", "optional-model"],
)
def test_the_output_model_is_read_from_the_return_annotation(returns: Any) -> None:
    def answer(question: Question) -> Any:
        return Answer(text="")

    answer.__annotations__["return"] = returns

    assert agent("answer")(answer).output_model is Answer


@pytest.mark.parametrize(
    "capability", ["a", "triage", "knowledge.v2", "reply-draft", "x_1", "a" * 100]
)
def test_valid_capability_names(capability: str) -> None:
    assert agent(capability)(_plain_handler()).capability == capability


@pytest.mark.parametrize(
    "capability", ["", "Triage", "1st", "has space", "a/b", "-lead", "a" * 101, "ümlaut"]
)
def test_a_bad_capability_name_is_refused_with_the_rule(capability: str) -> None:
    with pytest.raises(AgentDefinitionError, match="must be lower-case letters") as caught:
        agent(capability)(_plain_handler())

    assert repr(capability) in str(caught.value)


def _plain_handler() -> Any:
    def handler(question: Question) -> Answer:
        return Answer(text=question.text)

    return handler


def test_an_unannotated_input_is_refused() -> None:
    def answer(question, ctx: AgentContext) -> Answer:  # type: ignore[no-untyped-def]
        return Answer(text="")

    with pytest.raises(AgentDefinitionError, match="answer: annotate its input with a pydantic"):
        agent("answer")(answer)


def test_an_input_that_is_not_a_model_is_refused() -> None:
    def answer(question: dict[str, str]) -> Answer:
        return Answer(text="")

    with pytest.raises(AgentDefinitionError, match="annotate its input with a pydantic model"):
        agent("answer")(answer)


@pytest.mark.parametrize("returns", [None, dict, str, AgentResult, list[Answer]])
def test_a_return_that_is_not_a_model_is_refused(returns: Any) -> None:
    def answer(question: Question) -> Any:
        return None

    answer.__annotations__["return"] = returns
    if returns is None:
        del answer.__annotations__["return"]

    with pytest.raises(AgentDefinitionError, match="annotate its return type with a pydantic"):
        agent("answer")(answer)


def test_too_many_parameters_are_refused() -> None:
    def answer(question: Question, ctx: AgentContext, extra: int) -> Answer:
        return Answer(text="")

    with pytest.raises(AgentDefinitionError, match=r"take \(input\) or \(input, ctx\), not 3"):
        agent("answer")(answer)


@pytest.mark.parametrize("second", [int, Question], ids=["int", "model"])
def test_a_second_parameter_annotated_as_something_else_is_refused(second: Any) -> None:
    # The runtime always passes an AgentContext as the second argument, whatever it says.
    def answer(question: Question, extra: Any) -> Answer:
        return Answer(text="")

    answer.__annotations__["extra"] = second

    with pytest.raises(AgentDefinitionError, match="answer"):
        agent("answer")(answer)


def test_a_context_parameter_may_be_annotated_or_not() -> None:
    def annotated(question: Question, context: AgentContext) -> Answer:
        return Answer(text="")

    def bare(question: Question, ctx) -> Answer:  # type: ignore[no-untyped-def]
        return Answer(text="")

    assert agent("answer")(annotated).takes_context is True
    assert agent("answer")(bare).takes_context is True


def test_no_parameters_are_refused() -> None:
    def answer() -> Answer:
        return Answer(text="")

    with pytest.raises(AgentDefinitionError, match="not 0 parameters"):
        agent("answer")(answer)


def test_an_unresolvable_annotation_is_refused_with_the_name() -> None:
    def answer(question: NotDefinedAnywhere) -> Answer:  # type: ignore[name-defined]  # noqa: F821
        return Answer(text="")

    with pytest.raises(AgentDefinitionError, match="answer: cannot resolve type hints") as caught:
        agent("answer")(answer)

    assert "NotDefinedAnywhere" in str(caught.value)


# --- running a handler --------------------------------------------------------------------


def test_a_bare_model_return_means_full_confidence() -> None:
    @agent("answer")
    def answer(question: Question) -> Answer:
        return Answer(text=question.text.upper())

    result = answer.run(Question(text="hi"), _context())

    assert result == AgentResult(Answer(text="HI"), confidence=1.0, reasoning=())


def test_an_agent_result_is_returned_as_is() -> None:
    @agent("answer")
    def answer(question: Question, ctx: AgentContext) -> AgentResult[Answer]:
        return AgentResult(Answer(text="x"), confidence=0.3, reasoning=["guess"])

    result = answer.run(Question(text="hi"), _context())

    assert (result.confidence, list(result.reasoning)) == (0.3, ["guess"])


def test_the_handler_receives_the_task_context() -> None:
    seen: list[AgentContext] = []

    @agent("answer")
    def answer(question: Question, ctx: AgentContext) -> Answer:
        seen.append(ctx)
        return Answer(text=ctx.task.workflow_id)

    context = _context()
    assert answer.run(Question(text=""), context).output == Answer(text="wf")
    assert seen == [context]


def test_returning_the_wrong_model_is_a_type_error() -> None:
    @agent("answer")
    def answer(question: Question) -> Answer:
        return Other()  # type: ignore[return-value]

    with pytest.raises(TypeError, match="'answer' returned Other, expected Answer"):
        answer.run(Question(text=""), _context())


@pytest.mark.parametrize("confidence", [-0.01, 1.01, float("nan")])
def test_confidence_outside_zero_to_one_is_refused(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence must be between 0 and 1"):
        AgentResult(Answer(text=""), confidence=confidence)


@pytest.mark.parametrize("confidence", [0.0, 0.5, 1.0])
def test_confidence_bounds_are_inclusive(confidence: float) -> None:
    assert AgentResult(Answer(text=""), confidence=confidence).confidence == confidence


# --- context helpers ----------------------------------------------------------------------


def test_notes_and_usage_accumulate() -> None:
    context = _context()

    context.note("first")
    context.note("second")
    context.add_usage(input_tokens=10, output_tokens=2, cost_usd=0.5)
    context.add_usage(input_tokens=5, cost_usd=0.25)

    assert context.notes == ["first", "second"]
    assert (context.input_tokens, context.output_tokens, context.cost_usd) == (15, 2, 0.75)


def test_a_resource_is_found_by_its_type() -> None:
    other = Other(value=3)

    assert _context(resources={Other: other}).resource(Other) is other


def test_a_missing_resource_says_how_to_register_one() -> None:
    with pytest.raises(LookupError, match="no resource of type Other; register one with @<agent>"):
        _context().resource(Other)


def test_setup_functions_are_registered_in_order() -> None:
    @agent("answer")
    def answer(question: Question) -> Answer:
        return Answer(text="")

    @answer.setup
    def first(environment: Any) -> int:
        return 1

    @answer.setup
    def second(environment: Any) -> str:
        return "2"

    assert answer.setups == [first, second]
    assert first(None) == 1
