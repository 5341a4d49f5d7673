"""Load YAML and remember the line of every key, so errors can point at it.

`load_yaml` returns plain Python data plus a `LineMap` from YAML paths
(`("steps", "decide", "prompt")`, list positions as ints) to 1-based line
numbers; `dotted` writes such a path as an author reads it
(`steps.decide.prompt`). Duplicate keys, which PyYAML would silently overwrite,
are reported, and so are keys YAML reads as something other than text (`on:` is
a boolean, `1:` a number) and aliases that contain themselves.

A definition is small, so its YAML is bounded before it is built: values nest at
most `MAX_DEPTH` deep and aliases (`*name`) may repeat at most
`MAX_REPEATED_VALUES` values in all. A few hundred bytes of nested aliases (an
"alias bomb") would otherwise expand to billions of values; it is refused at the
line of the alias that crosses the bound, before anything is expanded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from agentflows.errors import YamlSyntaxError

YamlPath = tuple[str | int, ...]
MAX_DEPTH = 50
"""Deepest nesting of mappings and lists a definition may have (the shipped ones nest 6 deep)."""
MAX_REPEATED_VALUES = 10_000
"""Most values that aliases (`*name`, `<<: *name`) may repeat in one definition, all aliases together."""


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
        loader = _BoundedLoader(text)
    except yaml.reader.ReaderError as exc:
        message = f"invalid YAML: the file holds the control character {chr(exc.character)!r}"
        raise YamlSyntaxError(message, text[: exc.position].count("\n") + 1) from None
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_expansion(node, loader.aliases)
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


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses deep nesting while composing and remembers where each alias is.

    The composer hands out the anchored node itself for an alias, so the alias's own
    line is kept here, by the collection it sits in and its place there.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.aliases: dict[tuple[int, object], tuple[str, int]] = {}
        """Name and line of every alias, by its place (`_place`)."""
        self.depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        line = event.start_mark.line + 1 if event.start_mark else 0
        if isinstance(event, AliasEvent):
            self.aliases[_place(parent, index)] = (str(event.anchor), line)
            return super().compose_node(parent, index)
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise YamlSyntaxError(
                    f"invalid YAML: values nest more than {MAX_DEPTH} levels deep here; a definition needs far fewer",
                    line,
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _place(parent: Node | None, index: object) -> tuple[int, object]:
    """Where a node sits: its collection and its position there (a list index, or the id of its mapping key)."""
    return id(parent), id(index) if isinstance(index, Node) else index


def _children(node: Node) -> list[tuple[object, Node]]:
    """The nodes inside `node`, each with its place in it as the composer names it."""
    if isinstance(node, SequenceNode):
        return list(enumerate(node.value))
    if isinstance(node, MappingNode):
        return [pair for key, value in node.value for pair in ((None, key), (key, value))]
    return []


def _check_expansion(root: Node, aliases: dict[tuple[int, object], tuple[str, int]]) -> None:
    """Refuse a document whose aliases repeat too many values, or nest it too deep, once expanded.

    Each node is measured once (its values and depth, expanded), so this takes time in
    proportion to the text, however far the aliases would expand it.
    """
    measured: dict[int, tuple[int, int]] = {}
    repeated = 0

    def measure(node: Node, within: frozenset[int]) -> tuple[int, int]:
        nonlocal repeated
        if id(node) in within:
            return 0, 0  # an alias to a collection it sits in: `_build` reports the loop
        values, depth = 1, 0
        for index, child in _children(node):
            again = id(child) in measured
            size, child_depth = measured[id(child)] if again else measure(child, within | {id(node)})
            name, line = aliases.get(_place(node, index), ("", child.start_mark.line + 1))
            if again:
                repeated += size
                if repeated > MAX_REPEATED_VALUES:
                    raise YamlSyntaxError(
                        f"invalid YAML: alias *{name} takes the values that aliases repeat past "
                        f"{MAX_REPEATED_VALUES:,}; a definition needs far fewer, "
                        "so write them out or use fewer aliases",
                        line,
                    )
            if child_depth + 1 > MAX_DEPTH:
                raise YamlSyntaxError(
                    f"invalid YAML: alias *{name} nests values more than {MAX_DEPTH} levels deep; "
                    "a definition needs far fewer",
                    line,
                )
            values += size
            depth = max(depth, child_depth + 1)
        measured[id(node)] = (values, depth)
        return values, depth

    measure(root, frozenset())


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
