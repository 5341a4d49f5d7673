"""agentflows: YAML agent definitions compiled into Prefect flows.

    from flows import run_agent, load_agents
    load_agents()                       # every definition, validated
    run_agent("ebook", topic="Tides")   # AgentResult: ids, location, model calls
    route("a lesson on tides with a quiz")  # Manifest: one component per agent the request asks for

Names are imported on first use, so `agentflows validate` does not pay for
importing Prefect.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flows.api import agent_flow, run_agent, run_agent_async
    from flows.catalog import AgentCatalog, load_agents
    from flows.errors import AgentNotFound, DefinitionError, InputError, RoutingError
    from flows.router import route, route_async
    from tasks.artifacts import AgentResult
    from tasks.manifest import Manifest

_EXPORTS = {
    "run_agent": "flows.api",
    "run_agent_async": "flows.api",
    "agent_flow": "flows.api",
    "load_agents": "flows.catalog",
    "AgentCatalog": "flows.catalog",
    "AgentNotFound": "flows.errors",
    "DefinitionError": "flows.errors",
    "InputError": "flows.errors",
    "AgentResult": "tasks.artifacts",
    "route": "flows.router",
    "route_async": "flows.router",
    "Manifest": "tasks.manifest",
    "RoutingError": "flows.errors",
}
__all__ = [
    "AgentCatalog",
    "AgentNotFound",
    "AgentResult",
    "DefinitionError",
    "InputError",
    "Manifest",
    "RoutingError",
    "agent_flow",
    "load_agents",
    "route",
    "route_async",
    "run_agent",
    "run_agent_async",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'flows' has no attribute {name!r}")
