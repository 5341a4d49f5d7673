"""Load YAML and remember the line of every key, so errors can point at it.

`load_yaml` returns plain Python data plus a `LineMap` from YAML paths
(`("steps", "decide", "prompt")`, list positions as ints) to 1-based line
numbers; `dotted` writes such a path as an author reads it
(`steps.decide.prompt`). Duplicate keys, which PyYAML would silently overwrite,
are reported, and so are keys YAML reads as something other than text (`on:` is
a boolean, `1:` a number) and aliases that contain themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from agentflows.errors import YamlSyntaxError

YamlPath = tuple[str | int, ...]


@dataclass
class LineMap:
    """Lines of the keys and items of one YAML document."""

    lines: dict[YamlPath, int] = field(default_factory=dict)

    def line_of(self, path: YamlPath) -> int | None:
        """Line of `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


def dotted(path: YamlPath) -> str:
    """`("inputs", "tone", "enum", 2)` → `inputs.tone.enum[2]`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def load_yaml(text: str) -> tuple[Any, LineMap]:
    """Parse one YAML document into plain data and the lines of its keys."""
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:
        message = f"invalid YAML: the file holds the control character {chr(exc.character)!r}"
        raise YamlSyntaxError(message, text[: exc.position].count("\n") + 1) from None
    try:
        node = loader.get_single_node()
        lines = LineMap()
        data = _build(loader, node, (), lines) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = ", ".join(part for part in (exc.context, exc.problem) if part)
        raise YamlSyntaxError(f"invalid YAML: {what}", line) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"invalid YAML: {exc}", None) from None
    finally:
        loader.dispose()
    return data, lines


def _build(
    loader: yaml.SafeLoader, node: Node, path: YamlPath, lines: LineMap, within: frozenset[int] = frozenset()
) -> Any:
    """Plain data of `node`; `within` holds the collections it sits in, so an alias loop is caught."""
    line = node.start_mark.line + 1
    lines.lines.setdefault(path, line)
    if id(node) in within:
        raise YamlSyntaxError("invalid YAML: the value anchored here (&name) contains an alias (*name) to itself", line)
    if isinstance(node, MappingNode):
        return _build_mapping(loader, node, path, lines, within | {id(node)})
    if isinstance(node, SequenceNode):
        inner = within | {id(node)}
        return [_build(loader, item, (*path, index), lines, inner) for index, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _build_mapping(
    loader: yaml.SafeLoader, node: MappingNode, path: YamlPath, lines: LineMap, within: frozenset[int]
) -> dict[str, Any]:
    own = {id(key_node) for key_node, _ in node.value}
    loader.flatten_mapping(node)
    result: dict[str, Any] = {}
    merged: set[str] = set()  # keys set by a merge (`<<: *name`), which the mapping's own keys may override
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, ScalarNode):
            raise YamlSyntaxError("invalid YAML: a key must be a plain name, not a list or a mapping", line)
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise YamlSyntaxError(
                f"key {key_node.value!r} was read as {_kind(key)}, but keys are names; put it in quotes", line
            )
        key_path = (*path, key)
        if key in result and key not in merged:
            raise YamlSyntaxError(f"duplicate key {key!r}; it is already set on line {lines.lines[key_path]}", line)
        merged.discard(key)
        if id(key_node) not in own:
            merged.add(key)
        lines.lines[key_path] = line
        result[key] = _build(loader, value_node, key_path, lines, within)
    return result


def _kind(value: Any) -> str:
    """How YAML read a plain scalar that is not a string: `a boolean`, `a number`, `null`…"""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"
