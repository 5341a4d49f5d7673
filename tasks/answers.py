"""Answers that fit the schema but are not content: the checks after the schema's own.

A small model held to a schema by the server's grammar writes valid JSON that
can still be useless. These are re-asked like any invalid answer:

- the JSON Schema itself instead of values for it (`looks_like_schema`);
- a text field that repeats a field's description (its own, or one beside it);
- a text field below its declared `x-min-words` (a field's `min_words` in YAML);
- a text field that repeats one sentence over and over (a runaway answer).

Every check is pure and names the field by its path in the answer, in words a
model can act on.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

SCHEMA_WORDS = frozenset({"type", "properties", "required", "additionalProperties", "$schema", "items"})
MIN_CHECKED_WORDS = 40
"""Texts shorter than this are not checked for repetition."""
REPEATS = 3
"""A sentence of four words or more written this many times is a runaway."""
RUNAWAY_RATIO = 0.12
"""Text that compresses below this share of its size repeats itself (prose: 0.35 to 0.5; a runaway: under 0.1)."""
_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")


def looks_like_schema(payload: Any, schema: dict[str, Any]) -> bool:
    """Whether the answer is a JSON Schema (the one it was given, most likely) rather than values for it."""
    if not isinstance(payload, dict):
        return False
    declared = set((schema.get("properties") or {}).keys())
    schema_keys = (SCHEMA_WORDS & payload.keys()) - declared
    return len(schema_keys) >= 2 or "$schema" in schema_keys


def schema_echo_problem(schema: dict[str, Any]) -> str:
    fields = ", ".join(f"`{name}`" for name in (schema.get("properties") or {}))
    return f"the answer is a JSON Schema, not the content; give the values themselves for {fields}"


def content_problems(payload: Any, schema: dict[str, Any]) -> list[str]:
    """Every text field of `payload` that is not content (see the module docstring)."""
    descriptions = _descriptions(schema)
    problems = []
    for path, text, field_schema in _texts(payload, schema, ""):
        problem = _text_problem(path, text, field_schema, descriptions)
        if problem:
            problems.append(problem)
    return problems


def _descriptions(schema: Any) -> list[str]:
    """Every field description in `schema`: a small model copies the one beside the field it fills, too."""
    if isinstance(schema, list):
        return [d for item in schema for d in _descriptions(item)]
    if not isinstance(schema, dict):
        return []
    own = [str(schema["description"])] if isinstance(schema.get("description"), str) else []
    return own + [d for key, value in schema.items() if key != "description" for d in _descriptions(value)]


def word_count(text: str) -> int:
    return len(_WORD.findall(text))


def is_runaway(text: str) -> bool:
    """Whether `text` (an answer cut off at its token limit, say) repeats itself instead of going on."""
    tail = text[-3000:]
    if len(tail) < 200:
        return False
    return len(zlib.compress(tail.encode())) / len(tail.encode()) < RUNAWAY_RATIO


def _text_problem(path: str, text: str, schema: dict[str, Any], descriptions: list[str]) -> str | None:
    own = str(schema.get("description") or "")
    echoed = next((d for d in [own, *descriptions] if d and _echoes(text, d)), None)
    if echoed is not None:
        whose = "the field's description" if echoed == own else "a field description"
        return f"`{path}` repeats {whose} ({echoed[:60]!r}); write the {_name(path)} itself"
    words = word_count(text)
    least = schema.get("x-min-words")
    if isinstance(least, int) and words < least:
        return f"`{path}` has {words} words, fewer than the {least} it needs; write a longer {_name(path)}"
    repeated = _repeated_sentence(text) if words >= MIN_CHECKED_WORDS else None
    if repeated:
        sentence, times = repeated
        how_often = f"{times} times" if times else "over and over"
        return f"`{path}` repeats itself ({sentence[:60]!r} {how_often}); say each thing once"
    return None


def _echoes(text: str, description: str) -> bool:
    said, asked = _normalized(text), _normalized(description)
    if len(asked) < 12 or not said:
        return False
    # Most of the description, or the description with little around it; an example the description
    # quotes ("e.g. Application entry point") is a fine answer.
    return (said in asked and len(said) >= 0.6 * len(asked)) or (asked in said and len(said) < 2 * len(asked))


def _repeated_sentence(text: str) -> tuple[str, int] | None:
    sentences = [s.strip() for s in _SENTENCE.findall(text) if len(s.split()) >= 4]
    if sentences:
        sentence, times = Counter(_normalized(s) for s in sentences).most_common(1)[0]
        if times >= REPEATS:
            return sentence, times
    encoded = text.encode()
    if len(encoded) >= 400 and len(zlib.compress(encoded)) / len(encoded) < RUNAWAY_RATIO:
        return text.strip()[:60], 0
    return None


def _texts(value: Any, schema: dict[str, Any], path: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every string in `value` with its path and the schema that describes it."""
    if isinstance(value, str):
        yield path or "(answer)", value, schema
    elif isinstance(value, dict):
        properties = schema.get("properties") or {}
        for key, item in value.items():
            yield from _texts(item, properties.get(key) or {}, f"{path}/{key}" if path else key)
    elif isinstance(value, list):
        item_schema = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        for index, item in enumerate(value):
            yield from _texts(item, item_schema or {}, f"{path}/{index}")


def _name(path: str) -> str:
    last = next((part for part in reversed(path.split("/")) if not part.isdigit()), path)
    return last.replace("_", " ")


def _normalized(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))
