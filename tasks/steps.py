"""The four steps, as plain functions and as the Prefect tasks that wrap them.

    make_plan     (decide)    inputs            → Plan          one model call
    write_draft   (generate)  plan, one item    → Draft         one model call per item
    build_drafts  (build)     plan, drafts      → BuiltContent  no model call
    save_content  (save)      built content     → SavedContent  storage only

The plain functions can be called without Prefect. The tasks add persisted,
cached results (Prefect's `INPUTS` policy: the key is a hash of the step spec,
the inputs, the upstream artifacts and the knowledge passages the step
retrieved) and retries for errors that say they are retryable. The compiler
sets per-agent names, retries and timeouts on top.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import anyio
from prefect import Task, task
from prefect.artifacts import acreate_link_artifact, acreate_markdown_artifact
from prefect.cache_policies import INPUTS, RUN_ID
from prefect.cache_policies import Inputs as InputsPolicy
from prefect.client.schemas.objects import TaskRun
from prefect.context import TaskRunContext
from prefect.states import State
from pydantic import JsonValue

from agentflows.tasks.artifacts import (
    BuiltContent,
    Draft,
    Plan,
    PlanItem,
    Provenance,
    SavedContent,
    Usage,
    canonical_json,
)
from agentflows.tasks.builders import BuildJob, build_content, check_draft, check_plan
from agentflows.tasks.checks import answer_check, both
from agentflows.tasks.errors import TemplateRenderError
from agentflows.tasks.handoff import upstream_variables
from agentflows.tasks.knowledge.retrieved import NOTHING, Retrieved
from agentflows.tasks.llm.base import Message
from agentflows.tasks.modelcall import ModelAnswer, ask_model
from agentflows.tasks.names import item_key, slug
from agentflows.tasks.previews import preview_markdown, viewer_link
from agentflows.tasks.prompts import as_user_text, delimited, evaluate, template_hashes
from agentflows.tasks.runtime import current_runtime
from agentflows.tasks.specs import BuildSpec, DecideSpec, GenerateSpec, PlanRevision, RunContext
from agentflows.tasks.storage import RunInfo
from agentflows.tasks.totals import plan_totals

Inputs = dict[str, JsonValue]


# -- plain step functions -----------------------------------------------------------------


async def make_plan(
    spec: DecideSpec,
    inputs: Inputs,
    context: RunContext,
    knowledge: Retrieved = NOTHING,
    revision: PlanRevision | None = None,
) -> Plan:
    """Ask the model for the plan: a title and the items `generate` will write.

    With a `revision`, the model is shown the plan it made and the editor's notes, and plans again.
    """
    low, high = item_bounds(spec, inputs)
    about: dict[str, JsonValue] = {"agent": spec.agent_name, "step": "decide", "inputs": inputs}
    if revision is not None:
        about["revision"] = {"round": revision.round, "notes": revision.notes}
    answer = await ask_model(
        spec,
        label=f"{spec.agent_name}/decide",
        variables=template_variables(spec.agent, inputs, context, knowledge=knowledge, uses=spec.uses),
        context=about,
        schema=plan_schema(spec, low, high),
        check=both(
            lambda payload: check_plan(spec.builder, payload["items"]),
            answer_check(spec.checks, check_variables(spec.agent, inputs, context), answer_as="plan"),
        ),
        follow_up=revision_messages(revision) if revision else (),
        adjust=plan_totals(spec, inputs),
    )
    payload = answer.payload
    raw_items: list[dict[str, Any]] = payload["items"]
    items = tuple(
        PlanItem(
            key=item_key(index, str(raw["title"])),
            title=str(raw["title"]),
            fields={k: v for k, v in raw.items() if k != "title"},
        )
        for index, raw in enumerate(raw_items)
    )
    request_checksum = hashlib.sha256(
        canonical_json({"inputs": inputs, "context": context.model_dump()}).encode()
    ).hexdigest()
    return Plan(
        title=str(payload["title"]),
        items=items,
        fields={k: v for k, v in payload.items() if k not in ("title", "items")},
        provenance=_model_provenance(
            spec.agent, "decide", answer, revision.parent if revision else request_checksum, knowledge
        ),
    ).sealed()


def revision_messages(revision: PlanRevision) -> tuple[Message, ...]:
    """The turns after decide's prompt that ask for a revised plan: the plan made, then the editor's notes."""
    asked = delimited(revision.notes) if revision.notes.strip() else "(no notes: make a better plan)"
    return (
        Message(role="assistant", content=json.dumps(revision.previous, ensure_ascii=False)),
        Message(
            role="user",
            content=f"An editor reviewed this plan and asks for changes: {asked}\n"
            "Plan again with those changes. Answer with one JSON object, and nothing else, "
            "that matches the same JSON Schema.",
        ),
    )


async def write_draft(
    spec: GenerateSpec, inputs: Inputs, context: RunContext, plan: Plan, item_key: str, knowledge: Retrieved = NOTHING
) -> Draft:
    """Ask the model for the draft of one plan item."""
    item = plan.item(item_key)
    answer = await ask_model(
        spec,
        label=f"{spec.agent_name}/generate/{item.key}",
        variables=template_variables(spec.agent, inputs, context, plan, item, knowledge, uses=spec.uses),
        context={"agent": spec.agent_name, "step": "generate", "inputs": inputs, "item": item.view()},
        schema=spec.draft_schema,
        check=both(
            lambda fields: check_draft(spec.builder, {**item.fields, **fields}),
            answer_check(spec.checks, check_variables(spec.agent, inputs, context, plan, item)),
        ),
    )
    return Draft(
        item_key=item.key,
        title=item.title,
        fields=answer.payload,
        provenance=_model_provenance(spec.agent, "generate", answer, plan.checksum, knowledge),
    ).sealed()


def build_drafts(spec: BuildSpec, inputs: Inputs, plan: Plan, drafts: list[Draft]) -> BuiltContent:
    """Assemble the drafts, in plan order, into finished content."""
    by_key = {d.item_key: d for d in drafts}
    ordered = tuple(by_key[item.key] for item in plan.items if item.key in by_key)
    dropped = [item.key for item in plan.items if item.key not in by_key]
    offline = plan.provenance.offline or any(d.provenance.offline for d in ordered)
    job = BuildJob(
        agent=spec.agent,
        content_type=spec.content_type,
        inputs=inputs,
        plan=plan,
        drafts=ordered,
        layout=spec.layout,
        templates=spec.templates,
        offline=offline,
    )
    parents = hashlib.sha256("".join([plan.checksum, *(d.checksum for d in ordered)]).encode()).hexdigest()
    provenance = Provenance(
        agent=spec.agent_name,
        agent_version=spec.agent_version,
        step="build",
        template_hashes=template_hashes(spec.templates),
        offline=offline,
        parent_checksum=parents,
        warnings=(f"built without {len(dropped)} of {len(plan.items)} items: {', '.join(dropped)}",) if dropped else (),
    )
    built = build_content(spec.builder, job, provenance)
    if not dropped:
        return built
    metadata = {**built.metadata, "dropped_items": list(dropped)}
    return built.model_copy(update={"metadata": metadata}).sealed()


def save_content(built: BuiltContent, run: RunInfo) -> SavedContent:
    """Store the content in the configured content store."""
    return current_runtime().store().save(built, run)


# -- helpers shared by the steps ----------------------------------------------------------


def template_variables(
    agent: dict[str, str],
    inputs: Inputs,
    context: RunContext,
    plan: Plan | None = None,
    item: PlanItem | None = None,
    knowledge: Retrieved = NOTHING,
    *,
    uses: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The variables a prompt template sees: agent, inputs, context, knowledge, plan/item in generate,
    and the result of each agent it builds on under its `uses` name (None when not part of the run).

    Inputs, context and knowledge passages are data, so they print between « and » (see `UserText`);
    upstream results are model output, like the plan.
    """
    variables: dict[str, Any] = {
        **upstream_variables(uses or {}, context.upstream),
        "agent": agent,
        "inputs": as_user_text(inputs),
        "context": as_user_text(context.model_dump(exclude={"upstream"})),
        "knowledge": knowledge.view(),
    }
    if plan is not None:
        variables["plan"] = plan.view()
    if item is not None:
        variables["item"] = item.view()
    return variables


def check_variables(
    agent: dict[str, str], inputs: Inputs, context: RunContext, plan: Plan | None = None, item: PlanItem | None = None
) -> dict[str, Any]:
    """The variables a step's checks see besides the answer: agent, inputs, context; plan and item in generate."""
    variables: dict[str, Any] = {"agent": agent, "inputs": inputs, "context": context.model_dump()}
    if plan is not None:
        variables["plan"] = plan.view()
    if item is not None:
        variables["item"] = item.view()
    return variables


def item_bounds(spec: DecideSpec, inputs: Inputs) -> tuple[int, int]:
    """Fewest and most plan items; an exact `count` sets both."""
    count = spec.items_count
    if count is None:
        return spec.items_min, spec.items_max
    value = evaluate(count, {"inputs": inputs}) if isinstance(count, str) else count
    if isinstance(value, bool) or not isinstance(value, int) or not spec.items_min <= value <= spec.items_max:
        raise TemplateRenderError(
            f"{spec.agent_name}: items count {count!r} gave {value!r}; "
            f"it must be a whole number from {spec.items_min} to {spec.items_max}"
        )
    return value, value


TITLE_WORDS = {"x-min-words": 1, "x-max-words": 20}
"""Size of a plan's title (`minLength`/`maxLength` for servers that hold the answer to the schema)."""


def plan_schema(spec: DecideSpec, low: int, high: int) -> dict[str, Any]:
    """JSON Schema of the plan `decide` must return."""
    return {
        "type": "object",
        "properties": {
            # A title of at least one word: held to a schema, a small model otherwise writes "".
            "title": {"type": "string", "description": "Title of the whole piece of content.", **TITLE_WORDS},
            "items": {"type": "array", "items": spec.item_schema, "minItems": low, "maxItems": high},
            **spec.plan_fields,
        },
        "required": ["title", "items", *spec.plan_required],
        "additionalProperties": False,
    }


def _model_provenance(
    agent: dict[str, str], step: Any, answer: ModelAnswer, parent: str, knowledge: Retrieved
) -> Provenance:
    reply = answer.reply
    return Provenance(
        agent=agent["name"],
        agent_version=agent["version"],
        step=step,
        template_hashes=answer.template_hashes,
        provider=reply.provider,
        model=reply.model,
        offline=reply.offline,
        usage=answer.usage,
        parent_checksum=parent,
        attempts=answer.attempts,
        warnings=answer.warnings,
        knowledge=knowledge.refs(),
    )


def retryable(_task: Task[..., Any], _run: TaskRun, state: State[Any]) -> bool:
    """Prefect retry condition: retry only errors that say another attempt may pass."""
    error = state.data
    return isinstance(error, TimeoutError) or bool(getattr(error, "retryable", False))


# -- Prefect tasks ------------------------------------------------------------------------

_CACHED: dict[str, Any] = {
    "persist_result": True,
    "result_serializer": "json",
    "cache_policy": INPUTS,
    "retry_condition_fn": retryable,
}


@task(name="decide", **_CACHED)
async def decide(
    spec: DecideSpec,
    inputs: Inputs,
    context: RunContext,
    knowledge: Retrieved = NOTHING,
    revision: PlanRevision | None = None,
) -> Plan:
    """Plan the content (one model call); `knowledge`, what it retrieved, and a `revision` an editor asked
    for are part of its cache key."""
    return await make_plan(spec, inputs, context, knowledge, revision)


@dataclass
class DraftInputs(InputsPolicy):
    """`INPUTS`, with the plan narrowed to what one draft is written from: the plan's title and fields, and
    the draft's own item (key, title, fields).

    The other items are context in a generate prompt, not its subject: an editor's edit of one item
    changes that item's key only, and the drafts of the items it left alone stay cached.
    """

    def compute_key(
        self, task_ctx: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any
    ) -> str | None:
        plan, key = inputs.get("plan"), inputs.get("item_key")
        if isinstance(plan, Plan) and isinstance(key, str):
            inputs = {**inputs, "plan": draft_scope(plan, key)}
        return super().compute_key(task_ctx, inputs, flow_parameters, **kwargs)


DRAFT_INPUTS = DraftInputs()
"""The cache policy of `generate`."""


def draft_scope(plan: Plan, key: str) -> dict[str, Any]:
    """What of `plan` the draft of item `key` is keyed on."""
    return {"title": plan.title, "fields": plan.fields, "item": plan.item(key).model_dump(mode="json")}


@task(name="generate", **{**_CACHED, "cache_policy": DRAFT_INPUTS})
async def generate(
    spec: GenerateSpec, inputs: Inputs, context: RunContext, plan: Plan, item_key: str, knowledge: Retrieved = NOTHING
) -> Draft:
    """Write the draft of one plan item (one model call); `knowledge`, what it retrieved, is part of its cache key."""
    return await write_draft(spec, inputs, context, plan, item_key, knowledge)


@task(name="build", **_CACHED)
async def build(spec: BuildSpec, inputs: Inputs, plan: Plan, drafts: list[Draft]) -> BuiltContent:
    """Assemble the drafts into finished content (no model call)."""
    return build_drafts(spec, inputs, plan, drafts)


# Keyed by run as well as inputs: the result is persisted (Prefect writes only keyed
# results) but never served to another run, so every run really writes its content.
SAVE_POLICY = RUN_ID + INPUTS


@task(name="save", **{**_CACHED, "cache_policy": SAVE_POLICY})
async def save(built: BuiltContent, run: RunInfo) -> SavedContent:
    """Store the content and show it on the flow run page."""
    saved = await anyio.to_thread.run_sync(save_content, built, run)
    await publish(built, saved)
    return saved


async def publish(built: BuiltContent, saved: SavedContent) -> None:
    """Attach a preview and a link to the run, for users who started it from the UI.

    Both point at the content's viewer page when `AGENTFLOWS_VIEWER_URL` is set, else at the stored file.
    """
    key = slug(f"{built.provenance.agent}-{saved.content_id}", 100)
    link = viewer_link(saved.content_id, saved.location) or saved.location
    await asyncio.gather(
        acreate_markdown_artifact(
            markdown=preview_markdown(built, saved.content_id, link), key=key, description=f"Preview of {built.title!r}"
        ),
        acreate_link_artifact(link=link, link_text=built.title, description="Open the content"),
    )


def usage_of(*artifacts: Plan | Draft) -> Usage:
    """Summed model usage of the given artifacts."""
    total = Usage()
    for artifact in artifacts:
        total = total + artifact.provenance.usage
    return total
