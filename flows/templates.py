"""Check the templates a definitions folder renders, before anything runs.

A template is checked from where it is named (a YAML key of a definition, or
the router's classifier prompt): it must lie inside the definitions folder (a
link that leads out of it is refused), exist, hold at most `MAX_TEMPLATE_BYTES`,
parse, include (import, extend) only literal paths inside that folder, and use
only the variables its renderer provides, a `Namespace`. Everything it includes
is checked the same way. A problem inside a template is reported at
the template's own file and line; one with a template named in the YAML, at
that YAML key.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import TemplateSyntaxError, meta, nodes

from agentflows.errors import Problem
from agentflows.tasks.prompts import environment
from agentflows.yaml_source import YamlPath, dotted

Namespace = Mapping[str, frozenset[str] | None]
"""Variables a template may use; a set lists the keys a variable has (None: any)."""
AGENT_ATTRIBUTES = frozenset({"name", "version", "description", "content_type"})
"""Keys of the `agent` variable every template sees."""
CONTEXT_ATTRIBUTES = frozenset({"request"})
"""Keys of the `context` variable."""
MAX_TEMPLATE_BYTES = 256 * 1024
"""Largest template file read; a prompt this long would not fit most context windows anyway."""


@dataclass
class TemplateChecker:
    """Loads templates of one definitions folder, with all they include, and reports what is wrong with them.

    Problems go to `problems` (shared with the caller, so they keep the order they
    were found in); one with a template named in the YAML goes through `named_problem`,
    which knows where that YAML key is.
    """

    root: Path
    problems: list[Problem]
    named_problem: Callable[[YamlPath, str], None]
    sources: dict[str, str] = field(default_factory=dict)
    """Source of every template read so far, by name."""

    def closure(self, path: YamlPath, entry: str, namespace: Namespace) -> list[str]:
        """Load `entry` and everything it includes; check each against `namespace`."""
        seen: list[str] = []
        pending: list[tuple[str, _Reference | None]] = [(entry, None)]
        while pending:
            name, reference = pending.pop()
            if name in seen:
                continue
            source = self.read_template(path, name, reference)
            if source is None:
                continue
            seen.append(name)
            try:
                ast = environment({name: source}).parse(source, name=name)
            except TemplateSyntaxError as exc:
                self.template_problem(path, name, exc.lineno, f"template syntax error: {exc.message}")
                continue
            pending += reversed([(target, _Reference(name, line)) for target, line in self.includes(path, name, ast)])
            for message, line in variable_problems(ast, namespace):
                self.template_problem(path, name, line, message)
        return seen

    def includes(self, path: YamlPath, name: str, ast: nodes.Template) -> list[tuple[str, int]]:
        """The templates `name` includes, imports or extends, with their lines; reports names it may not use."""
        found = []
        for target, line in _referenced_templates(ast):
            if target is None:
                self.template_problem(
                    path, name, line, "includes a template whose name is computed; write the included path literally"
                )
            elif not _inside(target):
                self.template_problem(
                    path,
                    name,
                    line,
                    f"include {target!r} leaves the definitions folder; paths are relative to "
                    f"{self.root} and may not use '..' or start with '/'",
                )
            else:
                found.append((target, line))
        return found

    def read_template(self, path: YamlPath, name: str, reference: _Reference | None) -> str | None:
        """Source of template `name`, or None after reporting why it cannot be used.

        A problem with a template named in the YAML is reported at `path`; one with
        an included template, at the `reference` that includes it.
        """
        if name in self.sources:
            return self.sources[name]
        file = (self.root / name).resolve()
        what = f"includes {name!r}, which" if reference else f"template {name!r}"
        if not _inside(name) or not file.is_relative_to(self.root.resolve()):
            self.reference_problem(path, reference, f"{what} is outside the definitions folder {self.root}")
            return None
        if not file.is_file():
            message = f"{what} does not exist under {self.root}{_suggest(self.root, name)}"
            self.reference_problem(path, reference, message)
            return None
        if (size := file.stat().st_size) > MAX_TEMPLATE_BYTES:
            message = f"{what} has {size:,} bytes, more than the {MAX_TEMPLATE_BYTES:,} a template may have"
            self.reference_problem(path, reference, message)
            return None
        try:
            self.sources[name] = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.named_problem(path, f"cannot read template {name!r}: {exc}")
            return None
        return self.sources[name]

    def reference_problem(self, path: YamlPath, reference: _Reference | None, message: str) -> None:
        """Report at the template line that includes a template, or at `path` when the YAML names it."""
        if reference is None:
            self.named_problem(path, message)
        else:
            self.template_problem(path, reference.template, reference.line, message)

    def template_problem(self, path: YamlPath, name: str, line: int | None, message: str) -> None:
        """Report a problem in template `name`, reached from `path`; once, though several roles render it."""
        problem = Problem(self.root / name, line, dotted(path), message)
        if not problem.repeats(self.problems):
            self.problems.append(problem)


def variable_problems(ast: nodes.Template, namespace: Namespace) -> list[tuple[str, int | None]]:
    """(message, line) for every variable `ast` uses that `namespace` lacks, and every key a variable lacks."""
    env = environment({})
    undeclared = meta.find_undeclared_variables(ast) - set(env.globals)
    found = []
    for name in sorted(undeclared - namespace.keys()):
        found.append(
            (
                f"uses variable {name!r}, which this step does not provide; available: {', '.join(sorted(namespace))}",
                _line_of_name(ast, name),
            )
        )
    for node, name, attribute in _attribute_reads(ast):
        keys = namespace.get(name)
        if name in undeclared and keys is not None and attribute not in keys:
            hint = ", ".join(sorted(keys)) or "none"
            found.append((f"uses {name}.{attribute}, but {name!r} has no {attribute!r}; it has: {hint}", node.lineno))
    return found


def _attribute_reads(ast: nodes.Template) -> list[tuple[nodes.Node, str, str]]:
    """(node, variable, key) for every `variable.key` and `variable['key']` in the template."""
    reads: list[tuple[nodes.Node, str, str]] = []
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        target = node.node  # type: ignore[attr-defined]
        if not isinstance(target, nodes.Name) or target.ctx != "load":
            continue
        if isinstance(node, nodes.Getattr):
            reads.append((node, target.name, node.attr))
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):  # type: ignore[attr-defined]
            reads.append((node, target.name, node.arg.value))  # type: ignore[attr-defined]
    return reads


def _line_of_name(ast: nodes.Template, name: str) -> int | None:
    for node in ast.find_all(nodes.Name):
        if node.name == name:
            return node.lineno
    return None


@dataclass(frozen=True)
class _Reference:
    """Where a template includes (imports, extends) another."""

    template: str
    line: int


def _referenced_templates(ast: nodes.Template) -> list[tuple[str | None, int]]:
    """(name, line) of every template `ast` includes, imports or extends; None for a computed name."""
    found: list[tuple[str | None, int]] = []
    for node in ast.find_all((nodes.Extends, nodes.FromImport, nodes.Import, nodes.Include)):
        template = node.template  # type: ignore[attr-defined]
        choices = template.items if isinstance(template, nodes.Tuple | nodes.List) else [template]
        for choice in choices:
            name = choice.value if isinstance(choice, nodes.Const) else None
            found.append((name if isinstance(name, str) else None, node.lineno))
    return found


def _inside(name: str) -> bool:
    """True when a template name is a plain relative path (no '..', no leading '/')."""
    parts = name.replace("\\", "/").split("/")
    return bool(name) and not name.startswith("/") and ".." not in parts and "" not in parts


def _suggest(root: Path, name: str) -> str:
    existing = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.suffix != ".yaml"]
    close = difflib.get_close_matches(name, existing, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
