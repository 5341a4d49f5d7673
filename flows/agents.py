"""Every agent in the definitions folder, the router and the rework flow, as module-level flows.

Deployments point at these names (`agentflows.agents:ebook`, `agentflows.agents:router`);
Prefect imports this module and reads each flow's parameter schema from its
signature. A new YAML file in the definitions folder adds a name here, and a
content type to the router, with no code change.
"""

from __future__ import annotations

from typing import Any

from prefect import Flow

from agentflows.catalog import load_agents
from agentflows.compiler import compile_agent
from agentflows.definition import ROUTER_NAME
from agentflows.rework import compile_rework
from agentflows.router import compile_router
from agentflows.tasks.manifest import REWORK_NAME

_catalog = load_agents()
FLOWS: dict[str, Flow[..., Any]] = {name: compile_agent(agent) for name, agent in _catalog.items()}
FLOWS[ROUTER_NAME] = compile_router(_catalog)
FLOWS[REWORK_NAME] = compile_rework(_catalog)
globals().update(FLOWS)

__all__ = sorted(FLOWS)  # pyright: ignore[reportUnsupportedDunderAll]
