"""Structured output: how an answer's JSON Schema reaches the model, from the strongest way to the weakest.

    json_schema   response_format json_schema, strict, with length bounds: the server constrains decoding
                  to the schema (llama.cpp, vLLM, Ollama compile it to a grammar; bounds stop runaway text)
    json_schema   the same without length bounds (OpenAI's strict mode refuses minLength/maxLength)
    json_object   response_format json_object: any JSON object; the prompt shows the shape to fill in
    off           nothing in the request; the prompt alone asks for the JSON

`ladder(mode)` is the list of `ResponseFormat`s to try for a configured
`json_mode` (`auto`: all of them; a named mode: only that one); the client
starts at the first one the endpoint has not refused and steps down on a
refusal (`is_structured_output_refusal`), remembering it for the endpoint.
The step's own schema is always checked again after the answer is read:
servers ignore some keywords (llama.cpp: `uniqueItems`, number bounds).

Contracts of `wire_schema` (the schema sent to the server):
- every object lists every property in `required` and has `additionalProperties: false`;
  a property the step does not require becomes nullable (`null` is dropped again by `drop_nulls`);
- only keywords strict mode accepts are kept; `x-…` annotations, `examples`, `default`,
  `uniqueItems` and formats other than the standard ones are removed;
- a type list becomes `anyOf`, one branch per type;
- length bounds are sent only when `lengths` is true: `minLength`/`maxLength`, and those a text's
  `x-min-words`/`x-max-words` imply (`CHARS_PER_WORD`), so a small model cannot run on forever
  inside one string.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

JsonMode = Literal["auto", "json_schema", "json_object", "off"]

KEPT_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "anyOf",
        "description",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "pattern",
        "format",
        "$defs",
        "$ref",
    }
)
LENGTH_KEYWORDS = frozenset({"minLength", "maxLength"})
STANDARD_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"})
CHARS_PER_WORD = (7, 10)
"""Characters per word the length bounds allow at least and at most (prose, Markdown, code). English prose
runs at ~5.5 characters a word, and a small model held to a minimum length stops right there: at 5 a word,
SmolLM2-135M wrote 110 words for a `min_words: 120` body, 3 times in a row (600 characters each)."""
_REFUSAL_WORDS = ("response_format", "json_schema", "schema", "grammar", "parser", "structured output", "strict")


@dataclass(frozen=True)
class ResponseFormat:
    """One way of asking for structured output."""

    name: str
    """`json_schema+lengths`, `json_schema`, `json_object` or `off`: what an endpoint's refusal is remembered as."""
    kind: Literal["json_schema", "json_object", "off"]
    lengths: bool = False

    @property
    def constrained(self) -> bool:
        """Whether the server holds the answer to the schema (so the prompt need not show its shape)."""
        return self.kind == "json_schema"

    def body(self, schema: dict[str, Any]) -> dict[str, Any] | None:
        """The `response_format` of a request for an answer to `schema`, or None to send none."""
        if self.kind == "json_object":
            return {"type": "json_object"}
        if self.kind == "json_schema":
            wired = wire_schema(schema, lengths=self.lengths)
            return {"type": "json_schema", "json_schema": {"name": "answer", "strict": True, "schema": wired}}
        return None


SCHEMA_WITH_LENGTHS = ResponseFormat("json_schema+lengths", "json_schema", lengths=True)
SCHEMA = ResponseFormat("json_schema", "json_schema")
JSON_OBJECT = ResponseFormat("json_object", "json_object")
PROMPT_ONLY = ResponseFormat("off", "off")


def ladder(mode: JsonMode) -> tuple[ResponseFormat, ...]:
    """The formats to try for `mode`, strongest first.

    `auto` negotiates down to the prompt alone (which no server can refuse); a mode
    named exactly is used as it is (json_schema in its two forms), and a refusal of it
    is an error that says so.
    """
    if mode == "off":
        return (PROMPT_ONLY,)
    if mode == "json_object":
        return (JSON_OBJECT,)
    if mode == "json_schema":
        return (SCHEMA_WITH_LENGTHS, SCHEMA)
    return (SCHEMA_WITH_LENGTHS, SCHEMA, JSON_OBJECT, PROMPT_ONLY)


def is_structured_output_refusal(status: int, message: str) -> bool:
    """Whether a 400/422 answer says the server cannot do the structured output it was asked for."""
    lowered = message.lower()
    return status in (400, 422) and any(word in lowered for word in _REFUSAL_WORDS)


def wire_schema(schema: dict[str, Any], *, lengths: bool) -> dict[str, Any]:
    """`schema` in the form strict structured-output modes accept (see the module's contracts)."""
    return _wired(schema, lengths, nullable=False)


def _wired(schema: dict[str, Any], lengths: bool, *, nullable: bool) -> dict[str, Any]:
    kept = KEPT_KEYWORDS | (LENGTH_KEYWORDS if lengths else frozenset())
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key not in kept or (key == "format" and value not in STANDARD_FORMATS):
            continue
        if key == "properties":
            required = set(schema.get("required", ()))
            out[key] = {name: _wired(sub, lengths, nullable=name not in required) for name, sub in value.items()}
        elif key == "items" and isinstance(value, dict):
            out[key] = _wired(value, lengths, nullable=False)
        elif key == "anyOf":
            out[key] = [_wired(branch, lengths, nullable=False) for branch in value]
        elif key == "$defs":
            out[key] = {name: _wired(sub, lengths, nullable=False) for name, sub in value.items()}
        else:
            out[key] = value
    if lengths:
        out |= _length_bounds(schema)
    if "properties" in out:
        out["required"] = list(out["properties"])
        out["additionalProperties"] = False
    if isinstance(out.get("type"), list):
        out = _split_types(out)
    return _nullable(out) if nullable else out


def _length_bounds(schema: dict[str, Any]) -> dict[str, Any]:
    """`minLength`/`maxLength` from a text's word bounds, unless the schema gives them itself."""
    bounds: dict[str, Any] = {}
    least, most = schema.get("x-min-words"), schema.get("x-max-words")
    if isinstance(least, int) and "minLength" not in schema:
        bounds["minLength"] = least * CHARS_PER_WORD[0]
    if isinstance(most, int) and "maxLength" not in schema:
        bounds["maxLength"] = most * CHARS_PER_WORD[1]
    return bounds


def _split_types(schema: dict[str, Any]) -> dict[str, Any]:
    """`{"type": ["string", "number"], …}` as `anyOf` with one branch per type, sharing the other keywords."""
    rest = {k: v for k, v in schema.items() if k not in ("type", "description")}
    shared = {k: v for k, v in rest.items() if k not in LENGTH_KEYWORDS}
    branches = [{"type": kind, **(rest if kind == "string" else shared)} for kind in schema["type"]]
    described = {"description": schema["description"]} if "description" in schema else {}
    return {"anyOf": branches, **described}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "anyOf" in schema:
        return {**schema, "anyOf": [*schema["anyOf"], {"type": "null"}]}
    if "enum" in schema:
        return {**schema, "enum": [*schema["enum"], None]}
    if isinstance(schema.get("type"), str):
        return {**schema, "type": [schema["type"], "null"]}
    return schema


def drop_nulls(payload: Any, schema: dict[str, Any]) -> Any:
    """`payload` without the `null`s a nullable wire schema let through for properties the step does not require."""
    if not isinstance(payload, dict) or not isinstance(schema.get("properties"), dict):
        return payload
    required = set(schema.get("required", ()))
    cleaned = {}
    for name, value in payload.items():
        sub = schema["properties"].get(name)
        if value is None and sub is not None and name not in required and not _allows_null(sub):
            continue
        cleaned[name] = _drop_in(value, sub) if sub is not None else value
    return cleaned


def _drop_in(value: Any, schema: dict[str, Any]) -> Any:
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [drop_nulls(item, schema["items"]) for item in value]
    return drop_nulls(value, schema)


def _allows_null(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "null" or (isinstance(kind, list) and "null" in kind) or None in schema.get("enum", [0])


# -- what the prompt says about the answer's shape ---------------------------------------------


FIELD_GUIDE_HEADING = "Fields of the answer:"
"""The first line of the field guide, which ends every model step's user message."""


def field_guide(schema: dict[str, Any]) -> str:
    """The answer's fields, one line each with their kind and size: what every prompt shows.

    Descriptions are left out on purpose (examples are shown: they are content): a
    small model copies the text it is shown into the fields (SmolLM2-135M wrote
    "Title of the whole piece of content" as a lesson's title in 3 of 3 tries with
    descriptions in the guide, in 0 of 3 without; see benchmarks/RESULTS.md). The
    step's prompt says what to write; descriptions go to the server in the schema,
    where servers that show it to the model use them.
    """
    lines = [FIELD_GUIDE_HEADING]
    _guide_lines(schema, "", lines)
    return "\n".join(lines)


def _examples(schema: dict[str, Any]) -> str:
    """`; e.g. "app/main.py", "README.md"`: examples are content, so a model that copies them copies well."""
    shown = [json.dumps(e, ensure_ascii=False) for e in (schema.get("examples") or [])[:4]]
    return f"; e.g. {', '.join(shown)}" if shown else ""


def _guide_lines(schema: dict[str, Any], prefix: str, lines: list[str]) -> None:
    for name, sub in (schema.get("properties") or {}).items():
        path = f"{prefix}{name}"
        lines.append(f"- {path}: {_kind(sub)}{_examples(sub)}")
        items = sub.get("items") if isinstance(sub.get("items"), dict) else None
        if items and items.get("properties"):
            _guide_lines(items, f"{path}[].", lines)
        elif sub.get("properties"):
            _guide_lines(sub, f"{path}.", lines)


def _kind(schema: dict[str, Any]) -> str:
    """`text, at most 20 words`, `a list of exactly 3 entries`, `one of "bar", "line"`, …"""
    kind = schema.get("type")
    kind = next((k for k in kind if k != "null"), "string") if isinstance(kind, list) else kind
    if schema.get("enum"):
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    if kind == "array":
        return f"a list of {_count(schema)}"
    if kind == "object":
        return "an object"
    if kind == "integer":
        return "a whole number" + _range(schema)
    if kind in ("number", "boolean"):
        return "a number" + _range(schema) if kind == "number" else "true or false"
    words = _words(schema)
    return "text" + (f", {words}" if words else "")


def _count(schema: dict[str, Any]) -> str:
    low, high = schema.get("minItems"), schema.get("maxItems")
    if low is not None and low == high:
        return f"exactly {low} {'entry' if low == 1 else 'entries'}"
    if low is not None and high is not None:
        return f"{low} to {high} entries"
    if low is not None:
        return f"at least {low} entries"
    return f"at most {high} entries" if high is not None else "entries"


def _range(schema: dict[str, Any]) -> str:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        return f" from {low:g} to {high:g}"
    return ""


def _words(schema: dict[str, Any]) -> str:
    low, high = schema.get("x-min-words"), schema.get("x-max-words")
    if low and high:
        return f"{low} to {high} words"
    if low:
        return f"at least {low} words"
    return f"at most {high} words" if high else ""


def shape_instruction(schema: dict[str, Any]) -> str:
    """For a server that does not hold the answer to the schema: the JSON to fill in, as a skeleton.

    Small models copy a JSON Schema back instead of filling it in; a skeleton whose
    placeholders name only the kind of each value gives them less to copy.
    """
    skeleton = json.dumps(_skeleton(schema), ensure_ascii=False)
    return f"Answer with one JSON object, and nothing else, shaped like this (replace every <…>):\n{skeleton}"


def _skeleton(schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    kind = next((k for k in kind if k != "null"), "string") if isinstance(kind, list) else kind
    if schema.get("enum"):
        return "<" + " or ".join(str(v) for v in schema["enum"]) + ">"
    if kind == "object" or "properties" in schema:
        return {name: _skeleton(sub) for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        item = schema.get("items")
        return [_skeleton(item if isinstance(item, dict) else {})]
    return f"<{_kind(schema)}>"
