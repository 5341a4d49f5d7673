"""The body of every agent flow: decide → generate (fan-out) → build → save.

It reads like the diagram. Each step runs as a Prefect task so its result is
persisted and cached; a step served from the cache is reported as such, which
is how a run counts (and the save step records) the model calls it really made.
Every call is also written to the run's ledger (`tasks.ledger`) as it is made, so
a run that fails still says what it spent and what the model answered: the failed
step's answers are published on the flow run, and the error reaches the caller
with the ledger. An agent with knowledge retrieves in the flow, before decide and
before each generate task, so what a step retrieved is one of its task's
arguments, and so part of its cache key.

The fan-out writes at most as many drafts at once as the provider takes calls
(a local server's slots). Where the definition sets `min_items_ok`, drafts that
still fail are dropped with a warning (and their answers kept in the lineage)
as long as that many succeeded. Once the step cannot succeed (one draft failed,
or too many for `min_items_ok`), drafts not yet started are not written.

A run may ask for a review: an editor approves, revises or rejects the plan
between decide and generate (`agentflows.review`). A rework starts after decide,
on a stored content's plan, and keeps the stored drafts of the items it did not
change (`Rework`, made by `agentflows.rework`).

The compiler makes what a run is given: `StepSpecs`, the immutable spec of each
step, and `StepTasks`, the step tasks with the agent's retries, timeouts and
cache settings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prefect import Task
from prefect.context import FlowRunContext
from prefect.states import State
from pydantic import JsonValue

from agentflows.progress import ProgressEvent, emit
from agentflows.review import replaying, review_plan
from agentflows.review_spec import ReviewSpec
from agentflows.step_states import Tally, collect_drafts, finish, status
from agentflows.tasks.artifacts import (
    AgentResult,
    Artifact,
    Draft,
    Handoff,
    Plan,
    Provenance,
    ReviewRecord,
    StepReport,
)
from agentflows.tasks.handoff import handoff_of, uses_label
from agentflows.tasks.knowledge.retrieved import NOTHING, Retrieved
from agentflows.tasks.knowledge.setup import KnowledgeSetup
from agentflows.tasks.ledger import run_ledger
from agentflows.tasks.llm.session import model_session
from agentflows.tasks.llm.settings import ModelSettings
from agentflows.tasks.outcomes import publish_failure
from agentflows.tasks.prefect_api import riding_out_outages
from agentflows.tasks.prompts import clean_user_text, clean_user_values, template_hashes
from agentflows.tasks.review import plan_entries
from agentflows.tasks.runtime import current_runtime
from agentflows.tasks.specs import BuildSpec, DecideSpec, GenerateSpec, PlanRevision, RunContext
from agentflows.tasks.storage import LineageEntry, RunInfo

if TYPE_CHECKING:
    from agentflows.tasks.knowledge.retrieval import RunKnowledge


@dataclass(frozen=True)
class StepSpecs:
    """The spec of every step of one agent."""

    decide: DecideSpec
    generate: GenerateSpec
    build: BuildSpec
    concurrency: int
    min_items_ok: int | None = None
    """Fewest drafts that must succeed (the rest are dropped with a warning); None: all of them."""
    knowledge: KnowledgeSetup | None = None
    """What decide and generate retrieve from (None: the agent has no knowledge)."""
    review: ReviewSpec = field(default_factory=ReviewSpec)
    """How an editor reviews the plan, in runs that ask for a review."""


@dataclass(frozen=True)
class Rework:
    """A run that starts after decide, from a stored content's plan (`agentflows.rework`)."""

    plan: Plan
    """The plan to write from: the stored one, or the editor's edit of it."""
    lineage: tuple[LineageEntry, ...]
    """The entries before the drafts': the rework's request, the stored plan, an edited plan."""
    record: ReviewRecord
    reworked_from: str
    drafts: Mapping[str, Draft] = field(default_factory=dict)
    """Stored drafts of the items the rework left as they were, by item key."""
    keep_all: bool = False
    """From build: every stored draft is kept as it is, and generate does not run."""

    def kept(self, key: str, spec: GenerateSpec, found: Retrieved) -> Draft | None:
        """The stored draft of item `key`, if it is still what generate would write from: same templates,
        same knowledge passages (a change to either writes the item again)."""
        draft = self.drafts.get(key)
        if draft is None or self.keep_all:
            return draft
        current = draft.provenance.template_hashes == template_hashes(spec.templates)
        return draft if current and draft.provenance.knowledge == found.refs() else None


@dataclass(frozen=True)
class StepTasks:
    """The step tasks of one agent, with its retries, timeouts and cache settings."""

    decide: Task[..., Any]
    generate: Task[..., Any]
    build: Task[..., Any]
    save: Task[..., Any]

    def for_run(self, *, refresh: bool) -> StepTasks:
        """The tasks with this run's result storage and cache refresh."""
        storage = current_runtime().settings.result_storage
        return StepTasks(
            *(
                t.with_options(result_storage=storage, refresh_cache=refresh)
                for t in (self.decide, self.generate, self.build, self.save)
            )
        )


async def run_pipeline(
    specs: StepSpecs,
    tasks: StepTasks,
    inputs: dict[str, JsonValue],
    *,
    refresh: bool = False,
    context: RunContext | None = None,
    review: bool = False,
    rework: Rework | None = None,
) -> AgentResult:
    """Run the four steps of one agent and say what they made.

    With `review`, an editor reviews the plan before generate (`agentflows.review`); a `rework` starts after
    decide, from a stored content's plan and drafts. The content store's settings are checked first, so a
    mistyped database or storage URL fails the run before any model call is paid for.
    """
    await asyncio.to_thread(current_runtime().store_settings)
    inputs = clean_user_values(inputs)
    context = context.model_copy(update={"request": clean_user_text(context.request)}) if context else RunContext()
    # A worker runs the flow outside `run_agent`: the steps' state changes ride out a short outage here too.
    with riding_out_outages():
        async with model_session():
            generate_model, fan_out = await _resolved(specs.generate.model, specs.concurrency)
            specs = replace(
                specs,
                decide=specs.decide.model_copy(update={"model": await resolved_settings(specs.decide.model)}),
                generate=specs.generate.model_copy(update={"model": generate_model}),
                concurrency=fan_out,
            )
            with run_ledger() as ledger:
                ledger.agent, ledger.flow_run_id = specs.decide.agent_name, _flow_run_id()
                try:
                    return await _run_steps(specs, tasks.for_run(refresh=refresh), inputs, context, review, rework)
                except Exception as exc:
                    await publish_failure(ledger, exc)
                    raise


async def _resolved(settings: ModelSettings, concurrency: int) -> tuple[ModelSettings, int]:
    """The generate step's resolved settings, and its fan-out capped by what the provider takes at once."""
    provider = await current_runtime().provider(settings)
    prepare = getattr(provider, "prepare", None)
    if prepare is not None:
        await prepare()  # learn the server's slots before deciding how many drafts go at once
    takes = getattr(provider, "max_concurrency", None)
    return await resolved_settings(settings), min(concurrency, takes) if isinstance(takes, int) else concurrency


async def resolved_settings(settings: ModelSettings) -> ModelSettings:
    """`settings` naming the provider and model that will really answer.

    `provider: default` and an empty model name depend on the environment; resolving
    them puts the real provider and model into the step specs, and so into the cache
    keys: results of the offline provider are never served for a real model's steps.
    An unknown provider fails here, before any call.
    """
    provider = await current_runtime().provider(settings)
    model = settings.model or provider.default_model
    return settings.model_copy(update={"provider": provider.name, "model": model})


async def _run_steps(
    specs: StepSpecs,
    run: StepTasks,
    inputs: dict[str, JsonValue],
    context: RunContext,
    review: bool,
    rework: Rework | None,
) -> AgentResult:
    agent = specs.decide.agent_name
    reports: list[StepReport] = []
    started_at = datetime.now(UTC)
    knowledge = None if rework and rework.keep_all else await open_knowledge(specs, inputs)

    if rework is None:
        plan, head, reviews = await _decide(specs, run, inputs, context, knowledge, reports, review)
    else:
        plan, head, reviews = rework.plan, list(rework.lineage), (rework.record,)

    emit(ProgressEvent(agent, "generate", "started", f"{len(plan.items)} drafts, up to {specs.concurrency} at a time"))
    limit = asyncio.Semaphore(specs.concurrency)
    per_item = await knowledge.for_items(specs.generate.agent, inputs, context, plan) if knowledge else {}
    tally = Tally(len(plan.items), specs.min_items_ok)

    async def draft(key: str) -> State[Any] | Draft | None:
        found = per_item.get(key, NOTHING)
        kept = rework.kept(key, specs.generate, found) if rework else None
        if kept is not None:
            return kept
        async with limit:
            if tally.hopeless:  # the step fails whatever this draft says: not paid for
                return None
            state = await run.generate(specs.generate, inputs, context, plan, key, found, return_state=True)
            tally.record(state)
            return state

    states = await asyncio.gather(*(draft(item.key) for item in plan.items))
    drafts, dropped = await collect_drafts(agent, specs.generate, specs.min_items_ok, plan, states, reports)
    cached = sum(1 for r in reports if r.step == "generate" and r.cached)
    flagged = sum(1 for d in drafts if d.provenance.warnings)
    note = (f", {flagged} with warnings" if flagged else "") + (f", {len(dropped)} dropped" if dropped else "")
    emit(ProgressEvent(agent, "generate", "done", f"{len(drafts)} drafts ({cached} from cache{note})"))

    emit(ProgressEvent(agent, "build", "started"))
    built = await finish(
        agent, "build", "build", await run.build(specs.build, inputs, plan, drafts, return_state=True), reports
    )
    emit(ProgressEvent(agent, "build", status(reports[-1]), f"{len(built.files)} files"))

    flow_run_id = _flow_run_id()
    from_cache = {r.label: r.cached for r in reports}  # a step served from the cache cost this run nothing
    made: list[tuple[str, Artifact]] = [(f"generate {d.item_key}", d) for d in drafts]
    lineage = [
        *upstream_lineage(context.upstream),
        # A rework's stored plan cost this run nothing; a review's own entries cost nothing anyway.
        *(e.model_copy(update={"cached": from_cache.get(e.label, rework is not None)}) for e in head),
        *(
            LineageEntry(
                checksum=a.checksum,
                label=label,
                provenance=a.provenance,
                cached=from_cache[label],
                artifact=a.model_dump(mode="json") if isinstance(a, Draft) else None,
            )
            for label, a in made
        ),
        *dropped,
        LineageEntry(checksum=built.checksum, label="build", provenance=built.provenance, cached=from_cache["build"]),
    ]
    run_info = RunInfo(
        flow_run_id=flow_run_id,
        inputs=inputs,
        lineage=lineage,
        started_at=started_at,
        reworked_from=rework.reworked_from if rework else None,
    )
    emit(ProgressEvent(agent, "save", "started"))
    saved = await finish(agent, "save", "save", await run.save(built, run_info, return_state=True), reports)
    emit(ProgressEvent(agent, "save", "done", saved.location))

    return AgentResult(
        agent=agent,
        agent_version=specs.decide.agent_version,
        flow_run_id=flow_run_id,
        content_id=saved.content_id,
        content_type=saved.content_type,
        title=saved.title,
        location=saved.location,
        files=saved.files,
        offline=built.provenance.offline,
        steps=tuple(reports),
        reviews=reviews,
        builds_on={agent: h.content_id for agent, h in context.upstream.items()},
        handoff=handoff_of(plan, drafts, built, saved, inputs),
    )


async def _decide(
    specs: StepSpecs,
    run: StepTasks,
    inputs: dict[str, JsonValue],
    context: RunContext,
    knowledge: RunKnowledge | None,
    reports: list[StepReport],
    review: bool,
) -> tuple[Plan, list[LineageEntry], tuple[ReviewRecord, ...]]:
    """Decide's plan, reviewed by an editor when the run asks for it; the lineage entries of both."""
    agent = specs.decide.agent_name
    # A suspended review starts the run again: decide must give the plans the editor already saw.
    decide = run.decide.with_options(refresh_cache=False) if review and replaying() else run.decide
    emit(ProgressEvent(agent, "decide", "started"))
    found = await knowledge.for_decide(specs.decide.agent, inputs, context) if knowledge else NOTHING
    plan: Plan = await finish(
        agent, "decide", "decide", await decide(specs.decide, inputs, context, found, return_state=True), reports
    )
    emit(ProgressEvent(agent, "decide", status(reports[-1]), f"{plan.title!r}, {len(plan.items)} items"))
    head = plan_entries([("decide", plan)])
    if not review:
        return plan, head, ()

    async def redecide(revision: PlanRevision) -> Plan:
        emit(ProgressEvent(agent, "decide", "started", f"round {revision.round}, with the editor's notes"))
        state = await decide(specs.decide, inputs, context, found, revision, return_state=True)
        revised: Plan = await finish(agent, "decide", f"decide round {revision.round}", state, reports)
        emit(ProgressEvent(agent, "decide", status(reports[-1]), f"{revised.title!r}, {len(revised.items)} items"))
        return revised

    reviewed = await review_plan(specs.decide, specs.review, plan, redecide)
    last = reviewed.records[-1]
    edits = f", {len(last.edits)} edits" if last.edits else ""
    emit(ProgressEvent(agent, "review", "done", f"approved by {last.reviewer or 'the editor'}{edits}"))
    return reviewed.plan, [*head, *reviewed.lineage], reviewed.records


async def open_knowledge(specs: StepSpecs, inputs: dict[str, JsonValue]) -> RunKnowledge | None:
    """The run's retrieval with its sources synced into the index (None for an agent without knowledge)."""
    if specs.knowledge is None:
        return None
    from agentflows.tasks.knowledge.retrieval import RunKnowledge  # database code only for agents with knowledge

    knowledge = await RunKnowledge.open(specs.knowledge, inputs, specs.decide.model)
    report = knowledge.scope.report
    emit(
        ProgressEvent(
            specs.decide.agent_name,
            "knowledge",
            "done",
            f"{report.documents} files, {report.passages} passages ({report.indexed} indexed now), "
            f"{knowledge.base.mode} search",
        )
    )
    return knowledge


def upstream_lineage(upstream: dict[str, Handoff]) -> list[LineageEntry]:
    """One lineage entry per upstream content the run used: agent, content id, checksum of that version."""
    return [
        LineageEntry(
            checksum=h.checksum,
            label=uses_label(h),
            provenance=Provenance(agent=h.agent, agent_version=h.agent_version, step="build"),
        )
        for h in upstream.values()
    ]


def _flow_run_id() -> str | None:
    context = FlowRunContext.get()
    return str(context.flow_run.id) if context and context.flow_run else None
