"""The router's result: one manifest of the components a request produced.

`Manifest` is fixed and versioned (`MANIFEST_VERSION`) like the step artifacts:
it is persisted as a Prefect result and stored as content (`manifest_content`:
`manifest.json` and a Markdown summary); `table_row` is one line of the table
shown on the router's run page. Components are in dependency order: each after
the components it `depends_on` (the `edges`). Pure: no I/O.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

from pydantic import Field, JsonValue

from agentflows.tasks.artifacts import BuiltContent, BuiltFile, ContentType, Frozen, Provenance

ROUTER_NAME = "router"
"""The router flow's name: the agent its manifests are made by, which no agent definition may take."""
REWORK_NAME = "rework"
"""The flow that reworks a stored content from one of its steps; no agent definition may take the name either."""
MANIFEST_VERSION = 2
"""2: components record `depends_on`, `builds_on`, `finished_at` and status `skipped`; the manifest its `edges`."""
RunStatus = Literal["completed", "partly failed", "failed"]
ComponentStatus = Literal["completed", "failed", "skipped"]


class Edge(Frozen):
    """`dependent` ran after `upstream`: its definition `uses` it, or the caller asked (`after`)."""

    upstream: str
    dependent: str
    source: Literal["uses", "after"]


class Component(Frozen):
    """One branch of a routed request: an agent's run and what it made (or why it failed)."""

    agent: str
    content_type: ContentType
    status: ComponentStatus
    """`skipped`: an upstream it depends on did not complete, so it did not run (`error` says which)."""
    name: str
    """Display name: agent and title, e.g. `quiz: The water cycle`; unique within the manifest
    (a content-hash suffix settles clashes)."""
    flow_run_id: str | None = None
    """The branch's own sub-flow run: its namespace."""
    content_id: str | None = None
    title: str | None = None
    location: str | None = None
    files: dict[str, str] = Field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    """Agents this one ran after."""
    builds_on: dict[str, str] = Field(default_factory=dict)
    """Content id of each upstream result it used, by agent."""
    started_at: datetime | None = None
    """When its sub-flow started (None when skipped)."""
    finished_at: datetime | None = None
    seconds: float = 0.0
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
    """In dependency order."""
    edges: tuple[Edge, ...] = ()
    status: RunStatus
    router_run_id: str | None = None
    seconds: float
    content_id: str | None = None
    """Where the manifest itself is stored (set after it is saved)."""
    location: str | None = None
    problems: tuple[str, ...] = ()
    """What the consistency check after the merge found wrong (none when every dependent used the version its
    upstream made, after that upstream finished)."""

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

    def skipped(self) -> list[Component]:
        return [c for c in self.components if c.status == "skipped"]

    def component(self, agent: str) -> Component:
        """The component of `agent`."""
        for c in self.components:
            if c.agent == agent:
                return c
        raise KeyError(f"the manifest has no component of agent {agent!r}")


def manifest_content(manifest: Manifest) -> BuiltContent:
    """The manifest as storable content: `manifest.json` and a Markdown summary."""
    data = manifest.model_dump(mode="json", exclude={"content_id", "location"})
    rows = "\n".join(
        f"| {c.name.replace('|', '/')} | {c.agent} | {', '.join(c.depends_on) or '—'} | {c.status} | "
        f"{c.seconds:.1f} s | {c.model_calls} | "
        f"{f'[open]({c.location})' if c.location else (c.error or '').replace('|', '/')} |"
        for c in manifest.components
    )
    problems = "".join(f"\n- {p}" for p in manifest.problems)
    summary = (
        f"# {manifest.request}\n\nRouted by {manifest.route}; {manifest.status}.\n\n"
        "| component | agent | after | status | time | model calls | output |\n|---|---|---|---|---|---|---|\n"
        f"{rows}\n" + (f"\nInconsistent:{problems}\n" if problems else "")
    )
    return BuiltContent(
        content_type=ContentType.mixed,
        title=f"Manifest: {manifest.request[:120]}",
        primary="index.md",
        files=(
            BuiltFile(path="index.md", media_type="text/markdown", text=summary),
            BuiltFile(path="manifest.json", media_type="application/json", text=json.dumps(data, indent=2)),
        ),
        metadata={
            "manifest_version": manifest.version,
            "components": len(manifest.components),
            "status": manifest.status,
        },
        provenance=Provenance(agent=ROUTER_NAME, agent_version=str(manifest.version), step="build"),
    ).sealed()


def table_row(c: Component, uri: str | None) -> dict[str, JsonValue]:
    """One row of the components table on the router's run page; `uri` is where a person opens it."""
    return {
        "component": c.name,
        "agent": c.agent,
        "type": c.content_type.value,
        "status": c.status,
        "after": ", ".join(c.depends_on) or None,
        "id": c.content_id,
        "uri": uri,
        "started": c.started_at.isoformat(timespec="seconds") if c.started_at else None,
        "seconds": round(c.seconds, 2),
        "model calls": c.model_calls,
        "tokens": c.tokens,
        "cost": round(c.cost, 6),
        "error": c.error,
        "warnings": "; ".join(c.warnings) or None,
    }
