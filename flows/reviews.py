"""Deciding on runs that wait for a review, from any process that reaches their Prefect API.

    pending_reviews()                  the flow runs paused (or suspended) for a review, newest first
    pending_review(run_id)             one of them, with the plan it shows (what `approve --plan` edits)
    approve(run_id, notes=, plan=)     resume it: write the drafts from its plan, or from `plan` (the edits)
    revise(run_id, notes=, plan=)      resume it: decide plans again following `notes` (a new round)
    reject(run_id, notes=)             resume it: the run ends Cancelled, nothing stored

A run id may be a unique prefix (8 characters or more) of a paused review's id.
The decision is checked against the run's own form (the JSON Schema it saved)
before it is sent, so a bad plan file is refused with the field it breaks, and
the run stays paused. `*_async` are the same for code that runs an event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.exceptions import FlowPauseTimeout, NotPausedError, ObjectNotFound
from prefect.flow_runs import aresume_flow_run
from prefect.settings import get_current_settings

from agentflows.api import run_blocking
from agentflows.errors import InputError, ReviewNotWaiting
from agentflows.review_form import content_of_values, form_values
from agentflows.tasks.parsing import schema_problems
from agentflows.tasks.review import PlanContent

MIN_PREFIX = 8
SCHEMA_WAIT_SECONDS = 10.0
"""How long a decision waits for a run that is paused but has not saved its form yet."""


@dataclass(frozen=True)
class PendingReview:
    """A flow run waiting for an editor's decision on its plan."""

    run_id: str
    run_name: str
    agent: str
    round: int
    plan: PlanContent
    """The plan the form shows (decide's, or a revised one)."""
    deadline: datetime | None
    """When the review times out (then the agent's `review.on_timeout` applies)."""
    suspended: bool
    """True when the run released its worker (a deployment run); it starts again once resumed."""
    url: str | None
    """The run's page in the Prefect UI, where the form is (under Resume)."""
    schema: dict[str, Any]
    """The form's JSON Schema, as the run saved it."""

    @property
    def decisions(self) -> list[str]:
        """What the form accepts: approve, revise (unless this is the last round) and reject."""
        return list(self.schema["properties"]["decision"]["enum"])


async def pending_reviews_async() -> list[PendingReview]:
    """Every flow run waiting for a review, newest first."""
    async with get_client() as client:
        runs = await client.read_flow_runs(flow_run_filter=_paused())
        found = [await _pending(client, run) for run in runs if _review_key(run)]
    return sorted((p for p in found if p is not None), key=lambda p: p.deadline or datetime.max, reverse=True)


async def pending_review_async(run_id: str) -> PendingReview:
    """The review flow run `run_id` (or unique prefix) waits for; `ReviewNotWaiting` when it waits for none."""
    async with get_client() as client:
        run = await _find(client, run_id)
        pending = await _pending(client, run, wait=SCHEMA_WAIT_SECONDS)
    if pending is None:
        raise ReviewNotWaiting(f"flow run {run_id!r} is paused, but not for an agentflows review")
    return pending


async def approve_async(
    run_id: str, *, notes: str = "", plan: PlanContent | None = None, reviewer: str = ""
) -> PendingReview:
    """Approve the plan of run `run_id`, as it is or replaced by `plan`; the run writes its drafts from it."""
    values = form_values(plan) if plan is not None else {}
    return await _decide(run_id, {"decision": "approve", "notes": notes, "reviewer": reviewer, **values})


async def reject_async(run_id: str, *, notes: str = "", reviewer: str = "") -> PendingReview:
    """Reject the plan of run `run_id`: the run ends Cancelled with `notes` as its reason, and stores nothing."""
    return await _decide(run_id, {"decision": "reject", "notes": notes, "reviewer": reviewer})


async def revise_async(
    run_id: str, *, notes: str, plan: PlanContent | None = None, reviewer: str = ""
) -> PendingReview:
    """Ask run `run_id` to plan again following `notes` (from `plan`, the editor's version, when given)."""
    values = form_values(plan) if plan is not None else {}
    return await _decide(run_id, {"decision": "revise", "notes": notes, "reviewer": reviewer, **values})


def pending_reviews() -> list[PendingReview]:
    """Blocking `pending_reviews_async`."""
    return run_blocking(pending_reviews_async, "pending_reviews")


def pending_review(run_id: str) -> PendingReview:
    """Blocking `pending_review_async`."""
    return run_blocking(lambda: pending_review_async(run_id), "pending_review")


def approve(run_id: str, *, notes: str = "", plan: PlanContent | None = None, reviewer: str = "") -> PendingReview:
    """Blocking `approve_async`."""
    return run_blocking(lambda: approve_async(run_id, notes=notes, plan=plan, reviewer=reviewer), "approve")


def reject(run_id: str, *, notes: str = "", reviewer: str = "") -> PendingReview:
    """Blocking `reject_async`."""
    return run_blocking(lambda: reject_async(run_id, notes=notes, reviewer=reviewer), "reject")


def revise(run_id: str, *, notes: str, plan: PlanContent | None = None, reviewer: str = "") -> PendingReview:
    """Blocking `revise_async`."""
    return run_blocking(lambda: revise_async(run_id, notes=notes, plan=plan, reviewer=reviewer), "revise")


async def _decide(run_id: str, run_input: dict[str, Any]) -> PendingReview:
    pending = await pending_review_async(run_id)
    if run_input["decision"] not in pending.decisions:
        raise InputError(
            f"flow run {pending.run_id} is in its last review round: decide {' or '.join(pending.decisions)}"
        )
    problems = schema_problems(run_input, pending.schema)
    if problems:
        raise InputError(f"the plan does not fit the form of {pending.agent}: {_plan_path(problems[0])}")
    try:
        await aresume_flow_run(UUID(pending.run_id), run_input=run_input)
    except (NotPausedError, FlowPauseTimeout) as exc:
        raise ReviewNotWaiting(f"flow run {pending.run_id} can no longer be resumed: {exc}") from None
    except RuntimeError as exc:  # Prefect's refusal: "Cannot resume this run: Reason: …"
        raise InputError(f"Prefect refused the decision for flow run {pending.run_id}: {exc}") from None
    return pending


async def _find(client: PrefectClient, run_id: str) -> FlowRun:
    text = run_id.strip().lower()
    try:
        return await client.read_flow_run(UUID(text))
    except ValueError:
        pass
    except ObjectNotFound:
        raise ReviewNotWaiting(f"no flow run has id {run_id!r} on {_api()}") from None
    if len(text) < MIN_PREFIX:
        raise ReviewNotWaiting(f"{run_id!r} is not a flow run id (give the id, or at least {MIN_PREFIX} characters)")
    matches = [r for r in await client.read_flow_runs(flow_run_filter=_paused()) if str(r.id).startswith(text)]
    if len(matches) != 1:
        many = "more than one paused run" if matches else "no paused run"
        raise ReviewNotWaiting(f"{many} on {_api()} has an id starting {run_id!r}; `agentflows review` lists them")
    return matches[0]


async def _pending(client: PrefectClient, run: FlowRun, wait: float = 0.0) -> PendingReview | None:
    """What `run` waits for, or None when it waits for no review; `ReviewNotWaiting` when it is not paused."""
    state = run.state
    if state is None or not state.is_paused():
        shown = state.name if state else "not started"
        raise ReviewNotWaiting(f"flow run {run.id} is not waiting for a review (it is {shown})")
    key = _review_key(run)
    if key is None:
        return None
    base = f"{(state.name or 'paused').lower()}-{key}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        saved = await client.filter_flow_run_input(run.id, f"{base}-schema", 1, set())
        if saved or loop.time() >= deadline:
            break
        await asyncio.sleep(0.2)
    if not saved:
        return None
    schema = saved[0].decoded_value
    defaults = {name: prop.get("default") for name, prop in schema["properties"].items() if "default" in prop}
    flow = await client.read_flow(run.flow_id)
    ui = get_current_settings().ui_url
    return PendingReview(
        run_id=str(run.id),
        run_name=run.name,
        agent=flow.name,
        round=int(key.rpartition("-")[2]),
        plan=content_of_values(defaults),
        deadline=state.state_details.pause_timeout,
        suspended=state.name == "Suspended",
        url=f"{ui.rstrip('/')}/v2/runs/flow-run/{run.id}" if ui else None,
        schema=schema,
    )


def _review_key(run: FlowRun) -> str | None:
    """The pause key of an agentflows review (`review-<round>`), or None for any other pause."""
    key = run.state.state_details.pause_key if run.state else None
    return key if key and key.startswith("review-") and key.rpartition("-")[2].isdigit() else None


def _paused() -> FlowRunFilter:
    return FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))


def _plan_path(problem: str) -> str:
    """A form problem (`plan_items/1/minutes: …`) with the path as a plan file names it (`items[1].minutes`)."""
    where, _, message = problem.partition(": ")
    parts = where.split("/")
    named = parts[0].replace("plan_items", "items") + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in parts[1:])
    return f"{named}: {message}"


def _api() -> str:
    return get_current_settings().api.url or "this process's temporary Prefect API"
