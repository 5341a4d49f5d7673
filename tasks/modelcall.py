"""One model step's conversation: compose the prompt, call, read the answer, re-ask, degrade or refuse.

    compose   system = base layer + domain layer; user = step prompt (+ the knowledge passages, unless a
              template places them) + a guide to the answer's fields
    check     the prompt plus room for the answer must fit the model's context window (before any call)
    call      the provider (which retries transport failures and falls back to other models itself),
              within what is left of the step's timeout
    read      strict JSON → extracted → repaired, then the schema, the content checks and the builder's
    re-ask    with the exact problems, at most `reasks` times: the rejected answer and what was wrong
              with it; once a re-asked answer has the same problems again, afresh — the prompt with the
              problems noted under it and no answer to copy (small models copy the turn they are shown);
              an answer cut off at its token limit (or a stream the client stopped because it kept
              repeating itself) is asked again with more room (when the window allows and it was not
              running away) or for a shorter answer, and never sent back
    then      degrade to plain text where the definition allows it, or raise `ModelOutputError`

Every answer is kept as an `Attempt` in the artifact's provenance, and every
call is written to the run's ledger as it is made (`tasks.ledger`), so a step
that fails still counts and keeps what it got. Nothing that fails the schema
leaves this module.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from pydantic import JsonValue

from agentflows.tasks.answers import is_runaway
from agentflows.tasks.artifacts import Attempt, Usage
from agentflows.tasks.errors import ModelCallError, ModelOutputError, PromptTooLarge
from agentflows.tasks.knowledge.retrieved import reference_section
from agentflows.tasks.ledger import RunLedger, run_ledger
from agentflows.tasks.llm.base import RUNAWAY, Message, ModelProvider, ModelReply, ModelRequest
from agentflows.tasks.llm.structured import FIELD_GUIDE_HEADING, field_guide, shape_instruction
from agentflows.tasks.parsing import MAX_ANSWER_CHARS, Adjust, Check, Reading, plain_text, read_answer, schema_problems
from agentflows.tasks.prompts import render, template_hashes
from agentflows.tasks.runtime import current_runtime
from agentflows.tasks.specs import ModelStepSpec

CHARS_PER_TOKEN = 3.0
"""Conservative characters-per-token estimate for the context-window check (real tokenizers average ~4)."""
RAW_KEPT = 2_000
PROMPT_KEPT = 8_000
"""Most characters of the message an attempt answered kept with it (`Attempt.prompt`)."""
REASK_ECHO = 1_500
"""Most characters of a rejected answer quoted back when re-asking (a cut-off answer is never quoted)."""
CUT_OFF = ("length", RUNAWAY)
"""Finish reasons of an answer that did not end on its own: at `max_tokens`, or stopped repeating itself."""
GROWTH = 2
"""A cut-off answer is asked again with up to this many times its `max_tokens`, as the window allows."""
REASK_TEMPERATURE = 0.8
"""Least temperature of a re-ask: near 0 a model answers the same again (SmolLM2-135M gave one lesson plan
three times in a row at the step's 0.2, so its re-asks could not pass)."""


@dataclass(frozen=True)
class ModelAnswer:
    """A usable answer, what it cost over all attempts, and its history."""

    payload: dict[str, Any]
    reply: ModelReply
    usage: Usage
    attempts: tuple[Attempt, ...]
    warnings: tuple[str, ...]
    template_hashes: dict[str, str]


def compose_messages(spec: ModelStepSpec, variables: Mapping[str, Any], schema: dict[str, Any]) -> list[Message]:
    """The system and user messages of the first call.

    The user message ends with a guide to the answer's fields: what each holds and
    how long it is. The JSON's shape itself is the provider's to add when its
    server does not hold the answer to the schema (`tasks.llm.wire`).
    """
    system = "\n\n".join(render(spec.templates, name, variables).strip() for name in spec.system)
    user = render(spec.templates, spec.prompt, variables).strip()
    if spec.append_knowledge and variables.get("knowledge"):
        user += "\n\n" + reference_section(variables["knowledge"])
    return [Message(role="system", content=system), Message(role="user", content=f"{user}\n\n{field_guide(schema)}")]


def estimated_tokens(messages: list[Message], schema: dict[str, Any] | None = None) -> int:
    """Upper-end estimate of the tokens `messages` take (with the JSON's shape, when a provider adds it)."""
    shape = len(shape_instruction(schema)) if schema else 0
    return int((sum(len(m.content) + 8 for m in messages) + shape) / CHARS_PER_TOKEN) + 1


def check_fits(
    label: str, messages: list[Message], max_tokens: int, provider: ModelProvider, schema: dict[str, Any] | None = None
) -> None:
    """Raise `PromptTooLarge` when the prompt plus `max_tokens` exceeds the provider's context window."""
    window = getattr(provider, "context_window", None)
    needed = estimated_tokens(messages, schema)
    if window and needed + max_tokens > window:
        raise PromptTooLarge(
            f"{label}: the prompt needs about {needed:,} tokens plus {max_tokens:,} for the answer, more than the "
            f"{window:,}-token context window of provider {provider.name!r}; shorten the inputs or lower max_tokens"
        )


async def ask_model(
    spec: ModelStepSpec,
    *,
    label: str,
    variables: Mapping[str, Any],
    context: dict[str, JsonValue],
    schema: dict[str, Any],
    check: Check | None = None,
    follow_up: Sequence[Message] = (),
    adjust: Adjust | None = None,
) -> ModelAnswer:
    """Get an answer that satisfies `schema` and `check`, or raise `ModelOutputError` (or `ModelCallError`).

    `follow_up` turns come after the composed prompt (a revision request shows the earlier answer and
    what to change in it); `adjust` rewrites a schema-valid answer before `check`, each change a warning."""
    provider = await current_runtime().provider(spec.model)
    with run_ledger() as ledger:
        return await _Conversation(spec, provider, ledger, label, schema, check, adjust).run(
            compose_messages(spec, variables, schema), context, follow_up
        )


class _Conversation:
    """The rounds of one step's conversation, and what they cost."""

    def __init__(
        self,
        spec: ModelStepSpec,
        provider: ModelProvider,
        ledger: RunLedger,
        label: str,
        schema: dict[str, Any],
        check: Check | None,
        adjust: Adjust | None = None,
    ) -> None:
        self.spec, self.provider, self.ledger, self.label = spec, provider, ledger, label
        self.schema, self.check, self.adjust = schema, check, adjust
        self.attempts: list[Attempt] = []
        self.usage = Usage()
        self.deadline = time.monotonic() + spec.timeout_seconds if spec.timeout_seconds else None

    async def run(
        self, base: list[Message], context: dict[str, JsonValue], first: Sequence[Message] = ()
    ) -> ModelAnswer:
        hashes = template_hashes(self.spec.templates)
        max_tokens = self.spec.model.max_tokens
        base = [*base, *first]  # turns every round keeps after the prompt (a revision request)
        turns = _Reask()
        # What each attempt answers: the prompt without its field guide, or the last follow-up turn.
        asked = first[-1].content if first else base[-1].content.partition(f"\n\n{FIELD_GUIDE_HEADING}")[0]
        for round_ in range(self.spec.reasks + 1):
            settings = self.spec.model.model_copy(update={"max_tokens": max_tokens, **_hotter(self.spec, round_)})
            messages = turns.messages(base)
            check_fits(self.label, messages, max_tokens, self.provider, self.schema)
            request = ModelRequest(
                label=self.label,
                messages=tuple(messages),
                settings=settings,
                output_schema=self.schema,
                context=context,
                round=round_,
                time_limit=self._time_left(),
            )
            reply = await self._call(request)
            truncated = reply.finish_reason in CUT_OFF
            reading = read_answer(reply.text, self.schema, self.check, truncated=truncated, adjust=self.adjust)
            self._keep(_attempt(reply, reading, asked, reasked=round_ > 0))
            if reading.payload is not None:
                return ModelAnswer(reading.payload, reply, self.usage, tuple(self.attempts), reading.adjusted, hashes)
            if truncated:
                grown = self._more_room(messages, max_tokens, reply)
                max_tokens = grown or max_tokens
                turns.cut_off(more_room=grown is not None)
            else:
                turns.rejected(reply, reading)
            asked = turns.asked or asked
        return self._last_resort(reply, reading, hashes)

    async def _call(self, request: ModelRequest) -> ModelReply:
        if request.time_limit is not None and request.time_limit <= 0:
            self._fail(ModelCallError(f"{self.label}: the step's timeout of {self.spec.timeout_seconds:g} s ran out"))
        try:
            reply = await self.provider.complete(request)
        except ModelCallError as exc:
            self.usage = self.usage + (exc.usage or Usage())
            self.ledger.spend(self.label, exc.usage or Usage(), exc.attempts)
            self.attempts.extend(exc.attempts)
            out_of_time = self.deadline is not None and time.monotonic() >= self.deadline
            limit = f" ({self.spec.timeout_seconds:g} s)" if out_of_time else ""
            said = str(exc) if str(exc).startswith(f"{self.label}:") else f"{self.label}: {exc}"
            # A provider's word on whether the step may pass on another try stands (the OpenAI client's is no
            # once it has used its own tries), unless the step is out of time.
            again = exc.retryable and not out_of_time
            self._fail(ModelCallError(f"{said}{limit}", usage=exc.usage, attempts=exc.attempts, retryable=again))
        self.usage = self.usage + reply.usage
        self.ledger.spend(self.label, reply.usage, reply.failed_attempts)
        self.attempts.extend(reply.failed_attempts)
        return reply

    def _keep(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)
        self.ledger.spend(self.label, Usage(), (attempt,))

    def _fail(self, error: Exception) -> NoReturn:
        self.ledger.fail(self.label, str(error))
        raise error

    def _time_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def _more_room(self, messages: list[Message], max_tokens: int, reply: ModelReply) -> int | None:
        """A larger `max_tokens` for a cut-off answer, or None when it ran away or the window has no room."""
        if reply.finish_reason == RUNAWAY or is_runaway(reply.text):
            return None
        window = getattr(self.provider, "context_window", None) or max_tokens * GROWTH
        room = window - estimated_tokens(messages, self.schema)
        grown = min(max_tokens * GROWTH, room)
        return grown if grown > max_tokens * 1.25 else None

    def _last_resort(self, reply: ModelReply, reading: Reading, hashes: dict[str, str]) -> ModelAnswer:
        degraded = _degraded(self.spec, reply, self.schema)
        if degraded is not None:
            attempt = Attempt(
                model=reply.model, raw=reply.text[:RAW_KEPT], method="degraded", finish_reason=reply.finish_reason
            )
            self._keep(attempt)
            tries = self.spec.reasks + 1
            warning = f"degraded: no answer fit the schema after {tries} attempts; kept the last as plain text"
            return ModelAnswer(degraded, reply, self.usage, tuple(self.attempts), (warning,), hashes)
        return self._fail(
            ModelOutputError(
                f"{self.label}: no answer fit the schema after {self.spec.reasks + 1} attempts "
                f"({self.spec.reasks} re-asks); last problem: {reading.problems[0]}"
            )
        )


SHORTER = (
    "Your answer was cut off at its length limit before it was complete. Answer again, shorter: "
    "keep every text field brief, say each thing once, and close the JSON object."
)


@dataclass
class _Reask:
    """What the next round asks after an unusable answer, added to the step's prompt (`base`)."""

    follow_up: list[Message] = field(default_factory=list)
    """Turns after the prompt: the rejected answer and its problems."""
    note: str | None = None
    """Or a note under the prompt: the problems of an answer not shown (a fresh ask), or a request for less."""
    problems: tuple[str, ...] = ()
    fresh: bool = False

    def messages(self, base: list[Message]) -> list[Message]:
        return _noted(base, self.note) + self.follow_up

    @property
    def asked(self) -> str | None:
        """What the next attempt answers, when it is more than the prompt."""
        return self.follow_up[-1].content if self.follow_up else self.note

    def cut_off(self, *, more_room: bool) -> None:
        """A cut-off answer is never sent back: the same again with more room, else asked for less."""
        self.follow_up = []
        self.note = self.note if more_room else SHORTER

    def rejected(self, reply: ModelReply, reading: Reading) -> None:
        """The answer and its problems; once a re-ask has the same problems again, the problems alone from then
        on: a model that copies the turn it is shown (SmolLM2-135M gave back the plan it was shown on every
        re-ask) draws anew from a prompt with nothing to copy."""
        problems = tuple(reading.problems)
        self.fresh = self.fresh or problems == self.problems
        self.problems = problems
        if self.fresh:
            self.note, self.follow_up = reask_afresh(reading), []
        else:
            self.note = None
            self.follow_up = [
                Message(role="assistant", content=reply.text[:REASK_ECHO]),
                Message(role="user", content=reask(reading)),
            ]


def _noted(base: list[Message], note: str | None) -> list[Message]:
    """`base` with `note` under its last message (a user turn), so roles still alternate: some chat templates
    (Gemma's, Mistral's) refuse two user turns in a row."""
    if note is None:
        return base
    last = base[-1]
    return [*base[:-1], Message(role=last.role, content=f"{last.content}\n\n{note}")]


def _hotter(spec: ModelStepSpec, round_: int) -> dict[str, float]:
    """The temperature of round `round_`: the step's own first, at least `REASK_TEMPERATURE` for a re-ask."""
    return {"temperature": max(spec.model.temperature, REASK_TEMPERATURE)} if round_ else {}


def reask(reading: Reading) -> str:
    """The follow-up that tells the model exactly what was wrong."""
    problems = "\n".join(f"- {p}" for p in reading.problems[:10])
    return f"Your answer could not be used:\n{problems}\nAnswer again with only the corrected JSON object."


def reask_afresh(reading: Reading) -> str:
    """The note under the prompt of a fresh ask: what was wrong with an earlier answer, which is not shown."""
    problems = "\n".join(f"- {p}" for p in reading.problems[:10])
    return f"An earlier answer to this could not be used:\n{problems}\nWrite a new answer that avoids these problems."


def _attempt(reply: ModelReply, reading: Reading, prompt: str, *, reasked: bool) -> Attempt:
    method = reading.method if reading.payload is not None else None
    if method and reasked:
        method = f"reasked+{method}"
    return Attempt(
        model=reply.model,
        raw=reply.text[:RAW_KEPT],
        method=method,
        error=None if reading.payload is not None else "; ".join(reading.problems[:5]),
        finish_reason=reply.finish_reason,
        prompt=prompt[:PROMPT_KEPT],
    )


def _degraded(spec: ModelStepSpec, reply: ModelReply, schema: dict[str, Any]) -> dict[str, Any] | None:
    """The last answer as the step's one text field, when the definition allows degrading."""
    if spec.on_invalid != "degrade" or spec.degrade_field is None:
        return None
    if len(reply.text) > MAX_ANSWER_CHARS:
        return None
    text = plain_text(reply.text)
    payload = {spec.degrade_field: text}
    return payload if text and not schema_problems(payload, schema) else None
