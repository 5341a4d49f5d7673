"""Run an agent's plain step functions with the offline provider, without Prefect."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentflows import load_agents
from agentflows.compiler import step_specs
from agentflows.inputs import validate_inputs
from agentflows.pipeline import StepSpecs
from agentflows.tasks.artifacts import BuiltContent, Draft, Plan
from agentflows.tasks.specs import RunContext
from agentflows.tasks.steps import build_drafts, make_plan, write_draft

INPUTS: dict[str, dict[str, Any]] = {
    "ebook": {"topic": "How tides work", "chapters": 3},
    "lesson_plan": {"topic": "Photosynthesis", "stages": 4},
    "quiz": {"topic": "The water cycle", "questions": 3},
    "api_scaffold": {"service": "a to-do list with due dates"},
    "data_report": {"subject": "monthly sales of a small bakery", "sections": 2},
}
CONTEXT = RunContext(request="offline test")


@dataclass(frozen=True)
class OfflineRun:
    """The specs, validated inputs, plan and drafts of one offline run."""

    specs: StepSpecs
    inputs: dict[str, Any]
    plan: Plan
    drafts: tuple[Draft, ...]

    def build(self, drafts: tuple[Draft, ...] | None = None) -> BuiltContent:
        """Build these drafts (or replacements for them) into content."""
        return build_drafts(self.specs.build, self.inputs, self.plan, list(drafts or self.drafts))


def offline_run(agent: str, root: Path | None = None, **inputs: Any) -> OfflineRun:
    """Plan and draft `agent` with its test inputs, overridden by `inputs`."""
    loaded = load_agents(root)[agent]
    specs = step_specs(loaded)
    values = validate_inputs(loaded.definition, {**INPUTS[agent], **inputs})

    async def plan_and_draft() -> tuple[Plan, tuple[Draft, ...]]:
        plan = await make_plan(specs.decide, values, CONTEXT)
        drafts = [await write_draft(specs.generate, values, CONTEXT, plan, item.key) for item in plan.items]
        return plan, tuple(drafts)

    plan, drafts = asyncio.run(plan_and_draft())
    return OfflineRun(specs, values, plan, drafts)


def with_fields(draft: Draft, **fields: Any) -> Draft:
    """`draft` with some fields replaced, as a model might have written them."""
    return draft.model_copy(update={"fields": {**draft.fields, **fields}})
