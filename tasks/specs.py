"""What each step task is given: an immutable, JSON-serializable spec.

The compiler turns a definition into one spec per step. A spec holds exactly
what its step depends on (agent name and declared version, the source of every
template the step renders, model settings, output schema, code and artifact
schema versions) so that Prefect's `INPUTS` cache policy, which hashes a task's
arguments, gives each step the cache key the design asks for: editing a prompt
changes only the specs (and so the keys) of the steps that render it.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from agentflows.tasks.artifacts import SCHEMA_VERSION, ContentType, Handoff, Step
from agentflows.tasks.checks import CheckSpec
from agentflows.tasks.llm.settings import ModelSettings


def _code_version() -> str:
    try:
        return f"{version('agentflows')}/s{SCHEMA_VERSION}"
    except PackageNotFoundError:
        return f"source/s{SCHEMA_VERSION}"


CODE_VERSION = _code_version()
"""agentflows release and artifact schema version; a new release starts a new cache."""


class RunContext(BaseModel):
    """The run's context layer, available to templates as `context`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request: str = ""
    """The free-text request that started the run (empty when an agent is run directly)."""
    upstream: dict[str, Handoff] = Field(default_factory=dict)
    """Results of the agents this run builds on, by agent name (templates see them under their `uses` names,
    not under `context`); their checksums are part of every model step's cache key."""


class PlanRevision(BaseModel):
    """What `decide` is given to plan again after an editor asked for changes (`revise`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    round: int
    """Which plan of the run this one will be: 2 for the first revision."""
    notes: str
    """What the editor asked for."""
    previous: dict[str, JsonValue]
    """The plan the editor read (title, items, fields), as templates see a plan."""
    parent: str
    """Checksum of the editor's decision that asked for it: the new plan's parent in the lineage."""


class StepSpec(BaseModel):
    """Common part of every step spec."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent: dict[str, str]
    """`name`, `version`, `description` and `content_type` of the agent (the `agent` template variable)."""
    step: Step
    templates: dict[str, str] = Field(default_factory=dict)
    """Source of every template this step renders, by name."""
    code_version: str = CODE_VERSION

    @property
    def agent_name(self) -> str:
        return self.agent["name"]

    @property
    def agent_version(self) -> str:
        return self.agent["version"]


class ModelStepSpec(StepSpec):
    """A step that renders a prompt and calls the model."""

    system: tuple[str, ...]
    """Templates of the system prompt, in layer order."""
    prompt: str
    """Template of the user message."""
    model: ModelSettings
    reasks: int = 2
    """How many times to ask again, with the problems, when an answer does not fit the schema."""
    on_invalid: Literal["fail", "degrade"] = "fail"
    degrade_field: str | None = None
    """The one text field a degraded answer is kept in (generate steps that allow degrading)."""
    timeout_seconds: float | None = None
    """Longest the step's model calls may take together, re-asks and retries included; None: no limit."""
    append_knowledge: bool = False
    """Whether the passages the step retrieved are appended to its user message, because none of its
    templates places the `knowledge` variable itself."""
    checks: tuple[CheckSpec, ...] = ()
    """The step's declared checks: every answer must pass them (a failing one is re-asked with its message)."""
    uses: dict[str, str] = Field(default_factory=dict)
    """The template variable of each agent this one builds on, by agent name."""


class DecideSpec(ModelStepSpec):
    """What `decide` needs: the plan's field and item schemas, the item count and the builder's plan checks."""

    plan_fields: dict[str, Any]
    """JSON Schema properties of the plan-level fields."""
    plan_required: tuple[str, ...]
    item_schema: dict[str, Any]
    """JSON Schema of one plan item (title included)."""
    items_min: int
    items_max: int
    items_count: int | str | None = None
    items_totals: dict[str, float | str] = Field(default_factory=dict)
    """What each declared item field adds up to (a number or an expression over the inputs)."""
    builder: str = "document"
    """The builder whose plan checks (e.g. safe, distinct file paths) the plan must pass."""


class GenerateSpec(ModelStepSpec):
    """What `generate` needs: the draft schema and the checks of the builder that reads it."""

    draft_schema: dict[str, Any]
    builder: str
    """The builder whose draft checks every draft must pass."""


class BuildSpec(StepSpec):
    """What `build` needs: the builder, its layout and the content type."""

    builder: str
    layout: str
    content_type: ContentType
