"""Load one agent definition and find everything wrong with it.

`load_definition(file, root)` reads the YAML with line tracking, validates it
with pydantic, then checks what the schema alone cannot: that every template
exists inside the definitions folder, parses, includes only literal paths inside
that folder, and uses only variables its step provides (`agentflows.templates`
checks them against the namespace of each role); that the builder finds the
draft fields it needs; that expressions and run names refer to real inputs; that
knowledge sources exist inside the folder (`agentflows.knowledge`); that every
check compiles and uses only its step's variables (`agentflows.checks`).
All problems of a file are collected and raised together as one
`DefinitionError`; a valid file gives a `LoadedAgent` holding the definition and
the source of every template it renders.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from jinja2 import TemplateSyntaxError
from pydantic import ValidationError

from agentflows.checks import check_rule_problems
from agentflows.definition import AgentDefinition
from agentflows.errors import DefinitionError, Problem, YamlSyntaxError
from agentflows.fields import FieldSpec
from agentflows.inputs import default_problem, fit_problem
from agentflows.knowledge import knowledge_problems, query_problems
from agentflows.tasks.builders import layout_variables, required_fields
from agentflows.tasks.prompts import environment
from agentflows.templates import AGENT_ATTRIBUTES, CONTEXT_ATTRIBUTES, Namespace, TemplateChecker, variable_problems
from agentflows.validation_messages import problems_from_validation
from agentflows.yaml_source import LineMap, YamlPath, dotted, load_yaml

SHARED_PARAMETERS = ("audience", "language", "level")
"""Parameters the router passes to every agent that takes them."""
RESERVED_PLAN_FIELDS = frozenset({"title", "items"})
PROMPT_VARIABLES = frozenset({"agent", "inputs", "context", "plan", "item"})
"""Variables the model steps' templates get from agentflows itself; `uses` may not take their names."""
JINJA = frozenset(environment({}).globals)
RESERVED_ITEM_FIELDS = frozenset({"key"})
MAX_DEFINITION_BYTES = 256 * 1024
"""Largest definition file read (the shipped ones are under 3 KB); long text belongs in templates."""


@dataclass(frozen=True)
class LoadedAgent:
    """A valid definition with the templates it renders."""

    definition: AgentDefinition
    file: Path
    root: Path
    yaml_text: str
    sources: Mapping[str, str]
    """Source of every template the agent renders, includes too, by name."""
    renders: Mapping[str, tuple[str, ...]]
    """Templates each role renders: `system`, `decide`, `generate`, `build`."""

    @property
    def name(self) -> str:
        return self.definition.name

    @cached_property
    def flow_version(self) -> str:
        """Declared version plus a hash of the YAML and every template it renders."""
        digest = hashlib.sha256(self.yaml_text.encode())
        for name in sorted(self.sources):
            digest.update(f"\0{name}\0{self.sources[name]}".encode())
        return f"{self.definition.version}+{digest.hexdigest()[:12]}"

    def templates_for(self, *roles: str) -> dict[str, str]:
        """Sources of the templates the given roles render."""
        names = {name for role in roles for name in self.renders[role]}
        return {name: self.sources[name] for name in sorted(names)}


def load_definition(file: Path, root: Path) -> LoadedAgent:
    """Load and check `file`; raise `DefinitionError` listing every problem found."""
    text = read_definition_text(file)
    try:
        data, lines = load_yaml(text)
    except YamlSyntaxError as exc:
        raise DefinitionError([Problem(file, exc.line, "", str(exc))]) from None
    if not isinstance(data, dict):
        raise DefinitionError([Problem(file, lines.line_of(()) or 1, "", _not_a_mapping(data))])
    try:
        definition = AgentDefinition.model_validate(data)
    except ValidationError as exc:
        raise DefinitionError(problems_from_validation(exc, file, data, lines)) from None
    checker = _Checker(definition, file, root, lines)
    agent = checker.run(text)
    if checker.problems:
        raise DefinitionError(checker.problems)
    assert agent is not None
    return agent


def read_definition_text(file: Path) -> str:
    """The text of a definition (or eval) file; a `DefinitionError` when it is too large or not UTF-8 text."""
    try:
        with file.open("rb") as opened:
            raw = opened.read(MAX_DEFINITION_BYTES + 1)
    except OSError as exc:
        raise DefinitionError([Problem(file, None, "", f"cannot read the file: {exc.strerror or exc}")]) from None
    if len(raw) > MAX_DEFINITION_BYTES:
        line = raw[:MAX_DEFINITION_BYTES].count(b"\n") + 1
        message = (
            f"the file is larger than the {MAX_DEFINITION_BYTES:,} bytes a definition may have (the limit falls on "
            "this line); move long text into its templates"
        )
        raise DefinitionError([Problem(file, line, "", message)]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        message = f"the file is not UTF-8 text: byte {raw[exc.start]:#04x} cannot be decoded; save it as UTF-8"
        raise DefinitionError([Problem(file, line, "", message)]) from None


def outside_link(file: Path, folder: Path) -> Problem | None:
    """The problem with `file` when it is a link to a file outside `folder`, or None."""
    target = file.resolve()
    if target.is_relative_to(folder):
        return None
    message = f"the file is a link to {target}, outside the definitions folder {folder}; copy the file into the folder"
    return Problem(file, None, "", message)


def _not_a_mapping(data: object) -> str:
    """Why a YAML document that is not a mapping is no definition."""
    keys = "name, version, description, content_type, inputs, prompts, steps"
    if data is None:
        return f"the file is empty; a definition is a mapping with keys such as {keys}"
    kind = "a list" if isinstance(data, list) else f"the single value {data!r}"
    return f"the file holds {kind}, but a definition is a mapping with keys such as {keys}"


class _Checker:
    """Checks a schema-valid definition against its templates and builder."""

    def __init__(self, definition: AgentDefinition, file: Path, root: Path, lines: LineMap) -> None:
        self.d = definition
        self.file = file
        self.root = root
        self.lines = lines
        self.problems: list[Problem] = []
        self.templates = TemplateChecker(root, self.problems, self.problem)

    def problem(self, path: YamlPath, message: str) -> None:
        self.problems.append(Problem(self.file, self.lines.line_of(path), dotted(path), message))

    def run(self, text: str) -> LoadedAgent | None:
        self.check_inputs()
        self.check_returns()
        self.check_builder_fields()
        self.check_degrade()
        self.check_count()
        self.check_totals()
        self.check_run_name()
        self.check_routing()
        knowledge_problems(self.d, self.root, self.problem)
        query_problems(self.d, self.namespace, self.problem)
        check_rule_problems(self.d, self.namespace, self.problem)
        self.check_uses()
        renders = self.check_templates()
        if self.problems:
            return None
        return LoadedAgent(self.d, self.file, self.root, text, dict(self.templates.sources), renders)

    # -- inputs, schemas, expressions -------------------------------------------------

    def check_inputs(self) -> None:
        for name, spec in self.d.inputs.items():
            if problem := default_problem(spec):
                key = "enum" if problem.startswith("enum") else "default"
                self.problem(("inputs", name, key), problem)

    def check_returns(self) -> None:
        plan = self.d.steps.decide.returns
        for name in RESERVED_PLAN_FIELDS & plan.fields.keys():
            self.problem(
                ("steps", "decide", "returns", "fields", name), f"plan field {name!r} is built in; choose another name"
            )
        for name in RESERVED_ITEM_FIELDS & plan.items.fields.keys():
            self.problem(
                ("steps", "decide", "returns", "items", "fields", name),
                f"item field {name!r} is built in; choose another name",
            )
        title = plan.items.fields.get("title")
        if title is not None and title.type != "string":
            self.problem(
                ("steps", "decide", "returns", "items", "fields", "title"),
                "an item's title is a string; only its description and examples may change",
            )

    def check_degrade(self) -> None:
        steps = self.d.steps
        if steps.decide.on_invalid == "degrade":
            self.problem(
                ("steps", "decide", "on_invalid"), "a plan cannot be kept as plain text; use 'fail' for decide"
            )
        if steps.generate.on_invalid == "degrade" and degrade_field(self.d) is None:
            self.problem(
                ("steps", "generate", "on_invalid"),
                "'degrade' keeps a bad answer as plain text in the draft's one required text field, so "
                "generate.returns needs exactly one required string field and the builder's other fields "
                "must come from the plan items; use 'fail'",
            )

    def check_builder_fields(self) -> None:
        declared: dict[str, FieldSpec] = {**self.d.steps.decide.returns.items.fields, **self.d.steps.generate.returns}
        path: YamlPath = ("steps", "generate", "returns")
        for name, (kind, fmt) in required_fields(self.d.builder).items():
            spec = declared.get(name)
            need = f"{kind}" + (f" with format {fmt}" if fmt else "")
            if spec is None:
                self.problem(
                    path,
                    f"builder {self.d.builder!r} needs a draft field {name!r} ({need}); "
                    "declare it here or in the plan items",
                )
            elif spec.type != kind or (fmt and spec.format != fmt):
                got = spec.type + (f" with format {spec.format}" if spec.format else "")
                self.problem((*path, name), f"builder {self.d.builder!r} needs {name!r} to be {need}, not {got}")

    def check_count(self) -> None:
        count = self.d.steps.decide.returns.items.count
        if isinstance(count, str):
            self.check_inputs_expression(("steps", "decide", "returns", "items", "count"), "count", count)

    def check_totals(self) -> None:
        items = self.d.steps.decide.returns.items
        for name, total in items.totals.items():
            path: YamlPath = ("steps", "decide", "returns", "items", "totals", name)
            field = items.fields.get(name)
            if field is None or field.type not in ("integer", "number"):
                numbers = ", ".join(n for n, f in items.fields.items() if f.type in ("integer", "number")) or "none"
                found = "not an item field" if field is None else f"a {field.type} field"
                self.problem(path, f"totals {name!r} is {found}; item number fields: {numbers}")
            elif isinstance(total, str):
                self.check_inputs_expression(path, f"totals {name}", total)

    def check_inputs_expression(self, path: YamlPath, label: str, expression: str) -> None:
        """An expression over the inputs (`{{ inputs.chapters }}`): valid, and naming declared inputs only."""
        text = expression.strip()
        text = text[2:-2] if text.startswith("{{") and text.endswith("}}") else text
        try:
            ast = environment({}).parse("{{ " + text + " }}")
        except TemplateSyntaxError as exc:
            self.problem(path, f"{label} {expression!r} is not a valid expression: {exc.message}")
            return
        for message, _ in variable_problems(ast, {"inputs": frozenset(self.d.inputs)}):
            self.problem(path, f"{label} {expression!r} {message}")

    def check_routing(self) -> None:
        routing = self.d.routing
        inputs = ", ".join(self.d.inputs) or "none"
        if routing.subject_input is not None and routing.subject_input not in self.d.inputs:
            self.problem(("routing", "subject_input"), f"{routing.subject_input!r} is not an input; inputs: {inputs}")
        for name, pattern in routing.extract.items():
            if name not in self.d.inputs:
                self.problem(("routing", "extract", name), f"{name!r} is not an input; inputs: {inputs}")
            elif re.compile(pattern).groups == 0:
                self.problem(
                    ("routing", "extract", name), f"pattern {pattern!r} has no group; put the value in (?P<value>...)"
                )
        for shared, name in routing.shared.items():
            if shared not in SHARED_PARAMETERS:
                valid = ", ".join(SHARED_PARAMETERS)
                self.problem(
                    ("routing", "shared", shared), f"{shared!r} is not a shared router parameter; they are: {valid}"
                )
            elif name not in self.d.inputs:
                self.problem(("routing", "shared", shared), f"{name!r} is not an input; inputs: {inputs}")
        for size, values in routing.sizes.items():
            if not routing.keywords:
                self.problem(("routing", "sizes"), "a size word counts only before one of routing.keywords; add some")
            for name, value in values.items():
                path: YamlPath = ("routing", "sizes", size, name)
                if name not in self.d.inputs:
                    self.problem(path, f"{name!r} is not an input; inputs: {inputs}")
                elif problem := fit_problem(self.d.inputs[name], value):
                    self.problem(path, f"{value!r} does not fit input {name!r}: {problem}")

    def check_uses(self) -> None:
        """Names of the upstream variables; that the agents exist and form no cycle is checked per folder."""
        taken = {**{name: "built in" for name in PROMPT_VARIABLES}, **{name: "a Jinja global" for name in JINJA}}
        for agent, variable in self.d.upstream_variables.items():
            path: YamlPath = ("uses", agent, "as") if self.d.uses[agent].variable else ("uses", agent)
            if agent == self.d.name:
                self.problem(("uses", agent), f"agent {agent!r} cannot build on itself; remove this entry")
            elif variable in taken:
                self.problem(path, f"template variable {variable!r} is {taken[variable]}; set another name with `as`")
            taken.setdefault(variable, f"already the name of {agent!r}'s result")

    def check_run_name(self) -> None:
        if self.d.run_name is None:
            return
        try:
            names = {field for _, field, _, _ in string.Formatter().parse(self.d.run_name) if field is not None}
        except ValueError as exc:
            self.problem(("run_name",), f"run_name {self.d.run_name!r} is not a valid format string: {exc}")
            return
        unknown = sorted(names - self.d.inputs.keys())
        if unknown:
            known = ", ".join(self.d.inputs) or "none"
            self.problem(("run_name",), f"run_name uses {{{unknown[0]}}}, which is not an input; inputs: {known}")

    # -- templates -----------------------------------------------------------------------

    def check_templates(self) -> dict[str, tuple[str, ...]]:
        build = self.d.steps.build
        roles: dict[str, list[tuple[YamlPath, str]]] = {
            "system": [(("prompts", "base"), self.d.prompts.base), (("prompts", "domain"), self.d.prompts.domain)],
            "decide": [(("steps", "decide", "prompt"), self.d.steps.decide.prompt)],
            "generate": [(("steps", "generate", "prompt"), self.d.steps.generate.prompt)],
            "build": [(("steps", "build", "layout") if build.layout else ("steps", "build"), self.d.layout)],
        }
        renders = {}
        for role, entries in roles.items():
            names: list[str] = []
            for path, name in entries:
                names += self.templates.closure(path, name, self.namespace(role))
            renders[role] = tuple(dict.fromkeys(names))
        return renders

    def namespace(self, role: str) -> Namespace:
        """Variables a role's templates may use; a set lists the keys a variable has."""
        plan = self.d.steps.decide.returns
        base: dict[str, frozenset[str] | None] = {
            "agent": AGENT_ATTRIBUTES,
            "inputs": frozenset(self.d.inputs),
            "context": CONTEXT_ATTRIBUTES,
            "knowledge": None,
        }
        plan_keys = RESERVED_PLAN_FIELDS | plan.fields.keys()
        item_keys = RESERVED_ITEM_FIELDS | {"title"} | plan.items.fields.keys()
        base.update({variable: None for variable in self.d.upstream_variables.values()})  # keys: per folder
        if role == "generate":
            return {**base, "plan": plan_keys, "item": item_keys}
        if role == "build":
            extra = {name: None for name in layout_variables(self.d.builder)}
            return {**extra, "agent": AGENT_ATTRIBUTES, "inputs": frozenset(self.d.inputs), "plan": plan_keys}
        return base


def degrade_field(d: AgentDefinition) -> str | None:
    """The draft field a degraded answer is kept in, or None when drafts cannot be degraded.

    That is the one required string field of `generate.returns`, provided every other
    field the builder reads comes from the plan items.
    """
    returns = d.steps.generate.returns
    text_fields = [name for name, spec in returns.items() if spec.required and spec.type == "string"]
    required = [name for name, spec in returns.items() if spec.required]
    if len(text_fields) != 1 or required != text_fields:
        return None
    from_items = d.steps.decide.returns.items.fields.keys()
    needs = set(required_fields(d.builder)) - {text_fields[0]} - from_items
    return None if needs else text_fields[0]
