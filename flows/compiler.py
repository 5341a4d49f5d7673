"""Compile a loaded definition into a Prefect flow.

`step_specs` is pure: it turns a `LoadedAgent` into the immutable spec of each
step. `compile_agent` wraps the pipeline in a flow named after the agent, whose
version is the hash of its YAML and templates, whose run name comes from the
inputs, and whose signature is built from the declared inputs so Prefect (the
UI form, `prefect deploy`, parameter validation) sees real types, enums, bounds
and help text.
"""

from __future__ import annotations

import inspect
from datetime import timedelta
from typing import Any

from prefect import Flow, Task, flow
from prefect.cache_policies import INPUTS, NO_CACHE, CachePolicy
from prefect.tasks import exponential_backoff

from agentflows.definition import AgentDefinition, StepSettings
from agentflows.fields import object_schema
from agentflows.inputs import input_parameters
from agentflows.knowledge import appends_knowledge, knowledge_setup
from agentflows.loader import LoadedAgent, degrade_field
from agentflows.pipeline import StepSpecs, StepTasks, run_pipeline
from agentflows.review import ending_state
from agentflows.tasks import steps
from agentflows.tasks.errors import ReviewEnded
from agentflows.tasks.runtime import current_runtime
from agentflows.tasks.specs import BuildSpec, DecideSpec, GenerateSpec, RunContext

REFRESH_HELP = "Ignore cached step results and call the model again."
REVIEW_HELP = (
    "Pause after planning until an editor approves, revises or rejects the plan (the form appears under Resume)."
)
CONTEXT_HELP = "The free-text request this run serves (the router sets it); prompts see it as context.request."


def step_specs(agent: LoadedAgent) -> StepSpecs:
    """The immutable spec each step task of `agent` receives."""
    d = agent.definition
    about = {
        "name": d.name,
        "version": d.version,
        "description": d.description,
        "content_type": d.content_type.value,
    }
    system = (d.prompts.base, d.prompts.domain)
    items = d.steps.decide.returns.items
    title_spec = items.fields.get("title")
    item_fields = {k: v for k, v in items.fields.items() if k != "title"}
    title_schema = title_spec.json_schema() if title_spec else {"type": "string", "description": "Title of this item."}
    plan_fields = object_schema(d.steps.decide.returns.fields)
    return StepSpecs(
        decide=DecideSpec(
            agent=about,
            step="decide",
            templates=agent.templates_for("system", "decide"),
            system=system,
            prompt=d.steps.decide.prompt,
            model=d.model_settings(d.steps.decide),
            reasks=d.steps.decide.reasks,
            append_knowledge=appends_knowledge(d, agent.templates_for("system", "decide")),
            plan_fields=plan_fields["properties"],
            plan_required=tuple(plan_fields["required"]),
            item_schema=object_schema(item_fields, fixed={"title": title_schema}),
            items_min=items.min,
            items_max=items.max,
            items_count=items.count,
        ),
        generate=GenerateSpec(
            agent=about,
            step="generate",
            templates=agent.templates_for("system", "generate"),
            system=system,
            prompt=d.steps.generate.prompt,
            model=d.model_settings(d.steps.generate),
            reasks=d.steps.generate.reasks,
            on_invalid=d.steps.generate.on_invalid,
            degrade_field=degrade_field(d),
            append_knowledge=appends_knowledge(d, agent.templates_for("system", "generate")),
            draft_schema=object_schema(d.steps.generate.returns),
            builder=d.builder,
        ),
        build=BuildSpec(
            agent=about,
            step="build",
            templates=agent.templates_for("build"),
            builder=d.builder,
            layout=d.layout,
            content_type=d.content_type,
        ),
        concurrency=d.steps.generate.concurrency,
        knowledge=knowledge_setup(d, agent.root),
        review=d.review,
    )


def step_tasks(definition: AgentDefinition) -> StepTasks:
    """The agent's step tasks with the settings its YAML declares."""
    s = definition.steps
    return StepTasks(
        decide=_configured(steps.decide, definition, s.decide, "decide"),
        generate=_configured(steps.generate, definition, s.generate, "generate-{item_key}", policy=steps.DRAFT_INPUTS),
        build=_configured(steps.build, definition, s.build, "build"),
        save=_configured(steps.save, definition, s.save, "save", cached=False),
    )


def _configured(
    base: Task[..., Any],
    d: AgentDefinition,
    step: StepSettings,
    run_name: str,
    *,
    cached: bool = True,
    policy: CachePolicy = INPUTS,
) -> Task[..., Any]:
    retry = d.retry_settings(step)
    expiration: timedelta | None = d.cache.expiration
    configured = base.with_options(
        task_run_name=run_name,
        retries=retry.attempts,
        # Prefect expands a backoff callable when a task is defined, so pass the list again here.
        retry_delay_seconds=exponential_backoff(retry.backoff_seconds)(retry.attempts) if retry.attempts else 0,
        timeout_seconds=d.timeout(step),
        cache_policy=(policy if d.cache.enabled else NO_CACHE) if cached else steps.SAVE_POLICY,
        cache_expiration=expiration if cached and d.cache.enabled else None,
    )
    # Prefect rejects a jitter factor of 0; "no jitter" is None.
    configured.retry_jitter_factor = retry.jitter or None
    return configured


def compile_agent(agent: LoadedAgent) -> Flow[..., Any]:
    """The Prefect flow of `agent`."""
    d = agent.definition
    specs = step_specs(agent)
    tasks = step_tasks(d)

    async def agent_flow(**parameters: Any) -> Any:
        refresh = bool(parameters.pop("refresh", False))
        context = RunContext(request=str(parameters.pop("context", "") or ""))
        review = bool(parameters.pop("review", d.review.default))
        try:
            return await run_pipeline(specs, tasks, parameters, refresh=refresh, context=context, review=review)
        except ReviewEnded as ended:
            return ending_state(ended)

    agent_flow.__signature__ = flow_signature(d)  # type: ignore[attr-defined]
    agent_flow.__doc__ = flow_docstring(d)
    agent_flow.__name__ = agent_flow.__qualname__ = d.name
    agent_flow.__module__ = "agentflows.agents"
    return flow(
        name=d.name,
        version=agent.flow_version,
        description=d.description,
        flow_run_name=_run_namer(d),
        persist_result=True,
        # Flow results are pickled: Prefect 3.8 reads a JSON-serialized flow result back as a
        # plain dict (task results, stored as full records, keep their classes with JSON).
        result_storage=current_runtime().settings.result_storage,
        validate_parameters=True,
    )(agent_flow)


def flow_signature(d: AgentDefinition) -> inspect.Signature:
    """Keyword-only parameters: the declared inputs, then `refresh`, `context` and `review`."""
    refresh = inspect.Parameter("refresh", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=bool)
    context = inspect.Parameter("context", inspect.Parameter.KEYWORD_ONLY, default="", annotation=str)
    review = inspect.Parameter("review", inspect.Parameter.KEYWORD_ONLY, default=d.review.default, annotation=bool)
    return inspect.Signature([*input_parameters(d), refresh, context, review])


def flow_docstring(d: AgentDefinition) -> str:
    """Description plus a Google-style Args section; Prefect reads help text from it."""
    lines = [d.description, "", "Args:"]
    for name, spec in d.inputs.items():
        lines.append(f"    {name}: {' '.join(spec.description.split())}")
    lines.append(f"    refresh: {REFRESH_HELP}")
    lines.append(f"    context: {CONTEXT_HELP}")
    lines.append(f"    review: {REVIEW_HELP}")
    return "\n".join(lines)


def _run_namer(d: AgentDefinition) -> Any:
    first = d.first_text_input
    template = d.run_name or (f"{d.name}: {{{first}}}" if first else d.name)

    def run_name() -> str:
        from prefect.runtime import flow_run

        values = {k: v for k, v in flow_run.parameters.items() if k in d.inputs}
        try:
            name = template.format(**{k: values.get(k, "") for k in d.inputs})
        except (KeyError, IndexError, ValueError):
            name = d.name
        return " ".join(name.split())[:80] or d.name

    return run_name


__all__ = ["compile_agent", "step_specs", "step_tasks"]


def compiled(agent: LoadedAgent) -> Flow[..., Any]:
    """The flow of `agent`, compiled once per definition version and result storage (~8 ms saved a run)."""
    runtime = current_runtime()
    version = (agent.flow_version, str(runtime.settings.result_storage))
    return runtime.remembered(("flow", str(agent.file)), version, lambda: compile_agent(agent))
