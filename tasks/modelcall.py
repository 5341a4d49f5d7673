"""One model call of a step: compose the prompt, call the provider, check the answer.

The system message is the spec's system layers rendered in order (base, then
domain); the user message is the step's prompt template. The answer must be a
JSON object that satisfies the step's JSON Schema and the builder's checks;
anything else raises `ModelOutputError` naming the call and the first problem,
and nothing invalid leaves this module.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import JsonValue

from tasks.errors import ModelOutputError
from tasks.llm.base import Message, ModelReply, ModelRequest, resolve_provider
from tasks.prompts import render, template_hash
from tasks.specs import ModelStepSpec

Check = Callable[[Mapping[str, Any]], list[str]]


@dataclass(frozen=True)
class ModelAnswer:
    """A checked answer and the reply it came from."""

    payload: dict[str, Any]
    reply: ModelReply
    template_hashes: dict[str, str]


def compose_messages(spec: ModelStepSpec, variables: Mapping[str, Any]) -> tuple[Message, ...]:
    """The system and user messages of one call."""
    system = "\n\n".join(render(spec.templates, name, variables).strip() for name in spec.system)
    user = render(spec.templates, spec.prompt, variables).strip()
    return (Message(role="system", content=system), Message(role="user", content=user))


async def ask_model(
    spec: ModelStepSpec,
    *,
    label: str,
    variables: Mapping[str, Any],
    context: dict[str, JsonValue],
    schema: dict[str, Any],
    check: Check | None = None,
) -> ModelAnswer:
    """Render, call and check; raise `ModelOutputError` when the answer does not fit."""
    request = ModelRequest(
        label=label,
        messages=compose_messages(spec, variables),
        settings=spec.model,
        output_schema=schema,
        context=context,
    )
    provider = resolve_provider(spec.model)
    reply = await provider.complete(request)
    payload = parse_answer(reply.text, schema, label=label, check=check)
    return ModelAnswer(payload=payload, reply=reply, template_hashes=template_hashes(spec.templates))


def parse_answer(text: str, schema: dict[str, Any], *, label: str, check: Check | None = None) -> dict[str, Any]:
    """The JSON object in `text`, validated against `schema` and `check`."""
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelOutputError(f"{label}: the model's answer is not JSON ({exc.msg} at line {exc.lineno})") from None
    problems = schema_problems(payload, schema)
    if not problems and check is not None:
        problems = check(payload)
    if problems:
        raise ModelOutputError(f"{label}: the model's answer does not fit the schema: {problems[0]}")
    return payload


def schema_problems(payload: Any, schema: dict[str, Any]) -> list[str]:
    """Every way `payload` breaks `schema`, as `path: message` strings."""
    validator = Draft202012Validator(schema)
    found = []
    for error in sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in error.absolute_path) or "(answer)"
        found.append(f"{where}: {error.message}")
    return found


def template_hashes(templates: Mapping[str, str]) -> dict[str, str]:
    """sha256 of each template, by name."""
    return {name: template_hash(source) for name, source in templates.items()}
