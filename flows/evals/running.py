"""Running eval cases: each case's agent, once per repeat, then its assertions on what it made.

    mode      who answers the model calls
    live      the agents as configured (the environment's endpoint, else the offline provider)
    offline   the built-in offline provider, whatever the definitions name: free, deterministic
    record    as live, and every answer is kept in `<answers>/<agent>.jsonl`
    replay    only the answers recorded there: no network, no model (`agentflows.tasks.llm.recorded`)

A case runs the agent's steps as plain functions (decide, generate, build; its
knowledge retrieved as in a run), not as a flow: nothing is cached, so every
repeat asks the model again, and nothing is saved as content. A run that makes no
content (a check that never held, a refused call, an answer never recorded)
counts as a failed run with its one-line error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, get_args

from agentflows.compiler import step_specs
from agentflows.definition import AgentDefinition
from agentflows.evals.cases import EVALS_FOLDER, EvalCase, EvalSuite
from agentflows.evals.judging import Grader, Produced, Verdict, judge
from agentflows.evals.report import AssertionResult, CaseResult, distinct, rate
from agentflows.inputs import validate_inputs
from agentflows.pipeline import StepSpecs, open_knowledge, resolved_settings
from agentflows.tasks.artifacts import Draft
from agentflows.tasks.errors import KnowledgeError, RunError, StorageError
from agentflows.tasks.knowledge.retrieved import NOTHING
from agentflows.tasks.llm.base import ModelProvider
from agentflows.tasks.llm.recorded import AnswerTape, RecordingProvider, ReplayProvider
from agentflows.tasks.llm.session import model_session
from agentflows.tasks.llm.settings import ModelSettings
from agentflows.tasks.prompts import clean_user_values
from agentflows.tasks.runtime import Runtime, current_runtime
from agentflows.tasks.specs import RunContext
from agentflows.tasks.steps import build_drafts, make_plan, write_draft

Mode = Literal["live", "offline", "record", "replay"]
MODES: tuple[str, ...] = get_args(Mode)
RUNS_AT_ONCE = 4
"""Runs of one agent's cases (repeats included) in flight at the same time."""
ANSWERS_FOLDER = f"{EVALS_FOLDER}/answers"
"""Default folder of recorded answers, relative to the definitions folder."""


class EvalRuntime(Runtime):
    """The runtime of one agent's eval: the caller's settings and providers, with its mode's answers."""

    def __init__(self, base: Runtime, mode: Mode, tape: AnswerTape | None = None) -> None:
        super().__init__(base.settings, base.providers)
        self.mode = mode
        self.tape = tape or AnswerTape()
        self.replay = ReplayProvider(self.tape)

    async def provider(self, settings: ModelSettings) -> ModelProvider:
        if self.mode == "offline":
            return self.providers["offline"](settings)
        if self.mode == "replay":
            return self.replay
        inner = await super().provider(settings)
        return RecordingProvider(inner, self.tape) if self.mode == "record" else inner


def answers_file(answers: Path, agent: str) -> Path:
    """The recorded answers of `agent` in the folder `answers`."""
    return answers / f"{agent}.jsonl"


async def run_suite(suite: EvalSuite, *, repeat: int, mode: Mode, answers: Path) -> tuple[list[CaseResult], bool]:
    """Every case of `suite`, `repeat` times each, in `mode`; the results and whether all was offline.

    `record` writes the agent's answers file when the runs are done; `replay` reads it first.
    """
    tape = AnswerTape.read(answers_file(answers, suite.agent.name)) if mode == "replay" else None
    runtime = EvalRuntime(current_runtime(), mode, tape)
    try:
        with runtime.active():
            results, offline = await _run_cases(suite, repeat)
    finally:
        runtime.close()
    if mode == "record":
        runtime.tape.write(answers_file(answers, suite.agent.name))
    return results, offline


async def _run_cases(suite: EvalSuite, repeat: int) -> tuple[list[CaseResult], bool]:
    specs = await resolved_specs(suite)
    grader = await grader_of(suite, specs)
    limit = asyncio.Semaphore(RUNS_AT_ONCE)

    async def one_run(case: EvalCase) -> Produced | RunError:
        async with limit:
            try:
                return await produce(specs, case.inputs, suite.agent.definition)
            except (StorageError, KnowledgeError):
                raise  # the content database or a knowledge source is down: no case can run, say so once
            except RunError as exc:
                return exc

    async with model_session():
        runs = await asyncio.gather(*(one_run(case) for case in suite.cases for _ in range(repeat)))
        results = []
        for index, case in enumerate(suite.cases):
            made = runs[index * repeat : (index + 1) * repeat]
            verdicts = [await judge(suite.assertions(case), r, grader) for r in made if isinstance(r, Produced)]
            results.append(case_result(suite, case, made, verdicts))
    offline = all(r.built.provenance.offline for r in runs if isinstance(r, Produced))
    return results, offline and grader is None


async def resolved_specs(suite: EvalSuite) -> StepSpecs:
    """The agent's step specs, naming the provider and model that answer in this eval."""
    specs = step_specs(suite.agent)
    return replace(
        specs,
        decide=specs.decide.model_copy(update={"model": await resolved_settings(specs.decide.model)}),
        generate=specs.generate.model_copy(update={"model": await resolved_settings(specs.generate.model)}),
    )


async def grader_of(suite: EvalSuite, specs: StepSpecs) -> Grader | None:
    """The model that grades the suite's rubrics (the generate step's, at temperature 0); None when offline."""
    settings = specs.generate.model.model_copy(update={"temperature": 0.0})
    provider = await current_runtime().provider(settings)
    if getattr(provider, "offline", provider.name == "offline"):
        return None
    return Grader(provider, settings, f"{suite.agent.name}/eval")


async def produce(specs: StepSpecs, inputs: dict[str, Any], definition: AgentDefinition) -> Produced:
    """Plan, draft and build once with `inputs`, as a run of the agent would (without cache or storage)."""
    values = clean_user_values(validate_inputs(definition, inputs))
    context = RunContext()
    knowledge = await open_knowledge(specs, values)
    found = await knowledge.for_decide(specs.decide.agent, values, context) if knowledge else NOTHING
    plan = await make_plan(specs.decide, values, context, found)
    per_item = await knowledge.for_items(specs.generate.agent, values, context, plan) if knowledge else {}
    limit = asyncio.Semaphore(specs.concurrency)

    async def draft(key: str) -> Draft:
        async with limit:
            return await write_draft(specs.generate, values, context, plan, key, per_item.get(key, NOTHING))

    drafts = await asyncio.gather(*(draft(item.key) for item in plan.items))
    built = build_drafts(specs.build, values, plan, list(drafts))
    return Produced(specs.decide.agent, values, plan, tuple(drafts), built)


def case_result(
    suite: EvalSuite, case: EvalCase, runs: Sequence[Produced | RunError], verdicts: list[list[Verdict]]
) -> CaseResult:
    """How `case` fared: its runs, the verdicts on those that made content, and why the others made none."""
    assertions = suite.assertions(case)
    passed_runs = sum(1 for run in verdicts if all(v.outcome != "failed" for v in run))
    model_calls = sum(r.usage.calls for r in runs if isinstance(r, Produced))
    model_calls += sum(v.usage.calls for run in verdicts for v in run)
    return CaseResult(
        agent=suite.agent.name,
        agent_version=suite.agent.flow_version,
        case=case.name,
        runs=len(runs),
        passed_runs=passed_runs,
        pass_rate=rate(passed_runs, len(runs)),
        model_calls=model_calls,
        assertions=[
            AssertionResult(
                assertion=assertion.name,
                passed=sum(1 for run in verdicts if run[i].outcome == "passed"),
                failed=sum(1 for run in verdicts if run[i].outcome == "failed"),
                skipped=sum(1 for run in verdicts if run[i].outcome == "skipped"),
                failures=distinct(run[i].detail for run in verdicts if run[i].outcome != "passed"),
            )
            for i, assertion in enumerate(assertions)
        ],
        errors=distinct(str(r) for r in runs if isinstance(r, RunError)),
    )
