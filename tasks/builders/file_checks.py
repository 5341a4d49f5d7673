"""Checks on finished files: what a reader would find broken in a file whatever its content says.

    *.py               parses as Python
    test files         (`test_*.py`, `*_test.py`) define at least one test: a `test…` function,
                       or a `Test…` class with one
    *.json             parses as JSON
    *.toml             parses as TOML
    *.yaml, *.yml      parses as YAML

`file_problems(path, text)` says what is wrong with one file, in words a model can
act on. The code-tree builder asks it about every draft, so a file that does not
parse is re-asked in `generate`; `build_content` asks it about every finished file
of every builder, and refuses content that fails (a draft served from an older
cache, or degraded to plain text, is caught there).
"""

from __future__ import annotations

import ast
import json
import tomllib
from collections.abc import Callable

import yaml

MAX_CHECKED_CHARS = 1_000_000
"""Largest file parsed; a longer one is not checked (no model writes one; the build's size caps apply)."""


def file_problems(path: str, text: str) -> list[str]:
    """What is wrong with the file at `path` holding `text` (nothing for kinds it has no check for)."""
    if len(text) > MAX_CHECKED_CHARS:
        return []
    name = path.rsplit("/", 1)[-1].lower()
    suffix = name.rsplit(".", 1)[-1] if "." in name else ""
    check = _CHECKS.get(suffix)
    return check(path, text) if check else []


def _python(path: str, text: str) -> list[str]:
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as exc:
        return [f"`{path}` is not valid Python: {exc.msg} (line {exc.lineno}); write the whole file so it parses"]
    except (ValueError, RecursionError, MemoryError) as exc:  # a NUL character, nesting too deep to parse
        return [f"`{path}` is not valid Python: {exc or type(exc).__name__}"]
    name = path.rsplit("/", 1)[-1]
    if (name.startswith("test_") or name.endswith("_test.py")) and not _has_test(tree):
        return [f"`{path}` is a test file with no test in it; define at least one `test_…` function"]
    return []


def _has_test(tree: ast.Module) -> bool:
    """Whether a module defines a test pytest would collect: a `test…` function or a `Test…` class with one."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            return True
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            methods = (n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))
            if any(m.name.startswith("test") for m in methods):
                return True
    return False


def _json(path: str, text: str) -> list[str]:
    try:
        json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        return [f"`{path}` is not valid JSON: {getattr(exc, 'msg', exc)} (line {getattr(exc, 'lineno', '?')})"]
    return []


def _toml(path: str, text: str) -> list[str]:
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return [f"`{path}` is not valid TOML: {exc}"]
    return []


def _yaml(path: str, text: str) -> list[str]:
    try:
        yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        return [f"`{path}` is not valid YAML: {getattr(exc, 'problem', None) or exc}{where}"]
    return []


_CHECKS: dict[str, Callable[[str, str], list[str]]] = {
    "py": _python,
    "json": _json,
    "toml": _toml,
    "yaml": _yaml,
    "yml": _yaml,
}
