"""Checks of `uses` across a definitions folder: what one file alone cannot tell.

For every agent that builds on others:

- every agent it uses exists in the folder;
- the `uses` of the folder form no cycle (agents that would wait for each other);
- its prompt templates read of an upstream's variable only what that upstream's
  result has (`title`, `items`, `text`, … and its plan's own fields);
- they read into the variable only where it is known to be there (`{% if lesson %}`),
  since an agent run on its own, or after its upstream failed, gets none.

Each problem names the file and line: the `uses` entry in the YAML, or the
template line that reads the variable.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path

from jinja2 import TemplateSyntaxError, meta, nodes

from agentflows.dependencies import find_cycles
from agentflows.errors import Problem
from agentflows.loader import LoadedAgent
from agentflows.tasks.artifacts import HANDOFF_KEYS
from agentflows.tasks.prompts import environment
from agentflows.templates import variable_problems
from agentflows.yaml_source import LineMap, dotted, load_yaml

PROMPT_ROLES = ("system", "decide", "generate")
"""The roles whose templates receive upstream results (layouts do not)."""


def uses_problems(agents: Mapping[str, LoadedAgent], folder: Path, only: str | None = None) -> list[Problem]:
    """Every problem with the `uses` of the agents of one folder (or of agent `only` among them), in file order."""
    problems: list[Problem] = []
    lines = {name: load_yaml(agent.yaml_text)[1] for name, agent in agents.items() if agent.definition.uses}
    for name, agent_lines in lines.items():
        if only is not None and name != only:
            continue
        agent = agents[name]
        for used in agent.definition.uses:
            if used not in agents and used != name:
                problems.append(_at(agent, agent_lines, used, _unknown(used, agents, folder)))
        for problem in template_problems(agent, agents):
            if not problem.repeats(problems):
                problems.append(problem)
    waits_for = {name: [u for u in agents[name].definition.uses if u in agents and u != name] for name in lines}
    for cycle in find_cycles(waits_for):
        if only is not None and only not in cycle:
            continue
        if only is not None:
            cycle = [*cycle[cycle.index(only) : -1], *cycle[: cycle.index(only) + 1]]
        first, second = cycle[0], cycle[1]
        chain = " → ".join(cycle)
        message = (
            f"{first!r} builds on {second!r}, which leads back to it ({chain}): agents in a cycle would wait for "
            "each other; remove one of these uses"
        )
        problems.append(_at(agents[first], lines[first], second, message))
    return problems


def _at(agent: LoadedAgent, lines: LineMap, used: str, message: str) -> Problem:
    path = ("uses", used)
    return Problem(agent.file, lines.line_of(path), dotted(path), message)


def _unknown(used: str, agents: Mapping[str, LoadedAgent], folder: Path) -> str:
    close = difflib.get_close_matches(used, list(agents), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{used!r} is not an agent in {folder}; {hint}the agents are: {', '.join(agents)}"


def template_problems(agent: LoadedAgent, agents: Mapping[str, LoadedAgent]) -> list[Problem]:
    """What `agent`'s prompt templates read of its upstreams that they do not provide, or without a guard."""
    keys = {
        variable: HANDOFF_KEYS | agents[used].definition.steps.decide.returns.fields.keys()
        for used, variable in agent.definition.upstream_variables.items()
        if used in agents and used != agent.name
    }
    owner = {variable: used for used, variable in agent.definition.upstream_variables.items()}
    problems: list[Problem] = []
    names = dict.fromkeys(name for role in PROMPT_ROLES for name in agent.renders[role])
    for name in names:
        source = agent.sources[name]
        try:
            ast = environment({name: source}).parse(source, name=name)
        except TemplateSyntaxError:
            continue  # the loader reported it
        namespace = {n: None for n in meta.find_undeclared_variables(ast)}
        found = variable_problems(ast, {**namespace, **keys})
        for variable in owner:
            found += [
                (
                    f"reads {variable!r} outside `{{% if {variable} %}}`; it is none when {owner[variable]!r} is not "
                    "part of the run (run alone, or after it failed), so check it first",
                    line,
                )
                for line in unguarded_reads(ast, variable)
            ]
        path = dotted(("uses", next(iter(owner.values()))) if len(owner) == 1 else ("uses",))
        problems += [Problem(agent.root / name, line, path, message) for message, line in found]
    return problems


# -- reading a variable only where it is there ----------------------------------------------------


def unguarded_reads(ast: nodes.Node, variable: str) -> list[int]:
    """Lines where the template reads into `variable` (an attribute, a loop, a filter) without a check
    that it is there: inside `{% if variable %}`, after `variable and`, or `… if variable else …`."""
    return sorted(set(_reads(ast, variable, guarded=False)))


def _reads(node: nodes.Node, variable: str, *, guarded: bool) -> list[int]:
    if guarded:
        return []
    if isinstance(node, nodes.Name):
        return [node.lineno] if node.name == variable and node.ctx == "load" else []
    if isinstance(node, nodes.If | nodes.CondExpr):
        return _conditional(node, variable)
    if isinstance(node, nodes.And):
        return _check(node.left, variable) + _reads(node.right, variable, guarded=_sign(node.left, variable) > 0)
    if isinstance(node, nodes.Or):
        return _check(node.left, variable) + _reads(node.right, variable, guarded=_sign(node.left, variable) < 0)
    return [line for child in node.iter_child_nodes() for line in _reads(child, variable, guarded=False)]


def _conditional(node: nodes.If | nodes.CondExpr, variable: str) -> list[int]:
    sign = _sign(node.test, variable)
    branches: list[tuple[list[nodes.Node], bool]]
    if isinstance(node, nodes.CondExpr):
        branches = [([node.expr1], sign > 0), ([node.expr2] if node.expr2 else [], sign < 0)]
    else:
        branches = [(node.body, sign > 0), ([*node.elif_, *node.else_], sign < 0)]
    found = _check(node.test, variable)
    for children, guarded in branches:
        found += [line for child in children for line in _reads(child, variable, guarded=guarded)]
    return found


def _check(test: nodes.Node, variable: str) -> list[int]:
    """Reads inside a test: a bare check of the variable (`lesson`, `not lesson`, `lesson is none`) is safe."""
    return [] if _bare(test, variable) else _reads(test, variable, guarded=False)


def _bare(test: nodes.Node, variable: str) -> bool:
    if isinstance(test, nodes.Not | nodes.Test):
        return _bare(test.node, variable)
    return isinstance(test, nodes.Name) and test.name == variable


def _sign(test: nodes.Node, variable: str) -> int:
    """1 when `test` is true only if the variable is there, -1 when only if it is not, else 0."""
    if isinstance(test, nodes.Name):
        return 1 if test.name == variable else 0
    if isinstance(test, nodes.Not):
        return -_sign(test.node, variable)
    if isinstance(test, nodes.Test) and test.name in ("none", "defined", "undefined"):
        inner = _sign(test.node, variable)
        return -inner if test.name in ("none", "undefined") else inner
    if isinstance(test, nodes.And):
        return 1 if _sign(test.left, variable) > 0 or _sign(test.right, variable) > 0 else 0
    return 0
