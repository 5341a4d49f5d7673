"""Rework a stored content from one of its steps: the same agent, on the stored plan and drafts, with changes.

    rework("3f9c…", from_step="generate", plan=edited, params={"grade_level": "7th grade"})

    from generate   the stored plan (or `plan`, an edit of it) is written again, item by item; an item
                    the change left alone keeps its stored draft, unless its templates or knowledge
                    passages changed since: only the items downstream of a change call the model
    from build      every stored draft is kept; the plan may change its title and fields, not its items

Then build and save run, and the new content's lineage starts with the rework
(`ReviewRecord` with decision `rework`: the content it started from, the step,
the edits, the notes) and the plan it used; its generation names the original
(`reworked_from`). A change of inputs (`params`) is downstream of everything
generate writes, so from generate every item is written again.

The `rework` flow does this from the Prefect UI (its parameters: content id,
step, plan as JSON, inputs to change); `agentflows rerun` and `rework()` run it
in this process.
"""

from __future__ import annotations

import asyncio
import inspect
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from prefect import Flow, flow
from prefect.context import SyncClientContext
from pydantic import Field

from agentflows.api import run_blocking
from agentflows.catalog import AgentCatalog, load_agents
from agentflows.compiler import step_specs, step_tasks
from agentflows.errors import InputError
from agentflows.inputs import validate_inputs
from agentflows.pipeline import Rework, run_pipeline
from agentflows.plan_files import plan_from_data
from agentflows.tasks.artifacts import AgentResult, PlanItem, ReviewRecord
from agentflows.tasks.manifest import REWORK_NAME
from agentflows.tasks.prefect_api import riding_out_outages
from agentflows.tasks.review import PlanContent, edited_plan, plan_edits, plan_entries, record_entry, value_edits
from agentflows.tasks.runtime import current_runtime, open_store
from agentflows.tasks.storage.kept import BuiltFrom, built_from

FromStep = Literal["generate", "build"]
REWORK_DOC = """Rework a stored content from one of its steps, on its stored plan and drafts, with changes.

Args:
    content_id: The stored content to rework (its id, or a unique prefix of it).
    from_step: generate writes again the items a change touches (all of them when an input changes); build keeps \
every stored draft.
    plan: The plan to use instead of the stored one, as JSON: title, the plan's fields and items (each with a title).
    params: Inputs to change, by name, e.g. {"grade_level": "7th grade"}; the others stay as stored.
    notes: Why the content is reworked, for its lineage.
    reviewer: Who asks for the rework, for its lineage.
"""


def rework_start(
    found: BuiltFrom,
    inputs: dict[str, Any],
    plan: PlanContent | None,
    from_step: FromStep,
    notes: str = "",
    reviewer: str = "",
) -> Rework:
    """Where the rework of `found` starts: the plan to write from, the drafts it keeps, its lineage head."""
    stored = found.plan
    used = edited_plan(stored, plan, parent=stored.checksum) if plan is not None else stored
    changed_inputs = value_edits(found.content.parameters, inputs, prefix="input ")
    before, after = PlanContent.of(stored).normal(), PlanContent.of(used).normal()
    if from_step == "build":
        if before.items != after.items:
            raise InputError(
                "--from build keeps every stored draft, so the plan may change its title and fields, not its items; "
                "rerun --from generate to write changed items"
            )
        kept = dict(found.drafts)
    elif changed_inputs or (before.title, before.fields) != (after.title, after.fields):
        kept = {}
    else:
        was = {item.key: _content(item) for item in stored.items}
        unchanged = {item.key for item in used.items if was.get(item.key) == _content(item)}
        kept = {key: draft for key, draft in found.drafts.items() if key in unchanged}
    record = ReviewRecord(
        decision="rework",
        notes=notes,
        reviewer=reviewer,
        decided_at=datetime.now(UTC),
        plan_checksum=stored.checksum,
        approved_checksum=used.checksum,
        edits=(*plan_edits(before, after), *changed_inputs),
        reworked_from=found.content.id,
        from_step=from_step,
    )
    plans = [("decide", stored)] + ([("decide edited by the editor", used)] if used is not stored else [])
    head = (record_entry(record, stored.provenance, f"rework of {found.content.id} from {from_step}"),)
    return Rework(
        plan=used,
        lineage=(*head, *plan_entries(plans)),
        record=record,
        reworked_from=found.content.id,
        drafts=kept,
        keep_all=from_step == "build",
    )


def compile_rework(catalog: AgentCatalog) -> Flow[..., Any]:
    """The rework flow over the agents of `catalog`."""

    async def rework(**parameters: Any) -> AgentResult:
        content_id = str(parameters["content_id"])
        found = await asyncio.to_thread(_built_from, content_id)
        agent = catalog[found.content.agent]
        inputs = validate_inputs(agent.definition, {**found.content.parameters, **(parameters.get("params") or {})})
        plan = plan_from_data(parameters["plan"], "plan") if parameters.get("plan") else None
        start = rework_start(
            found, inputs, plan, parameters.get("from_step") or "generate", parameters["notes"], parameters["reviewer"]
        )
        return await run_pipeline(step_specs(agent), step_tasks(agent.definition), inputs, rework=start)

    rework.__signature__ = rework_signature()  # type: ignore[attr-defined]
    rework.__doc__ = REWORK_DOC
    rework.__name__ = rework.__qualname__ = REWORK_NAME
    rework.__module__ = "agentflows.agents"
    return flow(
        name=REWORK_NAME,
        description="Rework a stored content from one of its steps, on its stored plan and drafts, with changes.",
        flow_run_name=_run_name,
        persist_result=True,
        result_storage=current_runtime().settings.result_storage,
        validate_parameters=True,
    )(rework)


def rework_signature() -> inspect.Signature:
    """The rework flow's parameters, as the UI form shows them."""
    kind = inspect.Parameter.KEYWORD_ONLY
    content_id = Annotated[str, Field(min_length=6, max_length=32)]
    return inspect.Signature(
        [
            inspect.Parameter("content_id", kind, annotation=content_id),
            inspect.Parameter("from_step", kind, default="generate", annotation=FromStep),
            inspect.Parameter("plan", kind, default=None, annotation=dict[str, Any] | None),
            inspect.Parameter("params", kind, default=None, annotation=dict[str, Any] | None),
            inspect.Parameter("notes", kind, default="", annotation=str),
            inspect.Parameter("reviewer", kind, default="", annotation=str),
        ]
    )


def compiled_rework(catalog: AgentCatalog) -> Flow[..., Any]:
    """The rework flow, compiled once per set of agent versions and result storage."""
    runtime = current_runtime()
    version = (
        tuple(f"{agent.file}@{agent.flow_version}" for agent in catalog.values()),
        str(runtime.settings.result_storage),
    )
    return runtime.remembered(("rework", str(catalog.root)), version, lambda: compile_rework(catalog))


async def rework_async(
    content_id: str,
    *,
    from_step: FromStep = "generate",
    plan: PlanContent | None = None,
    params: dict[str, Any] | None = None,
    notes: str = "",
    reviewer: str = "",
    definitions: Path | str | None = None,
) -> AgentResult:
    """Rework content `content_id` from `from_step` (see the module docstring) and return the new content."""
    rework = compiled_rework(load_agents(definitions))
    # One sync Prefect client for the run, not one per use; state changes ride out a short outage.
    with riding_out_outages(), SyncClientContext.get_or_create():
        result = await rework(  # type: ignore[misc]
            content_id=content_id,
            from_step=from_step,
            plan=plan.view() if plan is not None else None,
            params=params or {},
            notes=notes,
            reviewer=reviewer,
        )
    assert isinstance(result, AgentResult)
    return result


def rework(content_id: str, **options: Any) -> AgentResult:
    """Blocking `rework_async`."""
    return run_blocking(lambda: rework_async(content_id, **options), "rework")


def _content(item: PlanItem) -> dict[str, Any]:
    """What an item's draft is written from (null fields are absent ones)."""
    return {"title": item.title, **{k: v for k, v in item.fields.items() if v is not None}}


def _built_from(content_id: str) -> BuiltFrom:
    found = built_from(open_store(), content_id)
    if found is None:
        raise InputError(
            f"content {content_id!r} was stored before agentflows kept the plan and drafts of a content; "
            "run its agent again to make a content that can be reworked"
        )
    return found


def _run_name() -> str:
    from prefect.runtime import flow_run

    parameters = flow_run.parameters
    return f"rework: {str(parameters.get('content_id', ''))[:20]} from {parameters.get('from_step') or 'generate'}"
