"""A definition's checks, checked: what `validate` says about the `checks:` of its model steps.

Each check's `that` and `each` must be one Jinja expression and its `message` a
template (`agentflows.tasks.checks`), and all three may use only the variables
the step's checks see (`check_namespace`): in decide `agent`, `inputs`,
`context` and `plan`, the answer; in generate `plan`, `item` and the draft's own
fields besides; `it` where the check has an `each`. A problem is reported at the
YAML key that holds the expression, so an author gets the file and the line.
The same rules check the assertions of eval files (`agentflows.evals.cases`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from jinja2 import TemplateSyntaxError

from agentflows.definition import AgentDefinition
from agentflows.tasks.checks import EACH_VARIABLE, CheckSpec, parse_expression, parse_message
from agentflows.templates import Namespace, variable_problems
from agentflows.yaml_source import YamlPath

Report = Callable[[YamlPath, str], None]
CHECKED_STEPS = ("decide", "generate")
STEP_VARIABLES = frozenset({"agent", "inputs", "context", "plan", "item"})
"""Names the checks of a step see besides the draft's fields; no draft field may take one of them."""


def check_namespace(agent: AgentDefinition, step: str, namespace: Callable[[str], Namespace]) -> Namespace:
    """The variables the checks of `step` see, from the templates' namespace of that step."""
    base = {name: keys for name, keys in namespace(step).items() if name in STEP_VARIABLES}
    if step == "decide":
        return {**base, "plan": namespace("generate")["plan"]}
    fields = {name: None for name in agent.steps.generate.returns}
    return {**fields, **base}


def check_rule_problems(agent: AgentDefinition, namespace: Callable[[str], Namespace], report: Report) -> None:
    """Report every check of a model step that does not compile or uses a name its step does not provide."""
    for step in CHECKED_STEPS:
        checks = getattr(agent.steps, step).checks
        if not checks:
            continue
        if step == "generate":
            _hidden_fields(agent, report)
        allowed = check_namespace(agent, step, namespace)
        for index, check in enumerate(checks):
            spec_problems(check, allowed, ("steps", step, "checks", index), report)


def spec_problems(check: CheckSpec, allowed: Namespace, path: YamlPath, report: Report) -> None:
    """Report what is wrong with one check (or eval assertion) at `path`, given the names it may use."""
    inner = {**allowed, EACH_VARIABLE: None} if check.each else allowed
    parts: Sequence[tuple[str, str | None, Namespace]] = (
        ("each", check.each, allowed),
        ("that", check.that, inner),
        ("message", check.message, inner),
    )
    for key, text, names in parts:
        if text is None:
            continue
        where: YamlPath = (*path, key)
        try:
            ast = parse_message(text) if key == "message" else parse_expression(text)
        except TemplateSyntaxError as exc:
            kind = "template" if key == "message" else "expression"
            report(where, f"{key} {text!r} is not a valid {kind}: {exc.message}")
            continue
        for message, _ in variable_problems(ast, names):
            report(where, f"{key} {text!r} {message}")


def _hidden_fields(agent: AgentDefinition, report: Report) -> None:
    for name in STEP_VARIABLES & agent.steps.generate.returns.keys():
        report(
            ("steps", "generate", "returns", name),
            f"draft field {name!r} would hide the checks' variable {name!r}; choose another name",
        )
