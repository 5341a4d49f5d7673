"""The schema of an agent definition: what a content author writes in YAML.

A definition is one YAML file in the definitions folder. Its fields, with
defaults, are the attributes below; every model forbids unknown keys so a typo
is reported instead of ignored. Template paths are relative to the definitions
folder; `agentflows.loader` checks that they exist, parse and use only variables a
step provides. The inputs and the fields the model returns are described in
`agentflows.fields`.

    name: ebook                    # identifier: lower case, digits, underscores
    version: "1.0.0"               # bump it to invalidate every cached step
    description: A multi-chapter e-book.
    content_type: text             # text | code | chart | file | interactive | mixed
    inputs:                        # become the flow's typed parameters
      topic: {type: string, description: What the book is about., min_length: 3}
    prompts:
      base: prompts/base/system.md     # layer 1: shared system prompt
      domain: prompts/ebook/domain.md  # layer 2: the agent's knowledge and voice
    steps:
      decide:   {prompt: prompts/ebook/decide.md, returns: {items: {count: "{{ inputs.chapters }}"}}}
        # optional on decide and generate: assertions the answer must pass (re-asked with the message)
        # checks: [{that: "plan.items | length > 1", message: "a book needs more than one chapter"}]
      generate: {prompt: prompts/ebook/generate.md, returns: {body: {type: string, format: markdown}}}
      build:    {layout: layouts/ebook.html}
    knowledge: {sources: [knowledge/ebook/], top_k: 4}   # optional: files retrieved into prompts
    uses:                          # agents this one can build on (see `UseSpec`)
      lesson_plan: {as: lesson}
    review: {default: false, timeout: 24h}   # optional: an editor reviews the plan
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, field_validator, model_validator

from agentflows.durations import parse_duration
from agentflows.fields import IDENTIFIER_PATTERN, FieldSpec, Identifier, InputSpec, RegularExpression, Spec
from agentflows.knowledge_spec import SOURCE_PATH_MEANING, SOURCE_PATH_PATTERN, KnowledgeSpec
from agentflows.review_spec import ReviewSpec
from agentflows.tasks.artifacts import ContentType
from agentflows.tasks.builders import DEFAULT_BUILDER, BuilderName
from agentflows.tasks.checks import CheckSpec
from agentflows.tasks.llm.settings import ModelSettings
from agentflows.tasks.manifest import REWORK_NAME, ROUTER_NAME

TEMPLATE_PATH_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*$"
VERSION_PATTERN = r"^\d+(\.\d+){0,2}([-+][0-9A-Za-z.\-]+)?$"
PATTERN_MEANINGS = {
    IDENTIFIER_PATTERN: "a name of lower case letters, digits and underscores that starts with a letter "
    "(at most 40 characters)",
    TEMPLATE_PATH_PATTERN: "a path relative to the definitions folder, such as prompts/ebook/decide.md "
    "(no '..', no leading '/')",
    VERSION_PATTERN: 'a version such as "1.0.0"',
    SOURCE_PATH_PATTERN: SOURCE_PATH_MEANING,
}
"""What each pattern of the schema allows, in words (for error messages)."""

TemplatePath = Annotated[str, StringConstraints(pattern=TEMPLATE_PATH_PATTERN)]
RESERVED_INPUTS = frozenset({"refresh", "context", "builds_on", "review"})
"""Names the compiled flow uses for its own parameters."""


def _not_reserved(name: str) -> str:
    """`name`, unless the flow uses it for a parameter of its own."""
    if name in RESERVED_INPUTS:
        reserved = ", ".join(sorted(RESERVED_INPUTS))
        raise ValueError(f"input name {name!r} is reserved for the flow; choose another (reserved: {reserved})")
    return name


InputName = Annotated[Identifier, AfterValidator(_not_reserved)]


class ModelSpec(Spec):
    """Model settings; on a step, only the keys given override the agent's."""

    provider: str | None = None
    """Provider: `default` (the environment decides), `offline`, `openai` (the AGENTFLOWS_LLM_* variables),
    or the name of a saved model provider block."""
    name: str | None = None
    """Model name sent to the provider; empty means the provider's default model."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    """Most tokens the model may write per call."""
    fallbacks: list[str] | None = None
    """Models tried in order when `name` keeps failing; default: the provider's fallback models."""

    def over(self, base: ModelSettings) -> ModelSettings:
        """These settings laid over `base`."""
        given = self.model_dump(exclude_none=True)
        if "name" in given:
            given["model"] = given.pop("name")
        if "fallbacks" in given:
            given["fallbacks"] = tuple(given["fallbacks"])
        return base.model_copy(update=given)


class RetrySpec(Spec):
    """How a step retries errors that may pass on a later attempt."""

    attempts: int = Field(default=2, ge=0, le=10)
    """Retries after the first try."""
    backoff_seconds: float = Field(default=2.0, ge=0, le=600)
    """Delay before the first retry; doubles on each retry after it."""
    jitter: float = Field(default=0.5, ge=0, le=1)
    """Random spread of each delay, as a fraction of it."""


class CacheSpec(Spec):
    """Whether step results are cached, and for how long."""

    enabled: bool = True
    expires_after: int | float | str | None = "30d"
    """How long a cached step stays valid: seconds or e.g. '12h', '7d'; null keeps it forever."""

    @field_validator("expires_after")
    @classmethod
    def _valid_duration(cls, value: int | float | str | None) -> int | float | str | None:
        if value is not None:
            parse_duration(value)
        return value

    @property
    def expiration(self) -> timedelta | None:
        return None if self.expires_after is None else parse_duration(self.expires_after)


class StepSettings(Spec):
    """Settings every step may override."""

    retries: RetrySpec | None = None
    """Retry settings of this step; default: the agent's `retries`."""
    timeout_seconds: float | None = Field(default=None, gt=0, le=86_400)
    """Longest this step may run, re-asks and retries of its model calls included; default: the agent's
    `timeout_seconds`."""


class ModelStep(StepSettings):
    """A step that calls the model."""

    prompt: TemplatePath
    """The step's prompt template (the user message)."""
    model: ModelSpec | None = None
    """Model settings for this step, over the agent's."""
    reasks: int = Field(default=2, ge=0, le=5)
    """How many times to ask the model again, quoting the problems, when an answer does not fit the schema."""
    on_invalid: Literal["fail", "degrade"] = "fail"
    """When no answer fits: fail the step, or (generate only, with one required text field) keep the last
    answer as plain text in that field, flagged with a warning."""
    checks: list[CheckSpec] = Field(default_factory=list)
    """Assertions on the answer that the schema cannot express (`that`, `message`, optional `each`); a failing
    one is re-asked with its message (`agentflows.tasks.checks`)."""


class ItemsSpec(Spec):
    """How many items the plan holds, and what each one carries besides its title."""

    count: int | str | None = None
    """Exact number of items: a number or an expression such as `{{ inputs.chapters }}`."""
    min: int = Field(default=1, ge=1, le=200)
    max: int = Field(default=20, ge=1, le=200)
    fields: dict[Identifier, FieldSpec] = Field(default_factory=dict)
    """Fields of each item besides `title` (a `title` entry here refines its description)."""
    totals: dict[Identifier, float | str] = Field(default_factory=dict)
    """What a number field adds up to over the items: a number or an expression such as
    `{{ inputs.duration_minutes }}`. A plan whose values do not add up is scaled to the total, each value in
    proportion and within its bounds, with a warning (`agentflows.tasks.totals`), before the step's checks."""

    @model_validator(mode="after")
    def _bounds(self) -> ItemsSpec:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
        if isinstance(self.count, int) and not self.min <= self.count <= self.max:
            raise ValueError(f"count {self.count} is outside min..max ({self.min}..{self.max})")
        return self


class PlanSpec(Spec):
    """What `decide` must return: a title, a list of items, and any fields declared here."""

    fields: dict[Identifier, FieldSpec] = Field(default_factory=dict)
    """Plan-level fields besides `title` and `items`."""
    items: ItemsSpec = ItemsSpec()


class DecideStep(ModelStep):
    """The step that plans the content."""

    returns: PlanSpec = PlanSpec()


class GenerateStep(ModelStep):
    """The step that writes one draft per plan item."""

    returns: dict[Identifier, FieldSpec] = Field(min_length=1)
    """Fields of each draft."""
    concurrency: int = Field(default=4, ge=1, le=64)
    """Most drafts written at the same time (never more than the model provider's concurrency)."""
    min_items_ok: int | None = Field(default=None, ge=1)
    """Fewest drafts that must succeed for the content to be built; drafts that still fail are left out,
    with a warning in the result and the manifest. Default: every draft must succeed."""


class BuildStep(StepSettings):
    """The step that assembles drafts into finished content (no model call)."""

    builder: BuilderName | None = None
    """How drafts are assembled; default follows the content type."""
    layout: TemplatePath | None = None
    """Jinja HTML layout; default `layouts/<builder>.html`."""


class Steps(Spec):
    """The four steps of the flow."""

    decide: DecideStep
    generate: GenerateStep
    build: BuildStep = BuildStep()
    save: StepSettings = StepSettings()


class PromptLayers(Spec):
    """The system prompt, composed in layers: base first, then the agent's domain."""

    base: TemplatePath = "prompts/base/system.md"
    """Shared base system prompt (layer 1)."""
    domain: TemplatePath
    """The agent's knowledge and voice (layer 2)."""


SizeWord = Literal["short", "medium", "long"]
"""The sizes a request can ask for; the router reads "brief", "quick" as short and "full", "in-depth" as long."""


class RoutingHints(Spec):
    """How the router recognises a request for this agent."""

    keywords: list[str] = Field(default_factory=list)
    """Words or phrases that, found in a request, select this agent."""
    patterns: list[RegularExpression] = Field(default_factory=list)
    """Regular expressions (case-insensitive) that select this agent."""
    examples: list[str] = Field(default_factory=list)
    """Example requests, shown to the model classifier."""
    subject_input: Identifier | None = None
    """The input that receives what a routed request is about (`a quiz on <subject>`);
    default: the first required string input."""
    extract: dict[Identifier, RegularExpression] = Field(default_factory=dict)
    """Inputs read from a routed request by a regular expression (case-insensitive) whose group
    `value`, or else its first group, is the value, e.g. `questions: '(\\d+) questions'`."""
    shared: dict[str, Identifier] = Field(default_factory=dict)
    """The router's shared parameters (audience, language, level) this agent takes under another
    input name, e.g. `level: grade_level`; a shared parameter with the same name as an input needs no entry."""
    sizes: dict[SizeWord, dict[Identifier, int | float | str]] = Field(default_factory=dict)
    """Inputs a size word in a routed request sets, when it stands before one of this agent's keywords
    ("a *short* e-book"), e.g. `short: {chapters: 1}`; numbers the request gives ("3 chapters") win."""


class UseSpec(Spec):
    """How an agent builds on another one's result when a request asks for both.

    The router runs the used agent first; this agent's prompt templates then get its
    result as the variable named by `as`: `title`, `items` (plan items with their draft
    fields), the plan's own fields, `text` (the built Markdown or primary file), `inputs`,
    `agent`, `content_id` and `location`. Run without it, the variable is none, so
    templates read it inside `{% if <as> %}`.
    """

    variable: Identifier | None = Field(default=None, alias="as")
    """Name of the template variable holding the used agent's result; default: that agent's name."""


class AgentDefinition(Spec):
    """One agent: what it makes, from which inputs, with which prompts and settings."""

    name: Identifier
    """Agent and flow name: lower case letters, digits and underscores."""

    @field_validator("name")
    @classmethod
    def _not_router(cls, name: str) -> str:
        if name in (ROUTER_NAME, REWORK_NAME):
            raise ValueError(f"the name {name!r} belongs to the {name} flow; choose another")
        return name

    version: Annotated[str, StringConstraints(pattern=VERSION_PATTERN)]
    """Version such as "1.0.0" (quoted); bumping it invalidates every cached step."""
    description: str = Field(min_length=1)
    """One or two sentences on what the agent makes."""
    content_type: ContentType
    """What the agent makes: text, code, chart, file, interactive or mixed."""
    inputs: dict[InputName, InputSpec] = Field(default_factory=dict)
    """The agent's inputs by name; each becomes a parameter of the flow."""
    prompts: PromptLayers
    """The system prompt's layers: `domain` (required) and `base`."""
    model: ModelSpec = ModelSpec()
    """Model settings of every model step (a step may override them)."""
    retries: RetrySpec = RetrySpec()
    """Retry settings of every step (a step may override them)."""
    timeout_seconds: float = Field(default=600, gt=0, le=86_400)
    """Longest a step may run."""
    cache: CacheSpec = CacheSpec()
    """Whether step results are cached, and for how long."""
    steps: Steps
    """The steps `decide` and `generate` (required), `build` and `save`."""
    routing: RoutingHints = RoutingHints()
    knowledge: KnowledgeSpec | None = None
    """Markdown and text files the agent draws on (`agentflows.knowledge_spec`); none by default."""
    uses: dict[Identifier, UseSpec] = Field(default_factory=dict)
    """Agents this one builds on, by name, e.g. `lesson_plan: {as: lesson}`: when a request asks for both,
    that agent runs first and its result reaches this agent's prompts."""
    review: ReviewSpec = ReviewSpec()
    """Whether runs pause for an editor to review the plan, and for how long (`agentflows.review_spec`)."""
    run_name: str | None = None
    """Flow run name, with input names in braces, e.g. "ebook: {topic}"."""

    @property
    def first_text_input(self) -> str | None:
        """The first required string input, if any: what runs are named after by default, and
        where a routed request's subject goes unless `routing.subject_input` names another."""
        return next((n for n, s in self.inputs.items() if s.type == "string" and s.is_required), None)

    @property
    def upstream_variables(self) -> dict[str, str]:
        """The template variable of each agent in `uses`, by agent name."""
        return {agent: use.variable or agent for agent, use in self.uses.items()}

    @property
    def builder(self) -> str:
        """The builder that assembles the drafts: `steps.build.builder`, else the content type's default."""
        return self.steps.build.builder or DEFAULT_BUILDER[self.content_type]

    @property
    def layout(self) -> str:
        """The layout template of the build step: `steps.build.layout`, else `layouts/<builder>.html`."""
        return self.steps.build.layout or f"layouts/{self.builder}.html"

    def model_settings(self, step: ModelStep) -> ModelSettings:
        """The model settings `step` runs with."""
        agent_level = self.model.over(ModelSettings())
        return step.model.over(agent_level) if step.model else agent_level

    def retry_settings(self, step: StepSettings) -> RetrySpec:
        return step.retries or self.retries

    def timeout(self, step: StepSettings) -> float:
        return step.timeout_seconds or self.timeout_seconds
