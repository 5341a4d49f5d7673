"""A model step's conversation with a model that misbehaves the way small local models do.

Cut-off answers are asked again with more room or for less, and never pasted
back; answers that are not content are re-asked; the conversation does not grow
round after round; a step that fails still counts every call and keeps every
answer in the run's ledger; the step's timeout bounds the conversation.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from functools import cache

import pytest

from agentflows.tasks.artifacts import Attempt, Draft, Usage
from agentflows.tasks.errors import ModelCallError, ModelOutputError
from agentflows.tasks.ledger import run_ledger
from agentflows.tasks.llm import ModelReply, ModelRequest
from agentflows.tasks.modelcall import REASK_TEMPERATURE, SHORTER, compose_messages, estimated_tokens
from agentflows.tasks.specs import GenerateSpec
from agentflows.tasks.steps import template_variables, write_draft
from tests.offline_steps import CONTEXT, OfflineRun, offline_run
from tests.providers import using

BODY = "Tides rise and fall twice a day. The Moon pulls the oceans toward it, and the Sun helps a little."
RUNAWAY = '{"body": "Tides are fascinating. ' + "It is a topic that has been studied by many people. " * 40


@dataclass
class Answer:
    text: str = ""
    finish_reason: str = "stop"
    fails: bool = False


@dataclass
class SmallModel:
    """A provider that answers from a script, with finish reasons and failures; records every request."""

    answers: list[Answer]
    context_window: int = 8192
    requests: list[ModelRequest] = field(default_factory=list)
    name: str = "small"
    default_model: str = "small-1"

    async def complete(self, request: ModelRequest) -> ModelReply:
        self.requests.append(request)
        answer = self.answers.pop(0)
        usage = Usage(calls=1, prompt_tokens=100, completion_tokens=len(answer.text) // 4)
        if answer.fails:
            attempt = Attempt(model="small-1", raw=answer.text, error="timed out")
            raise ModelCallError("small model timed out", usage=usage, attempts=(attempt,))
        return ModelReply(
            text=answer.text, provider="small", model="small-1", usage=usage, finish_reason=answer.finish_reason
        )


@cache
def ebook() -> OfflineRun:
    return offline_run("ebook", chapters=1)


def spec_of(run: OfflineRun, **changes: object) -> GenerateSpec:
    model = run.specs.generate.model.model_copy(update={"provider": "small", "max_tokens": 1000})
    return run.specs.generate.model_copy(update={"model": model, **changes})


def draft(model: SmallModel, **changes: object) -> Draft:
    run = ebook()
    with using(small=lambda settings: model):
        return asyncio.run(write_draft(spec_of(run, **changes), run.inputs, CONTEXT, run.plan, run.plan.items[0].key))


CHAPTER = (
    "Twice a day the sea creeps up the beach and slips away again. The Moon pulls on the whole Earth, "
    "but it pulls hardest on the ocean that faces it, so the water there heaps up into a bulge. "
    "On the far side a second bulge forms, because the solid Earth is pulled away from the water behind it. "
    "As our planet turns, each coast passes through both bulges, and that is why most places see two high "
    "tides and two low tides in a little more than a day. The Sun adds its own smaller pull: when Sun and "
    "Moon line up we get spring tides, and when they stand at right angles the neap tides are weak. "
    "The shape of a coast matters too: a narrow bay can funnel the water into a tide many metres high, "
    "while an open island in the middle of the ocean may see the sea rise by less than a metre. "
    "Sailors, fishers and people who gather shellfish read tide tables to know when the water will turn."
)


def long_body() -> str:
    return CHAPTER


def test_a_cut_off_answer_gets_more_room_and_is_never_pasted_back() -> None:
    cut = json.dumps({"body": long_body()})[:400]
    model = SmallModel([Answer(cut, "length"), Answer(json.dumps({"body": long_body()}))])

    result = draft(model)

    first, second = model.requests
    assert second.settings.max_tokens == 2 * first.settings.max_tokens
    assert second.messages == first.messages  # the same question, with room: the cut-off text is not sent back
    assert (result.provenance.attempts[0].error or "").startswith("the answer was cut off at its token limit")


def test_a_runaway_answer_is_asked_for_less_not_given_more_room() -> None:
    model = SmallModel([Answer(RUNAWAY, "length"), Answer(json.dumps({"body": long_body()}))])

    draft(model)

    first, second = model.requests
    assert second.settings.max_tokens == first.settings.max_tokens
    assert len(second.messages) == len(first.messages)  # noted under the prompt: roles still alternate
    assert second.messages[-1].content == f"{first.messages[-1].content}\n\n{SHORTER}"
    assert all("studied by many people" not in m.content for m in second.messages)


def test_with_no_room_left_in_the_window_a_cut_off_answer_is_asked_for_less() -> None:
    model = SmallModel([Answer('{"body": "Tides rise', "length"), Answer(json.dumps({"body": long_body()}))])
    run = ebook()
    variables = template_variables(run.specs.generate.agent, run.inputs, CONTEXT, run.plan, run.plan.items[0])
    schema = run.specs.generate.draft_schema
    prompt = estimated_tokens(compose_messages(run.specs.generate, variables, schema), schema)
    model.context_window = prompt + 1100  # the prompt plus 1,000 answer tokens fit, not much more

    draft(model)

    assert model.requests[1].settings.max_tokens == 1000 and model.requests[1].messages[-1].content.endswith(SHORTER)


def test_an_answer_that_repeats_its_description_is_re_asked_and_the_conversation_does_not_grow() -> None:
    run = ebook()
    description = run.specs.generate.draft_schema["properties"]["body"]["description"]
    echo = json.dumps({"body": description})
    too_short, short = (Answer(json.dumps({"body": body})) for body in ("Too short.", BODY))
    model = SmallModel([Answer(echo), too_short, short, Answer(json.dumps({"body": long_body()}))])

    result = draft(model, reasks=3)

    assert [a.method for a in result.provenance.attempts] == [None, None, None, "reasked+strict"]
    assert "repeats the field's description" in (result.provenance.attempts[0].error or "")
    assert [len(r.messages) for r in model.requests[1:]] == [4, 4, 4]  # base + last answer + its problems
    assert model.requests[2].messages[2].content == json.dumps({"body": "Too short."})
    assert [r.round for r in model.requests] == [0, 1, 2, 3]  # a provider with a fixed seed draws anew per round


def test_a_model_that_gives_back_the_answer_it_is_shown_is_asked_afresh() -> None:
    run = ebook()
    description = run.specs.generate.draft_schema["properties"]["body"]["description"]
    echo = json.dumps({"body": description})
    model = SmallModel([Answer(echo), Answer(echo), Answer(echo), Answer(json.dumps({"body": long_body()}))])

    result = draft(model, reasks=3)

    first, conversed, *afresh = model.requests
    assert [m.role for m in conversed.messages] == ["system", "user", "assistant", "user"]
    for request in afresh:  # the same problems twice: the prompt again, the problems under it, nothing to copy
        assert [m.role for m in request.messages] == ["system", "user"]
        assert request.messages[-1].content.startswith(first.messages[-1].content)
        assert "An earlier answer to this could not be used:\n- " in request.messages[-1].content
        assert "repeats the field's description" in request.messages[-1].content
        assert all(echo not in m.content for m in request.messages)
    assert result.provenance.attempts[-1].method == "reasked+strict"
    assert result.provenance.attempts[-1].prompt.startswith("An earlier answer to this could not be used:")


def test_a_failed_step_counts_every_call_and_keeps_every_answer_in_the_ledger() -> None:
    model = SmallModel([Answer("Sure! Here it is."), Answer("partial", fails=True)])
    ebook()  # planned outside the ledger

    with run_ledger() as ledger, pytest.raises(ModelCallError):
        draft(model)

    (account,) = ledger.steps.values()
    assert account.usage.calls == 2 and account.usage.prompt_tokens == 200
    assert [a.raw for a in account.attempts] == ["Sure! Here it is.", "partial"]
    assert account.error == f"{account.label}: small model timed out"


def test_a_rejected_step_is_marked_failed_in_the_ledger() -> None:
    model = SmallModel([Answer("no JSON here")] * 3)
    ebook()

    with run_ledger() as ledger, pytest.raises(ModelOutputError):
        draft(model)

    (account,) = ledger.failures()
    assert account.usage.calls == 3 and len(account.attempts) == 3
    assert account.error is not None and "no answer fit the schema after 3 attempts" in account.error


def test_the_steps_timeout_bounds_the_conversation() -> None:
    model = SmallModel([Answer("no JSON here")] * 3)

    with pytest.raises(ModelCallError, match=r"the step's timeout of 1e-06 s ran out"):
        draft(model, timeout_seconds=0.000001)

    assert model.requests == []
    model = SmallModel([Answer(json.dumps({"body": long_body()}))])
    draft(model, timeout_seconds=60)
    assert model.requests[0].time_limit is not None and 0 < model.requests[0].time_limit <= 60


def test_a_stream_stopped_as_runaway_is_asked_for_less() -> None:
    model = SmallModel([Answer(RUNAWAY[:1600], "runaway"), Answer(json.dumps({"body": long_body()}))])

    draft(model)

    assert model.requests[1].messages[-1].content.endswith(SHORTER)
    assert model.requests[1].settings.max_tokens == model.requests[0].settings.max_tokens


def test_a_reask_is_a_hotter_draw_than_a_cold_step() -> None:
    run = ebook()
    cold = run.specs.generate.model.model_copy(update={"provider": "small", "max_tokens": 1000, "temperature": 0.2})
    model = SmallModel([Answer(json.dumps({"body": "Too short."})), Answer(json.dumps({"body": long_body()}))])

    with using(small=lambda settings: model):
        spec = run.specs.generate.model_copy(update={"model": cold})
        asyncio.run(write_draft(spec, run.inputs, CONTEXT, run.plan, run.plan.items[0].key))

    first, second = (r.settings.temperature for r in model.requests)
    assert (first, second) == (0.2, REASK_TEMPERATURE)  # the same answer again could not pass
