"""Run agents from Python.

    from agentflows import run_agent
    result = run_agent("ebook", topic="Photosynthesis", chapters=3)
    print(result.location, result.model_calls)

Inputs are checked against the agent's declared inputs before anything runs;
a bad value raises `InputError` naming the field. A run rides out a short outage
of Prefect's API or its database; a longer one raises `PrefectAPIError`, one
sentence (`agentflows.tasks.prefect_api`). `run_agent_async` is the same for code
that already runs an event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from prefect import Flow

from agentflows.catalog import load_agents
from agentflows.compiler import compiled
from agentflows.inputs import validate_inputs
from agentflows.tasks.artifacts import AgentResult
from agentflows.tasks.prefect_api import prefect_clients, riding_out_outages

T = TypeVar("T")


def agent_flow(name: str, *, definitions: Path | str | None = None) -> Flow[..., Any]:
    """The Prefect flow of agent `name`, compiled from the definitions folder."""
    return compiled(load_agents(definitions)[name])


async def run_agent_async(
    name: str,
    /,
    *,
    refresh: bool = False,
    review: bool | None = None,
    definitions: Path | str | None = None,
    **inputs: Any,
) -> AgentResult:
    """Run agent `name` with `inputs` and return what it made.

    `review=True` pauses after decide until an editor approves the plan (`agentflows.reviews.approve`);
    a rejection raises `ReviewRejected`. None follows the agent's `review.default`.
    """
    agent = load_agents(definitions)[name]
    values = validate_inputs(agent.definition, inputs)
    if review is not None:
        values["review"] = review
    # One sync and one async Prefect client for the run, not one per use; state changes ride out a short outage.
    with riding_out_outages():
        async with prefect_clients():
            result = await compiled(agent)(**values, refresh=refresh)
    assert isinstance(result, AgentResult)
    return result


def run_agent(
    name: str,
    /,
    *,
    refresh: bool = False,
    review: bool | None = None,
    definitions: Path | str | None = None,
    **inputs: Any,
) -> AgentResult:
    """Run agent `name` with `inputs` and return what it made (blocking; `review` as in `run_agent_async`).

    Inside a running event loop, await `run_agent_async` instead.
    """
    return run_blocking(
        lambda: run_agent_async(name, refresh=refresh, review=review, definitions=definitions, **inputs), "run_agent"
    )


def run_blocking(start: Callable[[], Coroutine[Any, Any, T]], caller: str) -> T:
    """Run the coroutine `start()` makes to its end: `caller`, the blocking twin of `<caller>_async`.

    The event loop starts outside any `except` block, so a run's failure shows its
    own traceback, not one raised "during handling" of "no running event loop".
    """
    if _in_event_loop():
        raise RuntimeError(f"{caller} was called inside a running event loop; await {caller}_async(...) instead")
    return asyncio.run(start())


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
