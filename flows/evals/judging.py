"""Judging one run of a case: every assertion of the case, on what the agent made.

    that     the check's expression on the result's variables (`agentflows.tasks.checks`), in the sandbox
    file     the built files a glob matches: each contains the text, matches the regex, or parses
    rubric   a model grades the content against the rubric; skipped when no language model answers

Each assertion gives a `Verdict`: passed, failed with what was wrong, or
skipped with why. Judging never raises for what a result holds; a rubric whose
grader cannot be reached fails with the error, as a run would.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from jinja2 import TemplateError

from agentflows.evals.cases import Assertion
from agentflows.tasks.artifacts import BuiltContent, Draft, Plan, Usage
from agentflows.tasks.builders.file_checks import file_problems
from agentflows.tasks.checks import check_environment, compile_check
from agentflows.tasks.errors import RunError
from agentflows.tasks.llm.base import Message, ModelProvider, ModelRequest
from agentflows.tasks.llm.settings import ModelSettings
from agentflows.tasks.parsing import read_answer

Outcome = Literal["passed", "failed", "skipped"]
GRADED_CHARS = 16_000
"""Most characters of content a rubric's grader is shown (the plan and drafts as JSON)."""
LISTED_FILES = 8
GRADE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "pass": {"type": "boolean", "description": "Whether the content meets the rubric."},
        "reason": {"type": "string", "description": "One sentence: what meets or misses the rubric."},
    },
    "required": ["pass", "reason"],
    "additionalProperties": False,
}
GRADER_SYSTEM = (
    "You review content that a writing assistant produced. You are given a rubric and the content; "
    "decide strictly whether the content meets the rubric, and say why in one sentence."
)


@dataclass(frozen=True)
class Produced:
    """What one run of a case made: the plan, the drafts and the built content, and the model usage."""

    agent: dict[str, str]
    inputs: dict[str, Any]
    plan: Plan
    drafts: tuple[Draft, ...]
    built: BuiltContent

    @property
    def usage(self) -> Usage:
        total = self.plan.provenance.usage
        for draft in self.drafts:
            total = total + draft.provenance.usage
        return total

    def variables(self) -> dict[str, Any]:
        """What an assertion's expressions see (`agentflows.evals.cases.result_namespace`)."""
        items = {item.key: item for item in self.plan.items}
        return {
            "agent": self.agent,
            "inputs": self.inputs,
            "plan": self.plan.view(),
            "drafts": [
                {**items[d.item_key].fields, **d.fields, "key": d.item_key, "title": d.title} for d in self.drafts
            ],
            "files": {f.path: f.text for f in self.built.files},
            "title": self.built.title,
            "metadata": self.built.metadata,
        }


@dataclass(frozen=True)
class Verdict:
    """What became of one assertion on one run."""

    outcome: Outcome
    detail: str = ""
    """What was wrong (failed) or why it was not judged (skipped)."""
    usage: Usage = field(default_factory=Usage)
    """What grading it cost (rubrics only)."""


@dataclass(frozen=True)
class Grader:
    """The model that grades rubrics, and how its calls are labelled."""

    provider: ModelProvider
    settings: ModelSettings
    label: str
    """Label prefix of its calls, e.g. `quiz/eval/water_cycle`."""


async def judge(assertions: Sequence[Assertion], produced: Produced, grader: Grader | None) -> list[Verdict]:
    """A verdict for each assertion, in order; rubrics are skipped without a grader."""
    variables = produced.variables()
    verdicts = []
    for index, assertion in enumerate(assertions):
        if assertion.that is not None:
            verdicts.append(judge_expression(assertion, variables))
        elif assertion.file is not None:
            verdicts.append(judge_files(assertion, variables))
        elif grader is None:
            verdicts.append(Verdict("skipped", "offline provider: no language model to grade it"))
        else:
            verdicts.append(await judge_rubric(assertion, produced, grader, index))
    return verdicts


def judge_expression(assertion: Assertion, variables: dict[str, Any]) -> Verdict:
    """The `that` assertion as a check: its filled-in message for each failure."""
    problems = compile_check(assertion.check()).problems(variables)
    return Verdict("failed", "; ".join(problems)) if problems else Verdict("passed")


def judge_files(assertion: Assertion, variables: dict[str, Any]) -> Verdict:
    """Every built file the glob matches satisfies the assertion (and the glob matches one at least)."""
    assert assertion.file is not None
    files: dict[str, str] = variables["files"]
    matched = [path for path in files if fnmatch.fnmatchcase(path, assertion.file)]
    if not matched:
        listed = ", ".join(sorted(files)[:LISTED_FILES]) + (", …" if len(files) > LISTED_FILES else "")
        return Verdict("failed", f"no built file matches {assertion.file!r} (the files are {listed})")
    problems: list[str] = []
    if assertion.parses:
        problems = [p for path in matched for p in file_problems(path, files[path])]
    elif assertion.regex is not None:
        pattern = re.compile(assertion.regex, re.MULTILINE)
        problems = [
            f"{path} has no match of /{assertion.regex}/" for path in matched if not pattern.search(files[path])
        ]
    elif assertion.contains is not None:
        try:
            wanted = check_environment().from_string(assertion.contains).render(**variables)
        except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as exc:
            return Verdict("failed", f"contains {assertion.contains!r} could not be filled in: {exc}")
        problems = [f"{path} does not contain {wanted!r}" for path in matched if wanted not in files[path]]
    return Verdict("failed", "; ".join(problems)) if problems else Verdict("passed")


async def judge_rubric(assertion: Assertion, produced: Produced, grader: Grader, index: int) -> Verdict:
    """Ask the grader whether the content meets the rubric; its reason is the detail."""
    assert assertion.rubric is not None
    request = ModelRequest(
        label=f"{grader.label}/rubric-{index + 1}",
        messages=grading_messages(assertion.rubric, produced),
        settings=grader.settings,
        output_schema=GRADE_SCHEMA,
        context={"step": "eval"},
    )
    try:
        reply = await grader.provider.complete(request)
    except RunError as exc:
        return Verdict("failed", f"the grader could not answer: {exc}")
    reading = read_answer(reply.text, GRADE_SCHEMA)
    if reading.payload is None:
        return Verdict("failed", f"the grader's answer could not be read: {reading.problems[0]}", reply.usage)
    reason = " ".join(str(reading.payload["reason"]).split())
    if reading.payload["pass"] is True:
        return Verdict("passed", reason, reply.usage)
    return Verdict("failed", f"the grader says: {reason}", reply.usage)


def grading_messages(rubric: str, produced: Produced) -> tuple[Message, ...]:
    """The grader's prompt: the rubric, the content as JSON (cut to `GRADED_CHARS`), the schema to answer with."""
    variables = produced.variables()
    content = json.dumps(
        {"title": variables["title"], "plan": variables["plan"], "drafts": variables["drafts"]},
        ensure_ascii=False,
        indent=1,
    )[:GRADED_CHARS]
    user = (
        f"Rubric: {rubric}\n\nThe content (its title, plan and drafts):\n```\n{content}\n```\n\n"
        "Does the content meet the rubric? Answer with one JSON object, and nothing else, that matches this "
        f"JSON Schema:\n```json\n{json.dumps(GRADE_SCHEMA)}\n```"
    )
    return (Message(role="system", content=GRADER_SYSTEM), Message(role="user", content=user))
