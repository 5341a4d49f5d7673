"""Compile a loaded definition into a Prefect flow.

`step_specs` is pure: it turns a `LoadedAgent` into the immutable spec of each
step. `compile_agent` wraps the pipeline in a flow named after the agent, whose
version is the hash of its YAML and templates, whose run name comes from the
inputs, and whose signature is built from the declared inputs so Prefect (the
UI form, `prefect deploy`, the server's parameter check) sees real types, enums,
bounds and help text.

The flow checks its parameters itself, in its body (`validate_inputs`), instead of
Prefect's `validate_parameters`: a run the server did not check (the UI's
"Validate parameters" box unticked) fails before any step with one `InputError`
line naming each bad input, not Prefect's multi-line `ParameterTypeError`.
"""

from __future__ import annotations

import inspect
from datetime import timedelta
from typing import Any

from prefect import Flow, Task, flow
from prefect.cache_policies import INPUTS, NO_CACHE, CachePolicy
from prefect.tasks import exponential_backoff
from pydantic import TypeAdapter, ValidationError

from agentflows.definition import AgentDefinition, StepSettings
from agentflows.errors import InputError
from agentflows.fields import object_schema
from agentflows.inputs import REQUEST_MAX_CHARACTERS, input_parameters, text_annotation, validate_inputs
from agentflows.knowledge import appends_knowledge, knowledge_setup
from agentflows.loader import LoadedAgent, degrade_field
from agentflows.pipeline import StepSpecs, StepTasks, run_pipeline
from agentflows.review import ending_state
from agentflows.tasks import steps
from agentflows.tasks.artifacts import Handoff
from agentflows.tasks.errors import ReviewEnded
from agentflows.tasks.names import shortened
from agentflows.tasks.runtime import current_runtime
from agentflows.tasks.specs import BuildSpec, DecideSpec, GenerateSpec, RunContext

DEFAULT_TITLE = {"type": "string", "description": "Title of this item.", "x-min-words": 1, "x-max-words": 15}
REFRESH_HELP = "Ignore cached step results and call the model again."
REVIEW_HELP = (
    "Pause after planning until an editor approves, revises or rejects the plan (the form appears under Resume)."
)
CONTEXT_HELP = "The free-text request this run serves (the router sets it); prompts see it as context.request."
BUILDS_ON_HELP = "Results of the agents this one builds on, by agent name (the router sets them; leave empty)."
CONTEXT_TEXT: Any = text_annotation(None, REQUEST_MAX_CHARACTERS)
"""The `context` parameter: cleaned user text, at most as long as a request."""


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
    title_schema = title_spec.json_schema() if title_spec else DEFAULT_TITLE
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
            timeout_seconds=d.timeout(d.steps.decide),
            append_knowledge=appends_knowledge(d, agent.templates_for("system", "decide")),
            checks=tuple(d.steps.decide.checks),
            uses=d.upstream_variables,
            plan_fields=plan_fields["properties"],
            plan_required=tuple(plan_fields["required"]),
            item_schema=object_schema(item_fields, fixed={"title": title_schema}),
            items_min=items.min,
            items_max=items.max,
            items_count=items.count,
            items_totals=items.totals,
            builder=d.builder,
        ),
        generate=GenerateSpec(
            agent=about,
            step="generate",
            templates=agent.templates_for("system", "generate"),
            system=system,
            prompt=d.steps.generate.prompt,
            model=d.model_settings(d.steps.generate),
            reasks=d.steps.generate.reasks,
            timeout_seconds=d.timeout(d.steps.generate),
            uses=d.upstream_variables,
            on_invalid=d.steps.generate.on_invalid,
            degrade_field=degrade_field(d),
            append_knowledge=appends_knowledge(d, agent.templates_for("system", "generate")),
            checks=tuple(d.steps.generate.checks),
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
        min_items_ok=d.steps.generate.min_items_ok,
        knowledge=knowledge_setup(d, agent.root),
        review=d.review,
    )


def step_tasks(definition: AgentDefinition) -> StepTasks:
    """The agent's step tasks with the settings its YAML declares."""
    s = definition.steps
    return StepTasks(
        decide=_configured(steps.decide, definition, s.decide, "decide", grace=MODEL_STEP_GRACE),
        generate=_configured(
            steps.generate,
            definition,
            s.generate,
            "generate-{item_key}",
            grace=MODEL_STEP_GRACE,
            policy=steps.DRAFT_INPUTS,
        ),
        build=_configured(steps.build, definition, s.build, "build"),
        save=_configured(steps.save, definition, s.save, "save", cached=False),
    )


MODEL_STEP_GRACE = 30.0
"""Seconds Prefect's timeout of a model step waits past the step's own: the conversation enforces the
step's timeout itself and fails with what it spent and received; Prefect's is the backstop."""


def _configured(
    base: Task[..., Any],
    d: AgentDefinition,
    step: StepSettings,
    run_name: str,
    *,
    cached: bool = True,
    grace: float = 0.0,
    policy: CachePolicy = INPUTS,
) -> Task[..., Any]:
    retry = d.retry_settings(step)
    expiration: timedelta | None = d.cache.expiration
    configured = base.with_options(
        task_run_name=run_name,
        retries=retry.attempts,
        # Prefect expands a backoff callable when a task is defined, so pass the list again here.
        retry_delay_seconds=exponential_backoff(retry.backoff_seconds)(retry.attempts) if retry.attempts else 0,
        timeout_seconds=d.timeout(step) + grace,
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
        refresh = _checked(bool, "refresh", parameters.pop("refresh", False), d.name)
        review = _checked(bool, "review", parameters.pop("review", d.review.default), d.name)
        handoffs = _checked(dict[str, Handoff] | None, "builds_on", parameters.pop("builds_on", None), d.name)
        request = _checked(CONTEXT_TEXT, "context", parameters.pop("context", "") or "", d.name)
        context = RunContext(request=request, upstream=handoffs or {})
        inputs = validate_inputs(d, parameters)
        try:
            return await run_pipeline(specs, tasks, inputs, refresh=refresh, context=context, review=review)
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
        validate_parameters=False,  # the body checks them: one InputError line (see the module docstring)
    )(agent_flow)


def _checked(kind: Any, name: str, value: Any, agent: str) -> Any:
    """`value` as the parameter `name` takes it (a type or annotation); one `InputError` line if not."""
    try:
        return TypeAdapter(kind).validate_python(value)
    except ValidationError as exc:
        raise InputError(f"agent {agent!r}: parameter {name!r}: {exc.errors()[0]['msg']} (got {value!r})") from None


def flow_signature(d: AgentDefinition) -> inspect.Signature:
    """Keyword-only parameters: the declared inputs, then `refresh`, `context`, `review` and, for an agent
    that builds on others, `builds_on`."""
    kind = inspect.Parameter.KEYWORD_ONLY
    refresh = inspect.Parameter("refresh", kind, default=False, annotation=bool)
    context = inspect.Parameter("context", kind, default="", annotation=CONTEXT_TEXT)
    review = inspect.Parameter("review", kind, default=d.review.default, annotation=bool)
    upstream = inspect.Parameter("builds_on", kind, default=None, annotation=dict[str, Handoff] | None)
    return inspect.Signature([*input_parameters(d), refresh, context, review, *([upstream] if d.uses else [])])


def flow_docstring(d: AgentDefinition) -> str:
    """Description plus a Google-style Args section; Prefect reads help text from it."""
    lines = [d.description, "", "Args:"]
    for name, spec in d.inputs.items():
        lines.append(f"    {name}: {' '.join(spec.description.split())}")
    lines.append(f"    refresh: {REFRESH_HELP}")
    lines.append(f"    context: {CONTEXT_HELP}")
    lines.append(f"    review: {REVIEW_HELP}")
    if d.uses:
        lines.append(f"    builds_on: {BUILDS_ON_HELP}")
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
        return shortened(name, 80) or d.name

    return run_name


__all__ = ["compile_agent", "step_specs", "step_tasks"]


def compiled(agent: LoadedAgent) -> Flow[..., Any]:
    """The flow of `agent`, compiled once per definition version and result storage (~8 ms saved a run)."""
    runtime = current_runtime()
    version = (agent.flow_version, str(runtime.settings.result_storage))
    return runtime.remembered(("flow", str(agent.file)), version, lambda: compile_agent(agent))
