"""Every agent in the definitions folder as a module-level flow.

Deployments point at these names (`flows/agents.py:ebook`); Prefect imports
this module and reads each flow's parameter schema from its signature. A new
YAML file in the definitions folder adds a name here with no code change.
"""

from __future__ import annotations

from typing import Any

from prefect import Flow

from flows.catalog import load_agents
from flows.compiler import compile_agent

FLOWS: dict[str, Flow[..., Any]] = {name: compile_agent(agent) for name, agent in load_agents().items()}
globals().update(FLOWS)

__all__ = sorted(FLOWS)  # pyright: ignore[reportUnsupportedDunderAll]
