"""One model step's conversation: compose the prompt, call, read the answer, re-ask, degrade or refuse.

    compose   system = base layer + domain layer; user = step prompt (+ the knowledge passages, unless a
              template places them) + the JSON Schema to answer with
    check     the prompt plus room for the answer must fit the model's context window (before any call)
    call      the provider (which retries transport failures and falls back to other models itself)
    read      strict JSON → extracted → repaired, then the schema and the builder's checks
    re-ask    with the exact problems, at most `reasks` times
    then      degrade to plain text where the definition allows it, or raise `ModelOutputError`

Every answer is kept as an `Attempt` in the artifact's provenance. Nothing that
fails the schema leaves this module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import JsonValue

from agentflows.tasks.artifacts import Attempt, Usage
from agentflows.tasks.errors import ModelOutputError, PromptTooLarge
from agentflows.tasks.knowledge.retrieved import reference_section
from agentflows.tasks.llm.base import Message, ModelProvider, ModelReply, ModelRequest
from agentflows.tasks.parsing import MAX_ANSWER_CHARS, Check, Reading, plain_text, read_answer, schema_problems
from agentflows.tasks.prompts import render, template_hashes
from agentflows.tasks.runtime import current_runtime
from agentflows.tasks.specs import ModelStepSpec

CHARS_PER_TOKEN = 3.0
"""Conservative characters-per-token estimate for the context-window check (real tokenizers average ~4)."""
RAW_KEPT = 2_000
PROMPT_KEPT = 8_000
REASK_ECHO = 4_000
INSTRUCTION = "Answer with one JSON object, and nothing else, that matches this JSON Schema:"


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
    """The system and user messages of the first call."""
    system = "\n\n".join(render(spec.templates, name, variables).strip() for name in spec.system)
    user = render(spec.templates, spec.prompt, variables).strip()
    if spec.append_knowledge and variables.get("knowledge"):
        user += "\n\n" + reference_section(variables["knowledge"])
    instruction = f"{INSTRUCTION}\n```json\n{json.dumps(schema, ensure_ascii=False)}\n```"
    return [Message(role="system", content=system), Message(role="user", content=f"{user}\n\n{instruction}")]


def estimated_tokens(messages: list[Message]) -> int:
    """Upper-end estimate of the tokens `messages` take."""
    return int(sum(len(m.content) + 8 for m in messages) / CHARS_PER_TOKEN) + 1


def check_fits(label: str, messages: list[Message], max_tokens: int, provider: ModelProvider) -> None:
    """Raise `PromptTooLarge` when the prompt plus `max_tokens` exceeds the provider's context window."""
    window = getattr(provider, "context_window", None)
    needed = estimated_tokens(messages)
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
) -> ModelAnswer:
    """Get an answer that satisfies `schema` and `check`, or raise `ModelOutputError`.

    `follow_up` turns come after the composed prompt (a revision request shows the earlier answer and
    what to change in it)."""
    provider = await current_runtime().provider(spec.model)
    composed = compose_messages(spec, variables, schema)
    messages = [*composed, *follow_up]
    # What an attempt records as asked: the prompt without the output instruction, or the last follow-up turn.
    asked = follow_up[-1].content if follow_up else composed[-1].content.partition(f"\n\n{INSTRUCTION}")[0]
    hashes = template_hashes(spec.templates)
    attempts: list[Attempt] = []
    usage = Usage()
    for round_ in range(spec.reasks + 1):
        check_fits(label, messages, spec.model.max_tokens, provider)
        request = ModelRequest(
            label=label, messages=tuple(messages), settings=spec.model, output_schema=schema, context=context
        )
        reply = await provider.complete(request)
        usage = usage + reply.usage
        reading = read_answer(reply.text, schema, check)
        attempts.append(_attempt(reply, reading, asked, reasked=round_ > 0))
        if reading.payload is not None:
            return ModelAnswer(reading.payload, reply, usage, tuple(attempts), (), hashes)
        asked = reask(reading)
        messages += [
            Message(role="assistant", content=reply.text[:REASK_ECHO]),
            Message(role="user", content=asked),
        ]
    degraded = _degraded(spec, reply, schema)
    if degraded is not None:
        attempts.append(
            Attempt(model=reply.model, raw=reply.text[:RAW_KEPT], method="degraded", finish_reason=reply.finish_reason)
        )
        warning = f"degraded: no answer fit the schema after {len(attempts) - 1} attempts; kept the last as plain text"
        return ModelAnswer(degraded, reply, usage, tuple(attempts), (warning,), hashes)
    raise ModelOutputError(
        f"{label}: no answer fit the schema after {len(attempts)} attempts "
        f"({spec.reasks} re-asks); last problem: {reading.problems[0]}"
    )


def reask(reading: Reading) -> str:
    """The follow-up that tells the model exactly what was wrong."""
    problems = "\n".join(f"- {p}" for p in reading.problems[:10])
    return (
        "Your answer could not be used:\n"
        f"{problems}\n"
        "Answer again with only the corrected JSON object, matching the schema given above."
    )


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
