"""agentflows: YAML agent definitions compiled into Prefect flows.

    from agentflows import run_agent, load_agents
    load_agents()                       # every definition, validated
    run_agent("ebook", topic="Tides")   # AgentResult: ids, location, model calls
    route("a lesson on tides with a quiz")  # Manifest: one component per agent the request asks for
    open_store().list()                 # what has been stored, newest first
    run_agent("ebook", topic="Tides", review=True)  # waits for approve(run_id) / reject(run_id)
    rework(content_id, from_step="generate", plan=edited)  # a new content from a stored one

Names are imported on first use, so `agentflows validate` does not pay for
importing Prefect.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentflows.api import agent_flow, run_agent, run_agent_async
    from agentflows.catalog import AgentCatalog, load_agents
    from agentflows.errors import AgentNotFound, DefinitionError, InputError, RoutingError
    from agentflows.reviews import approve, pending_reviews, reject, revise
    from agentflows.rework import rework
    from agentflows.router import route, route_async
    from agentflows.tasks.artifacts import AgentResult
    from agentflows.tasks.manifest import Manifest
    from agentflows.tasks.runtime import Runtime, open_store

_EXPORTS = {
    "run_agent": "agentflows.api",
    "run_agent_async": "agentflows.api",
    "agent_flow": "agentflows.api",
    "load_agents": "agentflows.catalog",
    "AgentCatalog": "agentflows.catalog",
    "AgentNotFound": "agentflows.errors",
    "DefinitionError": "agentflows.errors",
    "InputError": "agentflows.errors",
    "AgentResult": "agentflows.tasks.artifacts",
    "route": "agentflows.router",
    "route_async": "agentflows.router",
    "Manifest": "agentflows.tasks.manifest",
    "Runtime": "agentflows.tasks.runtime",
    "open_store": "agentflows.tasks.runtime",
    "RoutingError": "agentflows.errors",
    "approve": "agentflows.reviews",
    "reject": "agentflows.reviews",
    "revise": "agentflows.reviews",
    "pending_reviews": "agentflows.reviews",
    "rework": "agentflows.rework",
}
__all__ = [
    "AgentCatalog",
    "AgentNotFound",
    "AgentResult",
    "DefinitionError",
    "InputError",
    "Manifest",
    "RoutingError",
    "Runtime",
    "agent_flow",
    "approve",
    "load_agents",
    "open_store",
    "pending_reviews",
    "reject",
    "revise",
    "rework",
    "route",
    "route_async",
    "run_agent",
    "run_agent_async",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'agentflows' has no attribute {name!r}")
