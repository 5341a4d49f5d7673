"""Typed artifacts passed between the steps decide → generate → build → save.

These classes are fixed and importable on purpose: Prefect persists task
results as JSON and re-imports them by class path, so a cached `Plan` must be
the same class in every process. What varies per agent (the fields its YAML
declares) lives in the `fields` payload and is validated against that agent's
schema before an artifact is created.

Each artifact is immutable and carries its provenance and a checksum; the
checksum of the parent artifact links the chain request → plan → drafts →
built content → saved content (seed 001 §3). A finished run's `Handoff` is what
an agent that builds on it receives: its checksum is part of that agent's cache keys.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue

SCHEMA_VERSION = 3
"""Version of the artifact classes; part of every cache key."""

Step = Literal["decide", "generate", "build", "save"]


class ContentType(StrEnum):
    """The kinds of content an agent can produce."""

    text = "text"
    code = "code"
    chart = "chart"
    file = "file"
    interactive = "interactive"
    mixed = "mixed"


class Frozen(BaseModel):
    """Base of the artifact classes: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Usage(Frozen):
    """Model usage of one step (summed over its calls)."""

    calls: int = 0
    """Model calls made."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    """Cost of the calls, from the provider's configured prices per 1k tokens (0 when none are set)."""
    latency_seconds: float = 0.0
    """Time spent waiting for the model, summed over the calls."""

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            calls=self.calls + other.calls,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost=self.cost + other.cost,
            latency_seconds=self.latency_seconds + other.latency_seconds,
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Attempt(Frozen):
    """One answer a model gave for a step, and what became of it."""

    model: str
    raw: str
    """The answer as received (cut to its first 2,000 characters)."""
    method: str | None = None
    """How its JSON was read: `strict`, `extracted` or `repaired` (prefixed `reasked+` after a re-ask);
    `degraded` when kept as plain text; None when the answer was unusable."""
    error: str | None = None
    """Why it could not be used, when it could not."""
    finish_reason: str = ""
    failed_call: bool = False
    """The call itself failed (timed out, 5xx, a broken stream): `raw` is what arrived before it did."""
    prompt: str = ""
    """The user message it answers: the step's rendered prompt (first attempt) or the problems of the
    answer before (a re-ask), without the JSON Schema instruction; its first 8,000 characters."""


class AttemptCounts(Frozen):
    """How a step's answers went: what `agentflows show` and the benchmarks count."""

    reasks: int = 0
    """Answers asked for again after one that could not be used (a cut-off one included)."""
    repairs: int = 0
    """Answers used after extraction or repair rather than read as strict JSON."""
    degrades: int = 0
    """Answers kept as plain text because none fit the schema."""
    failed_calls: int = 0
    """Calls that failed (timed out, 5xx) and were tried again or given up."""

    @classmethod
    def of(cls, attempts: tuple[Attempt, ...] | list[Attempt]) -> AttemptCounts:
        read = [a for a in attempts if not a.failed_call and a.method != "degraded"]
        methods = [(a.method or "").removeprefix("reasked+") for a in read]
        return cls(
            reasks=max(0, len(read) - 1),
            repairs=sum(1 for m in methods if m in ("extracted", "repaired")),
            degrades=sum(1 for a in attempts if a.method == "degraded"),
            failed_calls=sum(1 for a in attempts if a.failed_call),
        )

    def __add__(self, other: AttemptCounts) -> AttemptCounts:
        return AttemptCounts(
            reasks=self.reasks + other.reasks,
            repairs=self.repairs + other.repairs,
            degrades=self.degrades + other.degrades,
            failed_calls=self.failed_calls + other.failed_calls,
        )


class KnowledgeRef(Frozen):
    """One passage of a knowledge file that a step was given: which file, which section, which text."""

    source: str
    """The file: its path in the definitions folder (`knowledge/lesson_plan/style.md`), or its URI."""
    heading: str
    """The headings above the passage, outermost first, joined by ` › ` (empty before the first heading)."""
    hash: str
    """sha256 of the passage's heading and text."""


class Provenance(Frozen):
    """Where an artifact came from: enough to trace it to its prompts and model."""

    agent: str
    agent_version: str
    step: Step
    template_hashes: dict[str, str] = Field(default_factory=dict)
    """sha256 of every template the step rendered, includes too, by template name."""
    provider: str | None = None
    model: str | None = None
    offline: bool = False
    """True when the built-in offline provider wrote it (no language model was called)."""
    usage: Usage = Usage()
    parent_checksum: str | None = None
    schema_version: int = SCHEMA_VERSION
    attempts: tuple[Attempt, ...] = ()
    """Every answer the model gave for this artifact, in order (re-asks included)."""
    warnings: tuple[str, ...] = ()
    """What a reader should know, e.g. that a draft was degraded to plain text."""
    knowledge: tuple[KnowledgeRef, ...] = ()
    """The knowledge passages the step's prompt was given, in the order it was given them."""


class Artifact(Frozen):
    """Base of the step artifacts: provenance plus a checksum of everything else."""

    provenance: Provenance
    checksum: str = ""

    def sealed(self: A) -> A:
        """Return a copy whose `checksum` covers all its other fields."""
        return self.model_copy(update={"checksum": checksum_of(self)})


A = TypeVar("A", bound=Artifact)


class PlanItem(Frozen):
    """One unit of work the plan asks `generate` to write (a chapter, a question, a file)."""

    key: str
    """Stable, file-name-safe identifier, unique within the plan."""
    title: str
    fields: dict[str, JsonValue] = Field(default_factory=dict)

    def view(self) -> dict[str, JsonValue]:
        """The item as templates see it: its fields beside `key` and `title`."""
        return {**self.fields, "key": self.key, "title": self.title}


class Plan(Artifact):
    """What `decide` returns: the outline the drafts follow."""

    title: str
    items: tuple[PlanItem, ...]
    fields: dict[str, JsonValue] = Field(default_factory=dict)

    def view(self) -> dict[str, JsonValue]:
        """The plan as templates see it: `title`, `items` and the declared fields side by side."""
        return {**self.fields, "title": self.title, "items": [item.view() for item in self.items]}

    def item(self, key: str) -> PlanItem:
        """Return the item with `key`."""
        for item in self.items:
            if item.key == key:
                return item
        raise KeyError(f"plan {self.title!r} has no item {key!r}")


class Draft(Artifact):
    """What `generate` returns for one plan item."""

    item_key: str
    title: str
    fields: dict[str, JsonValue]


class BuiltFile(Frozen):
    """One file of built content, as text."""

    path: str
    """Relative POSIX path inside the content, e.g. `index.html` or `app/main.py`."""
    media_type: str
    text: str


class BuiltContent(Artifact):
    """What `build` returns: the finished content, ready to be stored."""

    content_type: ContentType
    title: str
    primary: str
    """Path of the file a reader opens first."""
    files: tuple[BuiltFile, ...]
    metadata: dict[str, JsonValue] = Field(default_factory=dict)

    def file(self, path: str) -> BuiltFile:
        """Return the file at `path`."""
        for built in self.files:
            if built.path == path:
                return built
        raise KeyError(f"content {self.title!r} has no file {path!r}")


class SavedContent(Artifact):
    """What `save` returns: where the content now lives."""

    content_id: str
    content_type: ContentType
    title: str
    location: str
    """URI of the primary file."""
    files: dict[str, str]
    """URI of every stored file, by its path inside the content."""


class Handoff(Frozen):
    """A finished run as an agent that builds on it sees it: its plan, drafts and text, and which version.

    It crosses flow runs (a router passes it to the dependent's flow as a parameter), so it is
    a fixed class; `view()` is the template variable the dependent's `uses.<agent>.as` names.
    """

    agent: str
    agent_version: str
    content_id: str
    checksum: str
    """Checksum of the built content: the version the dependent used, and part of its cache keys."""
    title: str
    location: str
    inputs: dict[str, JsonValue] = Field(default_factory=dict)
    fields: dict[str, JsonValue] = Field(default_factory=dict)
    """The plan's own fields (a lesson's `objectives`)."""
    items: tuple[dict[str, JsonValue], ...] = ()
    """Each plan item with its draft's fields."""
    text: str = ""
    """The built content's Markdown (else its primary file), cut to `HANDOFF_TEXT_CHARS`."""

    def view(self) -> dict[str, JsonValue]:
        """What templates see: the plan fields beside `title`, `items`, `text`, `inputs`, `agent`, `content_id`,
        `location` (which win over a plan field of the same name)."""
        fixed: dict[str, JsonValue] = {
            "agent": self.agent,
            "content_id": self.content_id,
            "title": self.title,
            "items": list(self.items),
            "text": self.text,
            "inputs": self.inputs,
            "location": self.location,
        }
        return {**self.fields, **fixed}


HANDOFF_KEYS = frozenset({"agent", "content_id", "title", "items", "text", "inputs", "location"})
"""Keys of every `Handoff.view()`, besides the upstream plan's own fields."""
HANDOFF_TEXT_CHARS = 20_000


class StepReport(Frozen):
    """How one task of a run went: served from cache or run, and its model usage."""

    step: Step
    label: str
    cached: bool
    usage: Usage = Usage()
    warnings: tuple[str, ...] = ()


class ReviewRecord(Frozen):
    """What a person decided about a run: an editor's review of its plan, or the rework of a stored content."""

    decision: Literal["approve", "revise", "reject", "rework"]
    notes: str = ""
    reviewer: str = ""
    """Who decided, as they gave it: Prefect does not record who resumed a run."""
    decided_at: datetime
    """When the run received the decision."""
    round: int = 1
    """Which plan of the run it was about: 1 for decide's first, one more for each revise."""
    plan_checksum: str
    """The plan the decision was about (for a rework: the stored plan it started from)."""
    approved_checksum: str | None = None
    """The plan the drafts were written from, after the editor's edits (approvals and reworks)."""
    edits: tuple[str, ...] = ()
    """The changes made to the plan (or to the inputs, for a rework), one line each."""
    automatic: bool = False
    """True when no person decided: the review timeout applied the agent's declared outcome."""
    reworked_from: str | None = None
    """The stored content a rework started from."""
    from_step: Literal["generate", "build"] | None = None
    """The step a rework ran from."""


class AgentResult(Frozen):
    """What an agent's flow returns."""

    agent: str
    agent_version: str
    flow_run_id: str | None
    content_id: str
    content_type: ContentType
    title: str
    location: str
    files: dict[str, str]
    offline: bool
    steps: tuple[StepReport, ...]
    builds_on: dict[str, str] = Field(default_factory=dict)
    """Content id of each upstream result this run used, by agent."""
    handoff: Handoff | None = None
    """What agents that build on this one receive."""
    reviews: tuple[ReviewRecord, ...] = ()
    """The editor's decisions on this run's plan, in order, or the rework it was (empty for a plain run)."""

    @property
    def model_calls(self) -> int:
        """Model calls made by this run (cached steps make none)."""
        return sum(s.usage.calls for s in self.steps if not s.cached)

    @property
    def warnings(self) -> list[str]:
        """What a reader should know about this run's artifacts, e.g. a draft degraded to plain text."""
        return [f"{s.label}: {w}" for s in self.steps for w in s.warnings]

    @property
    def cache_hits(self) -> int:
        """Tasks of this run served from the cache."""
        return sum(1 for s in self.steps if s.cached)

    def summary(self) -> dict[str, JsonValue]:
        """The fields scripts want, as JSON-ready values (what `run --json` prints)."""
        data = self.model_dump(mode="json", exclude={"handoff"})
        data["model_calls"] = self.model_calls
        data["cache_hits"] = self.cache_hits
        data["warnings"] = self.warnings
        return data


def checksum_of(model: BaseModel) -> str:
    """sha256 of the canonical JSON of `model`, ignoring its own `checksum` field."""
    data = model.model_dump(mode="json", exclude={"checksum"})
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


def canonical_json(data: object) -> str:
    """JSON with sorted keys and no whitespace: equal data, equal text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
