"""Errors of the local stack (`agentflows up` / `agentflows down`).

    agentflows.tasks.errors.AgentflowsError
    └── StackError              a Prefect server, deployments or worker could not be started or stopped
        └── PrefectUnreachable  the configured Prefect API does not answer

`agentflows.errors` draws the whole tree of agentflows errors.
"""

from __future__ import annotations

from agentflows.tasks.errors import AgentflowsError


class StackError(AgentflowsError):
    """A Prefect server (the local stack's, a CLI run's temporary one), deployment or worker failed to start or stop."""


class PrefectUnreachable(StackError):
    """The Prefect API a run should use does not answer."""
