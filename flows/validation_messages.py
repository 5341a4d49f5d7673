"""Turn pydantic's validation errors into one-sentence problems a content author can act on.

Pydantic reports locations in model terms (union branches, validator names);
these are mapped back onto the YAML path the author wrote, the line it sits on,
and a message that says what would be valid: the field's own documentation for
a missing or mistyped key, the valid keys (with "did you mean") for an unknown
one. Several errors at one path (one per union branch) become one problem.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from agentflows.definition import PATTERN_MEANINGS, AgentDefinition
from agentflows.errors import Problem
from agentflows.yaml_source import LineMap, YamlPath, dotted

_schema: ContextVar[type[BaseModel]] = ContextVar("schema", default=AgentDefinition)
"""The model the file was validated against (an agent definition, unless a caller says otherwise)."""


def problems_from_validation(
    exc: ValidationError, file: Path, data: Any, lines: LineMap, schema: type[BaseModel] = AgentDefinition
) -> list[Problem]:
    """One problem per YAML path that failed validation against `schema`, in file order.

    A missing key that an unknown key next to it is a misspelling of (`descripton`
    for `description`) is not reported on its own: the unknown key's "did you
    mean" already says what to fix.
    """
    token = _schema.set(schema)
    try:
        return _problems(exc, file, data, lines)
    finally:
        _schema.reset(token)


def _problems(exc: ValidationError, file: Path, data: Any, lines: LineMap) -> list[Problem]:
    grouped: dict[YamlPath, list[ErrorDetails]] = {}
    for error in exc.errors():
        grouped.setdefault(_data_path(error["loc"], data, error["type"]), []).append(error)
    misspelt = {
        (*path[:-1], _suggestion(path)) for path, errors in grouped.items() if errors[0]["type"] == "extra_forbidden"
    }
    problems = [
        Problem(file, lines.line_of(path), dotted(path), _message(path, errors))
        for path, errors in grouped.items()
        if not (errors[0]["type"] == "missing" and path in misspelt)
    ]
    return sorted(problems, key=lambda p: (p.line or 0, p.path))


def _data_path(loc: Sequence[int | str], data: Any, kind: str) -> YamlPath:
    """The part of pydantic's location that exists in the YAML (drops union and validator tags)."""
    path: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if _has(node, part):
            path.append(part)
            node = node[part]
        elif last and kind == "missing" and isinstance(node, dict):
            path.append(part)
    return tuple(path)


def _has(node: Any, part: int | str) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _message(path: YamlPath, errors: list[ErrorDetails]) -> str:
    first = errors[0]
    key = path[-1] if path else ""
    if first["type"] == "missing":
        about = _field_doc(path)
        return f"required key {key!r} is missing" + (f": {about}" if about else "")
    if first["type"] == "extra_forbidden":
        return _unknown_key(path)
    if len(errors) > 1:
        expected = "; or ".join(dict.fromkeys(_clean(e["msg"]) for e in errors))
        return f"{first.get('input')!r} is not valid here: {expected}" + _doc_hint(path)
    if first["type"] == "string_pattern_mismatch":
        meaning = PATTERN_MEANINGS.get(str(first.get("ctx", {}).get("pattern")))
        if meaning:
            return f"{first['input']!r} is not {meaning}"
    if first["type"].endswith("_type") and (misread := _misread(path, first.get("input"))):
        return misread + _doc_hint(path)
    if first["type"] in ("model_type", "dict_type"):
        return f"{first.get('input')!r} is not valid here: a mapping of keys to values is expected" + _doc_hint(path)
    message = _clean(first["msg"])
    if first["type"].startswith("value_error") or first["type"] == "assertion_error":
        return message
    return f"{message} (got {first.get('input')!r})" + _doc_hint(path)


def _misread(path: YamlPath, value: Any) -> str | None:
    """Why an empty value, or one YAML read as a number or boolean, is not the text or collection expected."""
    if value is None:
        return f"{key_name(path)!r} has no value"
    if isinstance(value, bool | int | float) and _model_at(path) is str:
        kind = "a boolean" if isinstance(value, bool) else "a number"
        return f"the value was read as {kind} ({value!r}), but text is expected here; put it in quotes"
    return None


def _unknown_key(path: YamlPath) -> str:
    key = str(path[-1])
    allowed = sorted(_model_fields(path[:-1]))
    if not allowed:
        return f"unknown key {key!r}"
    close = _suggestion(path)
    if close:
        return f"unknown key {key!r}; did you mean {close!r}? Valid keys here: {', '.join(allowed)}"
    return f"unknown key {key!r}; valid keys here: {', '.join(allowed)}"


def _suggestion(path: YamlPath) -> str | None:
    """The valid key closest to the unknown key at the end of `path`, if any is close."""
    close = difflib.get_close_matches(str(path[-1]), _model_fields(path[:-1]), n=1)
    return close[0] if close else None


def _doc_hint(path: YamlPath) -> str:
    about = _field_doc(path)
    return f"; {key_name(path)} is: {about}" if about else ""


def key_name(path: YamlPath) -> str:
    return str(path[-1]) if path else "the file"


def _clean(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message[:1].lower() + message[1:]


def _model_at(path: YamlPath) -> Any:
    """The schema type at `path` (a model class, or None when it cannot be followed)."""
    current: Any = _schema.get()
    for part in path:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = _yaml_fields(current).get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        elif get_origin(current) is list:
            current = get_args(current)[0]
        else:
            return None
    return _unwrap(current)


def _model_fields(path: YamlPath) -> list[str]:
    model = _model_at(path)
    return list(_yaml_fields(model)) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _yaml_fields(model: type[BaseModel]) -> dict[str, Any]:
    """The fields of `model` by the key an author writes for them (its alias, such as `as`, else its name)."""
    return {field.alias or name: field for name, field in model.model_fields.items()}


def _field_doc(path: YamlPath) -> str:
    if not path:
        return ""
    parent = _model_at(path[:-1])
    if isinstance(parent, type) and issubclass(parent, BaseModel):
        field = _yaml_fields(parent).get(str(path[-1]))
        if field is not None and field.description:
            return " ".join(field.description.split())
    return ""


def _unwrap(annotation: Any) -> Any:
    """Strip `Annotated[...]` and `X | None` down to the model or container inside."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            options = [a for a in get_args(annotation) if a is not type(None)]
            models = [a for a in options if isinstance(a, type) and issubclass(a, BaseModel)]
            annotation = models[0] if models else options[0]
        else:
            return annotation
