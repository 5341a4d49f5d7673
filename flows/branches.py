"""The router's branches: each chosen agent runs as a sub-flow whose failure is its own.

`run_branch` runs one agent, after the branches it depends on, and turns what it
made, or why it failed, into a manifest `Component`; a branch whose upstream did
not complete is `skipped_branch` instead. `unique_names` settles clashing display
names with a content-hash suffix; `run_status` says whether none, some or all
branches completed.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prefect import Flow

from agentflows.definition import ROUTER_NAME
from agentflows.progress import ProgressEvent, emit
from agentflows.tasks.artifacts import AgentResult, ContentType
from agentflows.tasks.errors import one_line
from agentflows.tasks.ledger import run_ledger
from agentflows.tasks.manifest import Component, RunStatus
from agentflows.tasks.names import shortened

NAME_CHARS = 80
"""Longest display name of a component (cut at a word boundary)."""


@dataclass(frozen=True)
class BranchRun:
    """One branch's component, with the agent's result when it completed (what its dependents build on)."""

    component: Component
    result: AgentResult | None = None


async def run_branch(
    agent_flow: Flow[..., Any],
    agent: str,
    content_type: ContentType,
    inputs: dict[str, Any],
    request: str,
    refresh: bool,
    upstream: Mapping[str, BranchRun] | None = None,
    uses: Collection[str] = (),
) -> BranchRun:
    """One agent as a sub-flow, given the results of the `upstream` branches it `uses`; its failure
    becomes a failed component, never the router's."""
    upstream = upstream or {}
    handoffs = {
        name: run.result.handoff
        for name, run in upstream.items()
        if name in uses and run.result is not None and run.result.handoff is not None
    }
    # Passing the upstream results as wait_for records the edge on the sub-flow's run (the UI draws it).
    waits = [run.result for run in upstream.values() if run.result is not None]
    parameters: dict[str, Any] = {**inputs, "refresh": refresh, "context": request}
    if handoffs:
        parameters["builds_on"] = handoffs
    started_at = datetime.now(UTC)
    started = time.monotonic()
    emit(ProgressEvent(ROUTER_NAME, agent, "started", f"after {', '.join(upstream)}" if upstream else ""))
    with run_ledger(fresh=True) as ledger:  # the branch's calls, also when it fails
        try:
            result = await agent_flow(**parameters, wait_for=waits or None)
        except Exception as exc:  # a branch may fail for any reason; the others must still finish
            error = one_line(exc)[:500]
            emit(ProgressEvent(ROUTER_NAME, agent, "failed", error))
            spent = ledger.usage
            failed = Component(
                agent=agent,
                content_type=content_type,
                status="failed",
                name=agent,
                flow_run_id=ledger.flow_run_id,
                depends_on=tuple(upstream),
                started_at=started_at,
                finished_at=datetime.now(UTC),
                seconds=time.monotonic() - started,
                model_calls=spent.calls,
                model_seconds=spent.latency_seconds,
                tokens=spent.total_tokens,
                cost=spent.cost,
                error=error,
                failed_step=next((a.label for a in ledger.failures()), None),
            )
            return BranchRun(failed)
    assert isinstance(result, AgentResult)
    emit(ProgressEvent(ROUTER_NAME, agent, "done", result.location))
    usage = [s.usage for s in result.steps if not s.cached]
    component = Component(
        agent=agent,
        content_type=result.content_type,
        status="completed",
        name=shortened(f"{agent}: {result.title}", NAME_CHARS),
        flow_run_id=result.flow_run_id,
        content_id=result.content_id,
        title=result.title,
        location=result.location,
        files=result.files,
        depends_on=tuple(upstream),
        builds_on=result.builds_on,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        seconds=time.monotonic() - started,
        model_calls=result.model_calls,
        model_seconds=sum(u.latency_seconds for u in usage),
        tokens=sum(u.total_tokens for u in usage),
        cost=sum(u.cost for u in usage),
        warnings=tuple(result.warnings),
    )
    return BranchRun(component, result)


def skipped_branch(agent: str, content_type: ContentType, upstream: Mapping[str, BranchRun]) -> BranchRun:
    """The branch of `agent`, not run because an upstream it depends on did not complete."""
    broken = [run.component for run in upstream.values() if run.component.status != "completed"]
    reason = "; ".join(f"{c.agent} {c.status}" for c in broken)
    emit(ProgressEvent(ROUTER_NAME, agent, "skipped", reason))
    skipped = Component(
        agent=agent,
        content_type=content_type,
        status="skipped",
        name=agent,
        depends_on=tuple(upstream),
        error=f"skipped: {reason}",
    )
    return BranchRun(skipped)


def unique_names(components: list[Component]) -> list[Component]:
    """Components whose display names clash get a deterministic content-hash suffix."""
    counts: dict[str, int] = {}
    for c in components:
        counts[c.name] = counts.get(c.name, 0) + 1
    return [
        c.model_copy(update={"name": f"{c.name} ({_short_hash(c)})"}) if counts[c.name] > 1 else c for c in components
    ]


def _short_hash(component: Component) -> str:
    return (component.content_id or hashlib.sha256(component.agent.encode()).hexdigest())[:6]


def run_status(components: list[Component]) -> RunStatus:
    """`completed` when every branch completed, `failed` when none did, else `partly failed`."""
    completed = sum(1 for c in components if c.status == "completed")
    return "completed" if completed == len(components) else "failed" if completed == 0 else "partly failed"
