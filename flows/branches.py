"""The router's branches: each chosen agent runs as a sub-flow whose failure is its own.

`run_branch` runs one agent and turns what it made, or why it failed, into a
manifest `Component`; `unique_names` settles clashing display names with a
content-hash suffix; `run_status` says whether none, some or all branches failed.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any

from prefect import Flow

from agentflows.definition import ROUTER_NAME
from agentflows.progress import ProgressEvent, emit
from agentflows.tasks.artifacts import AgentResult, ContentType
from agentflows.tasks.errors import one_line
from agentflows.tasks.manifest import Component, RunStatus


async def run_branch(
    agent_flow: Flow[..., Any],
    agent: str,
    content_type: ContentType,
    inputs: dict[str, Any],
    request: str,
    refresh: bool,
) -> Component:
    """One agent as a sub-flow; its failure becomes a failed component, never the router's."""
    started_at = datetime.now(UTC)
    started = time.monotonic()
    emit(ProgressEvent(ROUTER_NAME, agent, "started"))
    try:
        result = await agent_flow(**inputs, refresh=refresh, context=request)
    except Exception as exc:  # a branch may fail for any reason; the others must still finish
        error = one_line(exc)[:500]
        emit(ProgressEvent(ROUTER_NAME, agent, "failed", error))
        return Component(
            agent=agent,
            content_type=content_type,
            status="failed",
            name=agent,
            started_at=started_at,
            seconds=time.monotonic() - started,
            error=error,
        )
    assert isinstance(result, AgentResult)
    emit(ProgressEvent(ROUTER_NAME, agent, "done", result.location))
    usage = [s.usage for s in result.steps if not s.cached]
    return Component(
        agent=agent,
        content_type=result.content_type,
        status="completed",
        name=result.title,
        flow_run_id=result.flow_run_id,
        content_id=result.content_id,
        title=result.title,
        location=result.location,
        files=result.files,
        started_at=started_at,
        seconds=time.monotonic() - started,
        model_calls=result.model_calls,
        tokens=sum(u.total_tokens for u in usage),
        cost=sum(u.cost for u in usage),
    )


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
    """`completed` when no branch failed, `failed` when every one did, else `partly failed`."""
    failed = sum(1 for c in components if c.status == "failed")
    return "completed" if not failed else "failed" if failed == len(components) else "partly failed"
