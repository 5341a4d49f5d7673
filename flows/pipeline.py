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
as long as that many succeeded.

The compiler makes what a run is given: `StepSpecs`, the immutable spec of each
step, and `StepTasks`, the step tasks with the agent's retries, timeouts and
cache settings.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prefect import Task
from prefect.context import FlowRunContext
from prefect.states import State
from pydantic import JsonValue

from agentflows.progress import ProgressEvent, emit
from agentflows.tasks.artifacts import (
    AgentResult,
    Artifact,
    Draft,
    Handoff,
    Plan,
    PlanItem,
    Provenance,
    Step,
    StepReport,
)
from agentflows.tasks.errors import ModelCallError, ModelOutputError, RunError
from agentflows.tasks.handoff import handoff_of, uses_label
from agentflows.tasks.knowledge.retrieved import NOTHING
from agentflows.tasks.knowledge.setup import KnowledgeSetup
from agentflows.tasks.ledger import RunLedger, current_ledger, run_ledger
from agentflows.tasks.llm.session import model_session
from agentflows.tasks.llm.settings import ModelSettings
from agentflows.tasks.outcomes import dropped_draft, publish_failure
from agentflows.tasks.prefect_api import riding_out_outages
from agentflows.tasks.prompts import clean_user_text, clean_user_values
from agentflows.tasks.runtime import current_runtime
from agentflows.tasks.specs import BuildSpec, DecideSpec, GenerateSpec, RunContext
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
) -> AgentResult:
    """Run the four steps of one agent and say what they made.

    The content store's settings are checked first, so a mistyped database or
    storage URL fails the run before any model call is paid for.
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
                    return await _run_steps(specs, tasks.for_run(refresh=refresh), inputs, context)
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
    specs: StepSpecs, run: StepTasks, inputs: dict[str, JsonValue], context: RunContext
) -> AgentResult:
    agent = specs.decide.agent_name
    reports: list[StepReport] = []
    started_at = datetime.now(UTC)
    knowledge = await open_knowledge(specs, inputs)

    emit(ProgressEvent(agent, "decide", "started"))
    found = await knowledge.for_decide(specs.decide.agent, inputs, context) if knowledge else NOTHING
    plan: Plan = await _finish(
        agent, "decide", "decide", await run.decide(specs.decide, inputs, context, found, return_state=True), reports
    )
    emit(ProgressEvent(agent, "decide", _status(reports[-1]), f"{plan.title!r}, {len(plan.items)} items"))

    emit(ProgressEvent(agent, "generate", "started", f"{len(plan.items)} drafts, up to {specs.concurrency} at a time"))
    limit = asyncio.Semaphore(specs.concurrency)
    per_item = await knowledge.for_items(specs.generate.agent, inputs, context, plan) if knowledge else {}

    async def draft(key: str) -> State[Any]:
        async with limit:
            found = per_item.get(key, NOTHING)
            return await run.generate(specs.generate, inputs, context, plan, key, found, return_state=True)

    states = await asyncio.gather(*(draft(item.key) for item in plan.items))
    drafts, dropped = await _drafts(specs, plan, states, reports)
    cached = sum(1 for r in reports if r.step == "generate" and r.cached)
    flagged = sum(1 for d in drafts if d.provenance.warnings)
    note = (f", {flagged} with warnings" if flagged else "") + (f", {len(dropped)} dropped" if dropped else "")
    emit(ProgressEvent(agent, "generate", "done", f"{len(drafts)} drafts ({cached} from cache{note})"))

    emit(ProgressEvent(agent, "build", "started"))
    built = await _finish(
        agent, "build", "build", await run.build(specs.build, inputs, plan, drafts, return_state=True), reports
    )
    emit(ProgressEvent(agent, "build", _status(reports[-1]), f"{len(built.files)} files"))

    flow_run_id = _flow_run_id()
    from_cache = {r.label: r.cached for r in reports}  # a step served from the cache cost this run nothing
    made: list[tuple[str, Artifact]] = [("decide", plan), *((f"generate {d.item_key}", d) for d in drafts)]
    lineage = [
        *upstream_lineage(context.upstream),
        *(
            LineageEntry(checksum=a.checksum, label=label, provenance=a.provenance, cached=from_cache[label])
            for label, a in made
        ),
        *dropped,
        LineageEntry(checksum=built.checksum, label="build", provenance=built.provenance, cached=from_cache["build"]),
    ]
    run_info = RunInfo(flow_run_id=flow_run_id, inputs=inputs, lineage=lineage, started_at=started_at)
    emit(ProgressEvent(agent, "save", "started"))
    saved = await _finish(agent, "save", "save", await run.save(built, run_info, return_state=True), reports)
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
        builds_on={agent: h.content_id for agent, h in context.upstream.items()},
        handoff=handoff_of(plan, drafts, built, saved, inputs),
    )


async def _drafts(
    specs: StepSpecs, plan: Plan, states: list[State[Any]], reports: list[StepReport]
) -> tuple[list[Draft], list[LineageEntry]]:
    """The drafts that were written, and the lineage of those dropped (only where `min_items_ok` allows)."""
    agent = specs.decide.agent_name
    drafts: list[Draft] = []
    failed: list[tuple[PlanItem, BaseException]] = []
    for item, state in zip(plan.items, states, strict=True):
        error = await _droppable(state) if specs.min_items_ok is not None else None
        if error is not None:
            emit(ProgressEvent(agent, "generate", "failed", f"generate {item.key} dropped: {await _why(state)}"))
            failed.append((item, error))
        else:
            drafts.append(await _finish(agent, "generate", f"generate {item.key}", state, reports))
    if failed and len(drafts) < (specs.min_items_ok or 0):
        raise _too_few(agent, len(drafts), len(plan.items), specs.min_items_ok or 0, failed[0][1])
    ledger = current_ledger() or RunLedger()
    dropped = []
    for item, error in failed:
        entry, report = dropped_draft(specs.generate, plan, item, error, ledger)
        dropped.append(entry)
        reports.append(report)
    return drafts, dropped


async def _droppable(state: State[Any]) -> BaseException | None:
    """The error of a draft that failed in a way that may leave it out (not a bug), else None."""
    if not (state.is_failed() or state.is_crashed()):
        return None
    error = await state.aresult(raise_on_failure=False)
    return error if isinstance(error, RunError | TimeoutError) else None


def _too_few(agent: str, ok: int, total: int, needed: int, first: BaseException) -> BaseException:
    message = f"{agent}/generate: {ok} of {total} drafts succeeded, fewer than min_items_ok ({needed}); first: {first}"
    return type(first)(message) if isinstance(first, ModelOutputError | ModelCallError) else first


async def _finish(agent: str, step: Step, label: str, state: State[Any], reports: list[StepReport]) -> Any:
    """The task's result (raising its error if it failed), recorded in `reports`."""
    if state.is_failed() or state.is_crashed() or state.is_cancelled():
        emit(ProgressEvent(agent, step, "failed", f"{label}: {await _why(state)}"))
    result = await state.aresult()
    cached = state.name == "Cached"
    if isinstance(result, Plan | Draft):
        report = StepReport(
            step=step, label=label, cached=cached, usage=result.provenance.usage, warnings=result.provenance.warnings
        )
    else:
        report = StepReport(step=step, label=label, cached=cached)
    reports.append(report)
    return result


async def _why(state: State[Any]) -> str:
    """The first line of a failed task's error (not Prefect's wrapping of it)."""
    error = await state.aresult(raise_on_failure=False)
    text = str(error).strip().splitlines() if isinstance(error, BaseException) else []
    return text[0] if text else state.message or state.name or "failed"


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


def _status(report: StepReport) -> Any:
    return "cached" if report.cached else "done"


def _flow_run_id() -> str | None:
    context = FlowRunContext.get()
    return str(context.flow_run.id) if context and context.flow_run else None
