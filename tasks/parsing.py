"""Read a model's answer as JSON, from the strictest reading to the most tolerant.

1. `strict`: the whole answer is one JSON value;
2. `extracted`: a JSON object inside a fenced block, or surrounded by prose;
3. `repaired`: json-repair's reading of the most promising part (trailing commas,
   single quotes, unquoted keys, a cut-off end);

then the object is validated against the step's JSON Schema, checked for
answers that are not content (`tasks.answers`: the schema echoed back, a field's
description repeated, too few words, a runaway repetition) and by the builder's
checks. An answer cut off at its token limit (`truncated`) is used only when it
is complete, strict JSON: a repaired cut-off answer would keep half a chapter.
`read_answer` never raises: it says which reading worked and every problem left,
so the caller can re-ask, degrade or refuse.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import json_repair
from jsonschema import Draft202012Validator, ValidationError

from agentflows.tasks.answers import content_problems, looks_like_schema, schema_echo_problem
from agentflows.tasks.llm.structured import drop_nulls

MAX_ANSWER_CHARS = 500_000
"""Longest answer read; anything longer is refused unread."""
TRUNCATED = "the answer was cut off at its token limit before the JSON was complete"
_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n(.*?)(?:\n```|\Z)", re.DOTALL)
_MAX_OBJECT_STARTS = 50

Check = Callable[[Mapping[str, Any]], list[str]]
Adjust = Callable[[dict[str, Any]], tuple[dict[str, Any], list[str]]]
"""Rewrites a schema-valid answer and says what it changed (nothing changed: the answer and `[]`)."""


@dataclass(frozen=True)
class Reading:
    """What could be made of one answer."""

    payload: dict[str, Any] | None
    """The object, when one was read and it satisfies the schema and checks."""
    method: str | None
    """`strict`, `extracted` or `repaired`: how the JSON was read (None when no object was found)."""
    problems: list[str] = field(default_factory=list)
    """Why the answer cannot be used, in words a model can act on."""
    adjusted: tuple[str, ...] = ()
    """What `adjust` changed in the answer before its checks (a warning each)."""

    @property
    def ok(self) -> bool:
        return self.payload is not None


def read_answer(
    text: str,
    schema: dict[str, Any],
    check: Check | None = None,
    *,
    truncated: bool = False,
    adjust: Adjust | None = None,
) -> Reading:
    """Read `text` as a JSON object and validate it; never raises.

    `adjust` rewrites an answer that fits the schema before its checks (plan items scaled to a declared
    total) and says what it changed; the adjusted answer must still fit the schema."""
    if len(text) > MAX_ANSWER_CHARS:
        return Reading(
            None, None, [f"the answer is {len(text):,} characters, more than the {MAX_ANSWER_CHARS:,} allowed"]
        )
    found = find_object(text)
    if truncated and (found is None or found[1] != "strict"):
        return Reading(None, None, [TRUNCATED])
    if found is None:
        return Reading(None, None, [_no_object(text)])
    value, method = found
    if looks_like_schema(value, schema):
        return Reading(None, method, [schema_echo_problem(schema)])
    value = drop_nulls(value, schema)
    problems = schema_problems(value, schema) or content_problems(value, schema)
    adjusted: list[str] = []
    if not problems and adjust is not None:
        fitted, adjusted = adjust(value)
        value, problems = (fitted, schema_problems(fitted, schema)) if adjusted else (value, [])
    if not problems and check is not None:
        problems = check(value)
    return Reading(None if problems else value, method, problems, tuple(adjusted))


def find_object(text: str) -> tuple[dict[str, Any], str] | None:
    """The first JSON object in `text` and how it was read, or None."""
    stripped = text.strip()
    if not stripped:
        return None
    strict = _loads(stripped)
    if isinstance(strict, dict):
        return strict, "strict"
    for candidate in _candidates(stripped):
        value = _first_object(candidate)
        if value is not None:
            return value, "extracted"
    for candidate in _candidates(stripped):
        start = candidate.find("{")
        if start < 0:
            continue
        repaired = _repair(candidate[start:])
        if isinstance(repaired, dict) and repaired:
            return repaired, "repaired"
    return None


def schema_problems(payload: Any, schema: dict[str, Any]) -> list[str]:
    """Every way `payload` breaks `schema`, as `path: message` strings."""
    validator = Draft202012Validator(schema)
    found = []
    for error in sorted(validator.iter_errors(payload), key=lambda e: [str(p) for p in e.absolute_path]):
        where = "/".join(str(p) for p in error.absolute_path) or "(answer)"
        found.append(f"{where}: {_path_message(error) or _short(error.message)}")
    return found


def _path_message(error: ValidationError) -> str | None:
    """A `format: path` field's pattern in words a model can act on, rather than the regular expression."""
    if error.validator != "pattern" or not isinstance(error.schema, dict) or error.schema.get("format") != "path":
        return None
    name = next((str(p) for p in reversed(error.absolute_path) if isinstance(p, str)), "path")
    return (
        f"`{name}` {error.instance!r} is not a safe relative path; use letters, digits, '_', '-', '.' "
        "and '/' between names, without '..' or a leading '/'"
    )


def plain_text(text: str) -> str:
    """The answer as prose: code fences and surrounding whitespace removed (for a degraded draft)."""
    fenced = _FENCE.findall(text)
    return (fenced[0] if len(fenced) == 1 and len(fenced[0]) > len(text) / 2 else text).strip()


def _candidates(text: str) -> list[str]:
    """Fenced blocks first (the model's own framing), then the whole text."""
    return [*(block for block in _FENCE.findall(text) if "{" in block), text]


def _first_object(text: str) -> dict[str, Any] | None:
    decoder = json.JSONDecoder()
    start = text.find("{")
    tries = 0
    while start >= 0 and tries < _MAX_OBJECT_STARTS:
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
        tries += 1
    return None


def _repair(text: str) -> Any:
    try:
        return json_repair.loads(text)
    except Exception:  # untrusted text into a third-party parser: any failure means "not repairable"
        return None


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None


def _no_object(text: str) -> str:
    if not text.strip():
        return "the answer is empty; answer with one JSON object"
    return f"the answer holds no JSON object (it begins {text.strip()[:80]!r}); answer with one JSON object"


def _short(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[:limit] + "…"
