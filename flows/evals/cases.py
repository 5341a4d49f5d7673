"""Eval files: an agent's eval cases, kept next to its definition, and what is wrong with them.

`evals/<agent>.yaml` in the definitions folder holds the cases of one agent:

    assert:                              # optional: assertions every case makes
      - that: "inputs.topic | lower in title | lower"
        message: "the title names the topic"
    cases:
      - name: water_cycle
        inputs: {topic: The water cycle, questions: 3}
        assert:
          - each: drafts                 # an expression, as a definition's checks are written
            that: "it.answer < it.choices | length"
            message: "question {{ it.title }} has its answer outside its choices"
          - file: index.html             # a built file (a glob: `*.py`, `tests/*`)
            contains: "<h1>{{ title | e }}</h1>"
          - file: "*.py"
            parses: true                 # Python/JSON/TOML/YAML parse, test files hold a test
          - rubric: "Each question has one defensible right answer."   # graded by the model

An assertion's expressions see `agent`, `inputs`, `plan` (title, items, plan
fields), `drafts` (each draft's fields beside its plan item's), `files` (path →
text of every built file), `title` and `metadata` of the built content.
`load_suite` checks a file as `validate` checks a definition (with the same bounds:
size, nesting, no link out of the definitions folder): every problem with its file,
line and YAML path, all raised together as one `DefinitionError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError
from pydantic import Field, ValidationError, model_validator

from agentflows.checks import spec_problems
from agentflows.errors import AgentNotFound, DefinitionError, InputError, Problem, YamlSyntaxError
from agentflows.fields import Identifier, RegularExpression, Spec
from agentflows.inputs import validate_inputs
from agentflows.loader import RESERVED_PLAN_FIELDS, LoadedAgent, outside_link, read_definition_text
from agentflows.tasks.checks import CheckSpec, parse_message
from agentflows.templates import AGENT_ATTRIBUTES, Namespace, variable_problems
from agentflows.validation_messages import problems_from_validation
from agentflows.yaml_source import LineMap, YamlPath, dotted, load_yaml

EVALS_FOLDER = "evals"
"""Where eval files live, relative to the definitions folder."""
RESULT_VARIABLES = ("agent", "inputs", "plan", "drafts", "files", "title", "metadata")
"""The names an assertion's expressions may use."""


class Assertion(Spec):
    """One thing a reader would check in a case's result: an expression, a built file, or a rubric."""

    that: str | None = Field(default=None, min_length=1)
    """A Jinja expression that must be true, as in a definition's `checks`, e.g. `plan.items | length == 3`."""
    each: str | None = Field(default=None, min_length=1)
    """With `that`: a Jinja expression giving a list; `that` must hold for every element, which it calls `it`."""
    file: str | None = Field(default=None, min_length=1)
    """A built file's path, or a glob such as `*.py` (`*` crosses folders); every file it matches is checked."""
    contains: str | None = Field(default=None, min_length=1)
    """With `file`: text every matching file contains, as a template (`<h1>{{ title | e }}</h1>`)."""
    regex: RegularExpression | None = Field(default=None, min_length=1)
    """With `file`: a regular expression every matching file has a match of (multi-line mode)."""
    parses: bool | None = None
    """With `file`: true when every matching file must parse (Python, JSON, TOML, YAML; test files hold a test)."""
    rubric: str | None = Field(default=None, min_length=1)
    """What a model grades the content against; skipped when no language model answers (offline)."""
    message: str | None = Field(default=None, min_length=1)
    """What the assertion checks, in words: reports name it; for `that`, a template filled in per failure."""

    @model_validator(mode="after")
    def _one_kind(self) -> Assertion:
        kinds = [key for key in ("that", "file", "rubric") if getattr(self, key) is not None]
        if len(kinds) != 1:
            given = f"it has {' and '.join(kinds)}" if kinds else "it has none"
            raise ValueError(f"an assertion has exactly one of that, file or rubric; {given}")
        if self.each is not None and self.that is None:
            raise ValueError("`each` goes with `that`")
        on_file = [key for key in ("contains", "regex", "parses") if getattr(self, key) is not None]
        if self.file is not None and len(on_file) != 1:
            raise ValueError("an assertion on a file has exactly one of contains, regex or parses")
        if self.file is None and on_file:
            raise ValueError(f"`{on_file[0]}` goes with `file`")
        return self

    @property
    def name(self) -> str:
        """How reports name it: its message, else what it checks."""
        if self.message:
            return " ".join(self.message.split())
        if self.that is not None:
            return f"{self.each} all satisfy {self.that}" if self.each else self.that
        if self.rubric is not None:
            return f"rubric: {self.rubric}"
        if self.parses:
            return f"{self.file} parses"
        if self.contains is not None:
            return f"{self.file} contains {self.contains!r}"
        return f"{self.file} matches /{self.regex}/"

    def check(self) -> CheckSpec:
        """The `that` assertion as a check (its message: the assertion's, or the expression it tests)."""
        assert self.that is not None
        message = self.message or "{% raw %}`" + self.that + "` does not hold{% endraw %}"
        return CheckSpec(that=self.that, each=self.each, message=message)


class EvalCase(Spec):
    """One case: inputs to run the agent with, and what its result must satisfy."""

    name: Identifier
    """Name of the case (lower case, digits, underscores), unique in the file; baselines name it."""
    description: str = ""
    inputs: dict[str, Any] = Field(default_factory=dict)
    """The agent's inputs, as `agentflows run -p` would give them; defaults fill in the rest."""
    assertions: list[Assertion] = Field(default_factory=list, alias="assert")
    """What the result must satisfy, besides the file's `assert` for every case."""


class EvalFile(Spec):
    """An eval file: the cases of one agent (its file name), and assertions they all make."""

    description: str = ""
    assertions: list[Assertion] = Field(default_factory=list, alias="assert")
    """Assertions every case makes."""
    cases: list[EvalCase] = Field(min_length=1)
    """The cases; each runs the agent once per repeat."""


class EvalSuite:
    """An agent's checked eval file: its cases, each with its own and the file's assertions."""

    def __init__(self, agent: LoadedAgent, file: Path, spec: EvalFile) -> None:
        self.agent = agent
        self.file = file
        self.spec = spec

    @property
    def cases(self) -> list[EvalCase]:
        return self.spec.cases

    def assertions(self, case: EvalCase) -> list[Assertion]:
        """What `case` asserts: the file's assertions for every case, then its own."""
        return [*self.spec.assertions, *case.assertions]


def eval_file(root: Path, agent: str) -> Path:
    """Where the eval cases of `agent` live in the definitions folder `root`."""
    return root / EVALS_FOLDER / f"{agent}.yaml"


def eval_files(root: Path) -> list[Path]:
    """Every eval file of the definitions folder `root`, sorted by name."""
    return sorted(p for p in (root / EVALS_FOLDER).glob("*.yaml") if p.is_file())


def load_suites(root: Path, agents: Mapping[str, LoadedAgent], names: Sequence[str] | None = None) -> list[EvalSuite]:
    """The checked eval suites of the agents `names` (default: every eval file of `root`).

    An agent named without an eval file is an `InputError`; problems in the files, one
    `DefinitionError` with all of them.
    """
    if names is None:
        files = eval_files(root)
        if not files:
            raise InputError(f"no agent in {root} has eval cases; write them in {root / EVALS_FOLDER}/<agent>.yaml")
    else:
        files = [eval_file(root, name) for name in dict.fromkeys(names)]
        for name, file in zip(dict.fromkeys(names), files, strict=True):
            if name not in agents:
                raise AgentNotFound(name, agents)
            if not file.is_file():
                raise InputError(f"agent {name!r} has no eval cases; write them in {file}")
    suites: list[EvalSuite] = []
    problems: list[Problem] = []
    for file in files:
        try:
            suites.append(_suite(file, agents))
        except DefinitionError as exc:
            problems += exc.problems
    if problems:
        raise DefinitionError(problems)
    return suites


def suite_problems(root: Path, agents: Mapping[str, LoadedAgent]) -> list[Problem]:
    """Every problem of the eval files of `root` (what `agentflows validate` adds for a folder)."""
    problems: list[Problem] = []
    for file in eval_files(root):
        try:
            _suite(file, agents)
        except DefinitionError as exc:
            problems += exc.problems
    return problems


def _suite(file: Path, agents: Mapping[str, LoadedAgent]) -> EvalSuite:
    if file.stem not in agents:  # an AgentCatalog raises on a missing name, so no `.get`
        names = ", ".join(sorted(agents)) or "none"
        message = f"eval file for agent {file.stem!r}, but no agent has that name; the agents are: {names}"
        raise DefinitionError([Problem(file, None, "", message)])
    return load_suite(file, agents[file.stem])


def result_namespace(agent: LoadedAgent) -> Namespace:
    """The variables an assertion's expressions see, with the keys known of each."""
    d = agent.definition
    return {
        "agent": AGENT_ATTRIBUTES,
        "inputs": frozenset(d.inputs),
        "plan": RESERVED_PLAN_FIELDS | d.steps.decide.returns.fields.keys(),
        "drafts": None,
        "files": None,
        "title": None,
        "metadata": None,
    }


def load_suite(file: Path, agent: LoadedAgent) -> EvalSuite:
    """The eval file `file` of `agent`, checked; `DefinitionError` lists every problem with its line."""
    if problem := outside_link(file, agent.root.resolve()):
        raise DefinitionError([problem])
    text = read_definition_text(file)
    try:
        data, lines = load_yaml(text)
    except YamlSyntaxError as exc:
        raise DefinitionError([Problem(file, exc.line, "", str(exc))]) from None
    if not isinstance(data, dict):
        message = "an eval file is a mapping with `cases:` (a list of name, inputs and assert)"
        raise DefinitionError([Problem(file, lines.line_of(()) or 1, "", message)])
    try:
        spec = EvalFile.model_validate(data)
    except ValidationError as exc:
        raise DefinitionError(problems_from_validation(exc, file, data, lines, schema=EvalFile)) from None
    problems = _SuiteChecker(agent, file, lines).problems_of(spec)
    if problems:
        raise DefinitionError(problems)
    return EvalSuite(agent, file, spec)


class _SuiteChecker:
    """What the schema cannot say about an eval file: names, inputs and expressions."""

    def __init__(self, agent: LoadedAgent, file: Path, lines: LineMap) -> None:
        self.agent = agent
        self.file = file
        self.lines = lines
        self.problems: list[Problem] = []
        self.names = result_namespace(agent)

    def report(self, path: YamlPath, message: str) -> None:
        self.problems.append(Problem(self.file, self.lines.line_of(path), dotted(path), message))

    def problems_of(self, spec: EvalFile) -> list[Problem]:
        self.assertions(spec.assertions, ("assert",))
        seen: set[str] = set()
        for index, case in enumerate(spec.cases):
            path: YamlPath = ("cases", index)
            if case.name in seen:
                self.report((*path, "name"), f"case name {case.name!r} is used twice; names must be unique")
            seen.add(case.name)
            try:
                validate_inputs(self.agent.definition, case.inputs)
            except InputError as exc:
                self.report((*path, "inputs"), str(exc))
            self.assertions(case.assertions, (*path, "assert"))
        return self.problems

    def assertions(self, assertions: list[Assertion], path: YamlPath) -> None:
        for index, assertion in enumerate(assertions):
            where: YamlPath = (*path, index)
            if assertion.that is not None:
                spec_problems(assertion.check(), self.names, where, self.report)
            elif assertion.contains is not None:
                self.template((*where, "contains"), assertion.contains)
            if assertion.message is not None and assertion.that is None:
                self.template((*where, "message"), assertion.message, plain=True)

    def template(self, path: YamlPath, text: str, *, plain: bool = False) -> None:
        """Report a template that does not parse or uses an unknown name (a plain message may not use any)."""
        try:
            ast = parse_message(text)
        except TemplateSyntaxError as exc:
            self.report(path, f"{path[-1]} {text!r} is not a valid template: {exc.message}")
            return
        for message, _ in variable_problems(ast, {} if plain else self.names):
            self.report(path, f"{path[-1]} {text!r} {message}")
