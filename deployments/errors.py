"""Errors of the local stack (`agentflows up` / `agentflows down`).

    agentflows.tasks.errors.AgentflowsError
    └── StackError      the local Prefect server, deployments or worker could not be started or stopped

`agentflows.errors` draws the whole tree of agentflows errors.
"""

from __future__ import annotations

from agentflows.tasks.errors import AgentflowsError


class StackError(AgentflowsError):
    """The local stack could not be started or stopped."""
