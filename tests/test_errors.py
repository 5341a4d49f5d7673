"""The error tree that `agentflows.errors` draws is the one the code defines.

Every module of the package is imported and every exception class it defines is
collected; each must be drawn in the tree, under its real parent, tagged with
the errors module that defines it (an untagged line is in its parent's module).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from types import ModuleType

import agentflows
import agentflows.errors

PACKAGES = ("agentflows", "agentflows.tasks", "agentflows.blocks", "agentflows.deployments")
SKIPPED = ("agentflows.agents", "agentflows.tasks.storage.migrations")
"""Modules that do work on import (compile every flow, run Alembic) and define no errors."""
TAGS = {
    "here": "agentflows.errors",
    "tasks": "agentflows.tasks.errors",
    "deployments": "agentflows.deployments.errors",
}


def every_module() -> list[ModuleType]:
    modules = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        modules.append(package)
        for info in pkgutil.walk_packages(package.__path__, f"{package_name}."):
            if not info.name.startswith(SKIPPED):
                modules.append(importlib.import_module(info.name))
    return modules


def defined_errors() -> dict[str, type[BaseException]]:
    """Every exception class defined in the package, by name."""
    found = {}
    for module in every_module():
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == module.__name__:
                found[value.__name__] = value
    return found


def drawn_tree() -> dict[str, tuple[str | None, str]]:
    """Per class drawn in the docstring: its parent in the drawing and the module its tag names."""
    doc = agentflows.errors.__doc__ or ""
    block = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    drawn: dict[str, tuple[str | None, str]] = {}
    stack: list[str] = []
    for line in block.splitlines():
        name = re.search(r"[A-Z]\w+", line)
        assert name is not None, line
        depth = (name.start() - 4) // 4
        stack[depth:] = [name.group()]
        parent = stack[depth - 1] if depth else None
        tag = re.search(r"\[(\w+)\]\s*$", line)
        module = TAGS[tag.group(1)] if tag else drawn[parent or ""][1]
        drawn[name.group()] = (parent, module)
    return drawn


def test_every_error_class_lives_in_an_errors_module() -> None:
    misplaced = {name: cls.__module__ for name, cls in defined_errors().items() if cls.__module__ not in TAGS.values()}

    assert misplaced == {}


def test_the_root_errors_module_draws_the_whole_tree_correctly() -> None:
    defined = defined_errors()
    actual = {
        name: (cls.__bases__[0].__name__ if cls.__bases__[0] is not Exception else None, cls.__module__)
        for name, cls in defined.items()
    }

    assert drawn_tree() == actual
