"""The router's result: one manifest of the components a request produced.

`Manifest` is fixed and versioned (`MANIFEST_VERSION`) like the step artifacts:
it is persisted as a Prefect result and stored as content (`manifest.json`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, JsonValue

from agentflows.tasks.artifacts import ContentType, Frozen

MANIFEST_VERSION = 1
RunStatus = Literal["completed", "partly failed", "failed"]


class Component(Frozen):
    """One branch of a routed request: an agent's run and what it made (or why it failed)."""

    agent: str
    content_type: ContentType
    status: Literal["completed", "failed"]
    name: str
    """Display name, unique within the manifest (a content-hash suffix settles clashes)."""
    flow_run_id: str | None = None
    """The branch's own sub-flow run: its namespace."""
    content_id: str | None = None
    title: str | None = None
    location: str | None = None
    files: dict[str, str] = Field(default_factory=dict)
    started_at: datetime
    seconds: float
    model_calls: int = 0
    model_seconds: float = 0.0
    """Time the branch's model calls took, summed."""
    tokens: int = 0
    cost: float = 0.0
    """Model calls, tokens and cost of the branch as spent, also when it failed."""
    error: str | None = None
    failed_step: str | None = None
    """The call label of the step that failed (e.g. `quiz/generate/02-…`); its answers are on the branch's run."""
    warnings: tuple[str, ...] = ()
    """What a reader should know about a completed branch, e.g. items its fan-out dropped."""


class Manifest(Frozen):
    """Everything one routed request produced."""

    version: int = MANIFEST_VERSION
    request: str
    route: Literal["explicit", "rules", "classifier"]
    """How the agents were chosen."""
    evidence: dict[str, list[str]] = Field(default_factory=dict)
    """Per agent, the keywords or patterns (or `classifier`) that selected it."""
    parameters: dict[str, dict[str, JsonValue]] = Field(default_factory=dict)
    """The inputs each agent ran with."""
    components: tuple[Component, ...]
    status: RunStatus
    router_run_id: str | None = None
    seconds: float
    content_id: str | None = None
    """Where the manifest itself is stored (set after it is saved)."""
    location: str | None = None

    @property
    def model_calls(self) -> int:
        return sum(c.model_calls for c in self.components)

    @property
    def tokens(self) -> int:
        return sum(c.tokens for c in self.components)

    @property
    def cost(self) -> float:
        return sum(c.cost for c in self.components)

    def failed(self) -> list[Component]:
        return [c for c in self.components if c.status == "failed"]
