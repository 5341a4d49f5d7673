"""`agentflows serve`: every agent and the router as deployments served from this one process.

The quickest way to run agentflows from the Prefect UI without a work pool: each
flow in `flows/agents.py` becomes a deployment named `serve` (e.g. `ebook/serve`),
created from its module-level entrypoint, and this process runs the flow runs
the UI starts until it is stopped. A new YAML agent is served with no code change.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from prefect import serve
from prefect.deployments.runner import RunnerDeployment

AGENTS_FILE = Path(str(resources.files("agentflows") / "agents.py"))
DEPLOYMENT_NAME = "serve"


def served_deployments() -> list[RunnerDeployment]:
    """One deployment per flow of `flows/agents.py`, from its module-level entrypoint."""
    from agentflows.agents import FLOWS

    return [
        RunnerDeployment.from_entrypoint(
            entrypoint=f"{AGENTS_FILE}:{name}",
            name=DEPLOYMENT_NAME,
            description=flow.description,
            tags=["agentflows", "served"],
        )
        for name, flow in FLOWS.items()
    ]


def serve_all(limit: int | None = None) -> None:
    """Serve every agent and the router until interrupted."""
    serve(*served_deployments(), limit=limit)
