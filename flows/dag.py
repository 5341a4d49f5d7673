"""Run a routed request's branches as a dependency graph, then check the merged result.

    ready branches start at once ──► each dependent starts as soon as its own upstreams finish
                                     (not in waves) ──► a failed upstream skips its dependents
                                     ──► components in dependency order ──► consistency check

`run_graph` starts one asyncio task per agent, in dependency order; each waits
only for the tasks of its upstreams, so independent branches overlap and a
dependent never waits for a branch it does not depend on. `consistency_problems`
is the check after the merge (seed 001 §2.2): every dependent that completed ran
after its upstreams completed and used the very version they made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence

from agentflows.branches import BranchRun
from agentflows.dependencies import DependencyGraph
from agentflows.tasks.manifest import Component, Edge

StartBranch = Callable[[str, Mapping[str, BranchRun]], Awaitable[BranchRun]]
"""Runs one agent given its finished upstream branches, by agent."""
SkipBranch = Callable[[str, Mapping[str, BranchRun]], BranchRun]
"""The branch of an agent one of whose upstreams did not complete."""


async def run_graph(graph: DependencyGraph, start: StartBranch, skip: SkipBranch) -> list[BranchRun]:
    """Run every agent of `graph` as soon as its upstreams are done; the runs in dependency order."""
    runs: dict[str, asyncio.Task[BranchRun]] = {}

    async def branch(agent: str) -> BranchRun:
        upstream = {name: await runs[name] for name in graph.upstreams(agent)}
        if any(run.component.status != "completed" for run in upstream.values()):
            return skip(agent, upstream)
        return await start(agent, upstream)

    async with asyncio.TaskGroup() as group:  # an error of the router itself cancels every branch
        for agent in graph.order():
            runs[agent] = group.create_task(branch(agent), name=f"branch {agent}")
    return [runs[agent].result() for agent in graph.order()]


def consistency_problems(components: Sequence[Component], edges: Sequence[Edge]) -> list[str]:
    """What is wrong with the merged components, given the edges they ran along (empty when all is well)."""
    by_agent = {c.agent: c for c in components}
    problems = []
    for edge in edges:
        up, down = by_agent.get(edge.upstream), by_agent.get(edge.dependent)
        if up is None or down is None:
            problems.append(f"edge {edge.upstream} → {edge.dependent} names an agent with no component")
        elif down.status == "completed":
            problems += _completed_problems(up, down, edge)
    for c in components:
        upstream = [by_agent[a] for a in c.depends_on if a in by_agent]
        if c.status == "skipped" and all(u.status == "completed" for u in upstream):
            problems.append(f"{c.agent} was skipped, but every agent it depends on completed")
        if tuple(sorted(c.depends_on)) != tuple(sorted(e.upstream for e in edges if e.dependent == c.agent)):
            problems.append(f"{c.agent} depends on {', '.join(c.depends_on) or 'nothing'}, unlike the edges")
    return problems


def _completed_problems(up: Component, down: Component, edge: Edge) -> list[str]:
    if up.status != "completed":
        return [f"{down.agent} completed, but {up.agent}, which it depends on, {up.status}"]
    if down.started_at and up.finished_at and down.started_at < up.finished_at:
        return [f"{down.agent} started before {up.agent}, which it depends on, finished"]
    used = down.builds_on.get(up.agent)
    if edge.source == "uses" and used != up.content_id:
        got = f"content {used}" if used else "nothing"
        return [f"{down.agent} used {got} of {up.agent}, but {up.agent} made {up.content_id}"]
    return []
