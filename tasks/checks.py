"""Checks: assertions on a model step's answer that its JSON Schema cannot express.

A definition declares them under a model step (and eval files use the same form):

    checks:
      - that: "plan.items | sum(attribute='minutes') == inputs.duration_minutes"
        message: "the stages' minutes must add up to {{ inputs.duration_minutes }}"
      - each: plan.items                      # optional: the check holds for every element, called `it`
        that: "it.minutes >= 2"
        message: "stage {{ it.title }} is shorter than two minutes"

`that` and `each` are Jinja expressions and `message` a template, evaluated in
the template sandbox (`agentflows.tasks.prompts.ContentSandbox`, strict about
undefined names) with the step's variables: `agent`, `inputs`, `context`, and
`plan` in decide; `plan`, `item` and the draft's own fields in generate. Besides
Jinja's own tests and filters they may use the test `matching(pattern)` (a
regular expression search) and the filter `fromjson`.

`answer_check` turns a step's checks into the `Check` callable the model-step
loop takes (`agentflows.tasks.modelcall.ask_model`): a failing check is one
problem, its rendered message, which the model is re-asked with. A check whose
expression cannot be evaluated on an answer (a missing key, a type error) fails
too, and its problem says why. Evaluation is pure: no I/O, no model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, nodes
from jinja2.parser import Parser
from pydantic import BaseModel, ConfigDict, Field

from agentflows.tasks.parsing import Check
from agentflows.tasks.prompts import ContentSandbox

EACH_VARIABLE = "it"
"""The name an `each` check gives the element it is evaluating."""
MAX_FAILING_ELEMENTS = 3
"""How many failing elements of an `each` check its problem names before it counts the rest."""
MAX_PATTERN_CHARS = 500


class CheckSpec(BaseModel):
    """One check: an expression that must hold, and what to say when it does not."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    that: str = Field(min_length=1)
    """A Jinja expression that must be true, e.g. `choices[answer] not in question`."""
    message: str = Field(min_length=1)
    """What is wrong when it is false, as a template: the model is re-asked with it, and a run that
    still fails names it."""
    each: str | None = Field(default=None, min_length=1)
    """A Jinja expression giving a list: `that` must hold for every element, which it calls `it`."""


def _matching(value: Any, pattern: str) -> bool:
    """Jinja test: `value is matching('^tests/')` — a regular expression search in the text of `value`."""
    return _pattern(pattern).search(str(value)) is not None


@lru_cache(maxsize=256)
def _pattern(pattern: str) -> re.Pattern[str]:
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"pattern of {len(pattern)} characters is longer than the {MAX_PATTERN_CHARS} allowed")
    return re.compile(pattern)


def _fromjson(text: Any) -> Any:
    """Jinja filter: `files['quiz.json'] | fromjson` — the JSON value the text holds."""
    return json.loads(str(text))


@lru_cache(maxsize=1)
def check_environment() -> ContentSandbox:
    """The sandbox checks are evaluated in: the templates' sandbox, plus `matching` and `fromjson`."""
    env = ContentSandbox(undefined=StrictUndefined, autoescape=False)
    env.tests["matching"] = _matching
    env.filters["fromjson"] = _fromjson
    return env


def expression_text(expression: str) -> str:
    """The expression without the `{{ }}` an author may have put around it."""
    text = expression.strip()
    return text[2:-2].strip() if text.startswith("{{") and text.endswith("}}") else text


def parse_expression(expression: str) -> nodes.Template:
    """The syntax tree of one expression, as a template that outputs it (for checking the names it uses).

    Raises `jinja2.TemplateSyntaxError` when it is not exactly one expression.
    """
    env = check_environment()
    parser = Parser(env, expression_text(expression), state="variable")
    expr = parser.parse_expression()
    if not parser.stream.eos:
        token = parser.stream.current
        parser.fail(f"unexpected {token.value!r} after the expression", token.lineno)
    template = nodes.Template([nodes.Output([expr], lineno=1)], lineno=1)
    template.set_environment(env)
    return template


def parse_message(message: str) -> nodes.Template:
    """The syntax tree of a message template (raises `jinja2.TemplateSyntaxError`)."""
    return check_environment().parse(message)


@dataclass(frozen=True)
class CompiledCheck:
    """A check, compiled once: its expressions as callables, its message as a template."""

    spec: CheckSpec
    that: Callable[..., Any]
    each: Callable[..., Any] | None
    message: Template

    def problems(self, variables: Mapping[str, Any]) -> list[str]:
        """Nothing when the check holds on `variables`; else what its message says (per failing element)."""
        if self.each is None:
            outcome = self._holds(variables)
            return [] if outcome is True else [self._say(variables) + _why(outcome)]
        try:
            elements = list(self.each(**variables))
        except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as exc:
            return [f"{self._say(variables)} (its `each` could not be evaluated: {_reason(exc)})"]
        failing = []
        for element in elements:
            scope = {**variables, EACH_VARIABLE: element}
            outcome = self._holds(scope)
            if outcome is not True:
                failing.append(self._say(scope) + _why(outcome))
        if len(failing) > MAX_FAILING_ELEMENTS:
            more = len(failing) - MAX_FAILING_ELEMENTS
            failing = [*failing[:MAX_FAILING_ELEMENTS], f"{self._say(variables, raw=True)} ({more} more)"]
        return failing

    def _holds(self, variables: Mapping[str, Any]) -> bool | str:
        """True when `that` holds; False when it does not; why, when it cannot be evaluated."""
        try:
            return bool(self.that(**variables))
        except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as exc:
            return f"the check could not be evaluated: {_reason(exc)}"

    def _say(self, variables: Mapping[str, Any], *, raw: bool = False) -> str:
        if raw:
            return self.spec.message.strip()
        try:
            text = self.message.render(**variables)
        except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError):
            text = self.spec.message  # the message names what is wrong even when it cannot be filled in
        return " ".join(text.split())


def compile_check(spec: CheckSpec) -> CompiledCheck:
    """`spec` compiled in the check sandbox (raises `jinja2.TemplateSyntaxError` on a syntax error)."""
    return _compiled(spec)


@lru_cache(maxsize=512)
def _compiled(spec: CheckSpec) -> CompiledCheck:
    env = check_environment()
    that = env.compile_expression(expression_text(spec.that), undefined_to_none=False)
    each = env.compile_expression(expression_text(spec.each), undefined_to_none=False) if spec.each else None
    return CompiledCheck(spec, that, each, env.from_string(spec.message))


def check_problems(checks: Sequence[CheckSpec], variables: Mapping[str, Any]) -> list[str]:
    """Every problem the failing `checks` report on `variables`, in the order they are declared."""
    return [problem for spec in checks for problem in compile_check(spec).problems(variables)]


def answer_check(
    checks: Sequence[CheckSpec], variables: Mapping[str, Any], *, answer_as: str | None = None
) -> Check | None:
    """The `Check` a model step passes to `ask_model`: its checks on each schema-valid answer.

    The answer is the variable `answer_as` (decide: `plan`); without one, its fields are variables
    themselves (generate: `question`, `choices`…), under the step's own variables, which win.
    """
    if not checks:
        return None
    for spec in checks:
        compile_check(spec)  # a definition that passed validation compiles; fail before any model call if not

    def check(answer: Mapping[str, Any]) -> list[str]:
        scope = {**variables, answer_as: answer} if answer_as else {**answer, **variables}
        return check_problems(checks, scope)

    return check


def both(first: Check | None, then: Check | None) -> Check | None:
    """A `Check` that runs `first`, and `then` only on an answer `first` found nothing wrong with."""
    if first is None or then is None:
        return first or then

    def check(answer: Mapping[str, Any]) -> list[str]:
        return first(answer) or then(answer)

    return check


def _why(outcome: bool | str) -> str:
    """The reason a check could not be evaluated, to add to its message (nothing for a plain False)."""
    return f" ({outcome})" if isinstance(outcome, str) else ""


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().rstrip(".")
    return text or type(exc).__name__
