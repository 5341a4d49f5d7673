"""`agentflows serve`: every agent and the router as deployments served from this one process.

The quickest way to run agentflows from the Prefect UI without a work pool: each
flow of `agentflows.agents` becomes a deployment named `serve` (e.g. `ebook/serve`),
created from its module entrypoint (`agentflows.agents:ebook`), and this process
runs the flow runs the UI starts until it is stopped. A new YAML agent is served
with no code change.
"""

from __future__ import annotations

from collections.abc import Iterable

from prefect import serve
from prefect.deployments.runner import RunnerDeployment

FLOWS_MODULE = "agentflows.agents"
DEPLOYMENT_NAME = "serve"


def served_deployments(flow_names: Iterable[str]) -> list[RunnerDeployment]:
    """One deployment per named flow of `agentflows.agents`, from its module entrypoint."""
    return [
        RunnerDeployment.from_entrypoint(
            entrypoint=f"{FLOWS_MODULE}:{name}", name=DEPLOYMENT_NAME, tags=["agentflows", "served"]
        )
        for name in flow_names
    ]


def serve_all(flow_names: Iterable[str], limit: int | None = None) -> None:
    """Serve the named flows (every agent and the router) until interrupted."""
    serve(*served_deployments(flow_names), limit=limit)
