"""Declared inputs → Python types, flow parameters and validated values.

The same annotations serve three readers: Prefect builds the UI form and the
deployment's parameter schema from the flow signature; Prefect validates run
parameters against it; and `validate_inputs` checks values given from Python or
the CLI before anything runs; `parse_params` types the CLI's `NAME=VALUE` pairs.

Every text value is cleaned before it is checked: control and invisible characters
(zero-width spaces, bidi overrides) are removed and surrounding whitespace trimmed,
so `"   "` or four zero-width spaces do not pass `min_length: 3`. Every text value is
bounded: an input without `max_length` takes at most `DEFAULT_MAX_CHARACTERS`
characters (a list input at most `DEFAULT_MAX_ITEMS` items of that size).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from agentflows.definition import AgentDefinition
from agentflows.errors import InputError
from agentflows.fields import DEFAULT_MAX_CHARACTERS, DEFAULT_MAX_ITEMS, InputSpec
from agentflows.tasks.prompts import clean_user_text

_BASE_TYPES: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool}
TRUE_WORDS = {"true", "yes", "on", "1"}
FALSE_WORDS = {"false", "no", "off", "0"}
SHOWN_CHARACTERS = 60
"""Characters of an offending value an error shows."""
REQUEST_MAX_CHARACTERS = 4_000
"""Most characters of a free-text request (the router's `request`, an agent flow's `context`)."""


def cleaned(value: Any) -> Any:
    """A string without control and invisible characters or surrounding whitespace; anything else as it is."""
    return clean_user_text(value) if isinstance(value, str) else value


Cleaned = BeforeValidator(cleaned)
"""Cleans a text value before the checks of its type run (an annotation: `Annotated[str, Field(…), Cleaned]`)."""


def text_annotation(min_length: int | None = None, max_length: int = DEFAULT_MAX_CHARACTERS) -> Any:
    """A string cleaned, then checked for its length."""
    return Annotated[str, Field(min_length=min_length, max_length=max_length), Cleaned]


def input_annotation(spec: InputSpec) -> Any:
    """The Python type of one input, with its enum and bounds."""
    constraints: dict[str, Any] = {}
    if spec.type == "list":
        item: Any = Annotated[Literal[tuple(spec.enum)], Cleaned] if spec.enum else text_annotation()
        base: Any = list[item]
        constraints.update(min_length=spec.min_length, max_length=spec.max_length or DEFAULT_MAX_ITEMS)
    elif spec.enum:
        base = Annotated[Literal[tuple(spec.enum)], Cleaned]
    elif spec.type == "string":
        base = text_annotation(spec.min_length, spec.max_length or DEFAULT_MAX_CHARACTERS)
    else:
        base = _BASE_TYPES[spec.type]
        if spec.type in ("integer", "number"):
            constraints.update(ge=spec.minimum, le=spec.maximum)
    given = {k: v for k, v in constraints.items() if v is not None}
    annotated = Annotated[base, Field(**given)] if given else base
    return annotated if spec.is_required or spec.has_default else annotated | None


def input_default(spec: InputSpec) -> Any:
    """The default of an optional input (`inspect.Parameter.empty` when required)."""
    if spec.is_required:
        return inspect.Parameter.empty
    return spec.default


def input_parameters(definition: AgentDefinition) -> list[inspect.Parameter]:
    """Keyword-only flow parameters for the declared inputs, required ones first."""
    ordered = sorted(definition.inputs.items(), key=lambda kv: not kv[1].is_required)
    return [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=input_default(spec),
            annotation=input_annotation(spec),
        )
        for name, spec in ordered
    ]


def input_model(definition: AgentDefinition) -> type[BaseModel]:
    """A pydantic model of the inputs (unknown names are errors)."""
    fields: dict[str, Any] = {
        name: (input_annotation(spec), ... if spec.is_required else spec.default)
        for name, spec in definition.inputs.items()
    }
    return create_model(f"{definition.name}_inputs", __config__=ConfigDict(extra="forbid"), **fields)


def validate_inputs(definition: AgentDefinition, values: dict[str, Any]) -> dict[str, Any]:
    """Validated inputs with defaults filled in; raises `InputError` naming each bad field."""
    try:
        model = input_model(definition).model_validate(values)
    except ValidationError as exc:
        raise _input_error(definition, exc, values) from None
    return model.model_dump(mode="json")


def default_problem(spec: InputSpec) -> str | None:
    """Why the input's own default (or enum) does not fit it, or None."""
    if spec.enum is not None:
        item_type = str if spec.type == "list" else _BASE_TYPES[spec.type]
        for value in spec.enum:
            try:
                TypeAdapter(item_type).validate_python(value, strict=item_type is not float)
            except ValidationError:
                return f"enum value {value!r} is not a {'string' if spec.type == 'list' else spec.type}"
    if spec.has_default and spec.default is not None:
        try:
            TypeAdapter(input_annotation(spec)).validate_python(spec.default)
        except ValidationError as exc:
            return f"default {spec.default!r} does not fit the input: {_first_message(exc)}"
    return None


def fit_problem(spec: InputSpec, value: object) -> str | None:
    """Why `value` does not fit the input, or None."""
    try:
        TypeAdapter(input_annotation(spec)).validate_python(value)
    except ValidationError as exc:
        return _first_message(exc)
    return None


def _input_error(definition: AgentDefinition, exc: ValidationError, values: dict[str, Any]) -> InputError:
    parts = []
    for error in exc.errors():
        name = ".".join(str(p) for p in error["loc"]) or "inputs"
        parts.append(_input_message(definition, name, error, values.get(name.split(".")[0])))
    return InputError(f"agent {definition.name!r}: " + "; ".join(parts))


def _input_message(definition: AgentDefinition, name: str, error: Any, given: Any) -> str:
    root = name.split(".")[0]
    if error["type"] == "extra_forbidden":
        known = ", ".join(definition.inputs) or "none"
        return f"unknown input {root!r} (inputs: {known})"
    if error["type"] == "missing":
        return f"input {root!r} is required: {definition.inputs[root].description}"
    return value_problem(name, error, given)


def value_problem(name: str, error: Any, given: Any) -> str:
    """What one pydantic `error` of input `name` says, with the (cleaned) value it refused; `given` as passed."""
    got = shown(error.get("input"))
    if isinstance(given, str) and cleaned(given) != given:
        got += " once control and invisible characters and surrounding spaces are removed"
    return f"input {name!r}: {error['msg']} (got {got})"


def shown(value: Any) -> str:
    """`value!r`, cut to its first `SHOWN_CHARACTERS` characters when longer (with its length)."""
    if isinstance(value, str) and len(value) > SHOWN_CHARACTERS:
        return f"{value[:SHOWN_CHARACTERS]!r}… ({len(value):,} characters)"
    text = repr(value)
    return text if len(text) <= SHOWN_CHARACTERS * 2 else f"{text[: SHOWN_CHARACTERS * 2]}…"


def _first_message(exc: ValidationError) -> str:
    return str(exc.errors()[0]["msg"])


def parse_params(pairs: Sequence[str], inputs: dict[str, InputSpec]) -> dict[str, Any]:
    """`["chapters=3", "topic=Tides"]` → values typed by the declared inputs."""
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep:
            raise InputError(f"--param {pair!r} needs the form NAME=VALUE")
        spec = inputs.get(name.strip())
        values[name.strip()] = _typed(name.strip(), text, spec) if spec else text
    return values


def _typed(name: str, text: str, spec: InputSpec) -> Any:
    try:
        if spec.type == "integer":
            return int(text)
        if spec.type == "number":
            return float(text)
    except ValueError:
        kind = "a whole number" if spec.type == "integer" else "a number"
        raise InputError(f"--param {name}={text!r}: {name!r} takes {kind}") from None
    if spec.type == "boolean":
        lowered = text.strip().lower()
        if lowered in TRUE_WORDS | FALSE_WORDS:
            return lowered in TRUE_WORDS
        raise InputError(f"--param {name}={text!r}: {name!r} takes true or false")
    if spec.type == "list":
        return [part.strip() for part in text.split(",") if part.strip()]
    return text
