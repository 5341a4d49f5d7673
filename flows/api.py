"""Run agents from Python.

    from flows import run_agent
    result = run_agent("ebook", topic="Photosynthesis", chapters=3)
    print(result.location, result.model_calls)

Inputs are checked against the agent's declared inputs before anything runs;
a bad value raises `InputError` naming the field. `run_agent_async` is the same
for code that already runs an event loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prefect import Flow

from flows.catalog import load_agents
from flows.compiler import compile_agent
from flows.inputs import validate_inputs
from flows.loader import LoadedAgent
from tasks.artifacts import AgentResult
from tasks.settings import current_settings


def agent_flow(name: str, *, definitions: Path | str | None = None) -> Flow[..., Any]:
    """The Prefect flow of agent `name`, compiled from the definitions folder."""
    return compiled(load_agents(definitions)[name])


_compiled: dict[tuple[str, str, str], Flow[..., Any]] = {}


def compiled(agent: LoadedAgent) -> Flow[..., Any]:
    """The flow of `agent`, compiled once per definition version and result storage."""
    key = (str(agent.file), agent.flow_version, str(current_settings().result_storage))
    if key not in _compiled:
        _compiled[key] = compile_agent(agent)
    return _compiled[key]


async def run_agent_async(
    name: str, /, *, refresh: bool = False, definitions: Path | str | None = None, **inputs: Any
) -> AgentResult:
    """Run agent `name` with `inputs` and return what it made."""
    agent = load_agents(definitions)[name]
    values = validate_inputs(agent.definition, inputs)
    result = await compiled(agent)(**values, refresh=refresh)
    assert isinstance(result, AgentResult)
    return result


def run_agent(
    name: str, /, *, refresh: bool = False, definitions: Path | str | None = None, **inputs: Any
) -> AgentResult:
    """Run agent `name` with `inputs` and return what it made (blocking).

    Inside a running event loop, await `run_agent_async` instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run_agent_async(name, refresh=refresh, definitions=definitions, **inputs))
    raise RuntimeError("run_agent was called inside a running event loop; await run_agent_async(...) instead")
