"""Load YAML and remember the line of every key, so errors can point at it.

`load_yaml` returns plain Python data plus a `LineMap` from YAML paths
(`("steps", "decide", "prompt")`, list positions as ints) to 1-based line
numbers. Duplicate keys, which PyYAML would silently overwrite, are reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

YamlPath = tuple[str | int, ...]


class YamlSyntaxError(Exception):
    """The text is not valid YAML, or repeats a key."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


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


def load_yaml(text: str) -> tuple[Any, LineMap]:
    """Parse one YAML document into plain data and the lines of its keys."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines = LineMap()
        data = _build(loader, node, (), lines) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise YamlSyntaxError(f"invalid YAML: {exc.problem or exc.context}", line) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"invalid YAML: {exc}", None) from None
    finally:
        loader.dispose()
    return data, lines


def _build(loader: yaml.SafeLoader, node: Node, path: YamlPath, lines: LineMap) -> Any:
    lines.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, MappingNode):
        return _build_mapping(loader, node, path, lines)
    if isinstance(node, SequenceNode):
        return [_build(loader, item, (*path, index), lines) for index, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _build_mapping(loader: yaml.SafeLoader, node: MappingNode, path: YamlPath, lines: LineMap) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, ScalarNode) or not isinstance(key, str | int | float | bool):
            raise YamlSyntaxError("invalid YAML: mapping keys must be plain scalars", line)
        if key in result:
            raise YamlSyntaxError(f"duplicate key {key!r}", line)
        key_path = (*path, str(key))
        lines.lines[key_path] = line
        result[key] = _build(loader, value_node, key_path, lines)
    return result
