"""The model provider interface: one request in, one reply out.

A provider turns a `ModelRequest` (messages, settings, the JSON schema the
answer must satisfy) into a `ModelReply` (the raw text and its usage). Which
provider serves a step is the runtime's to say (`agentflows.tasks.runtime`):
a definition names `offline`, `default` (the environment decides), `openai`, a
provider the caller registered, or a saved model provider Block.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from agentflows.tasks.artifacts import Attempt, Usage
from agentflows.tasks.llm.settings import ModelSettings

RUNAWAY = "runaway"
"""The `finish_reason` of a streamed answer the client stopped because it kept repeating itself."""


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class ModelRequest(BaseModel):
    """Everything a provider needs for one call."""

    model_config = ConfigDict(frozen=True)

    label: str
    """Which call this is, e.g. `ebook/generate/02-how-it-works` (for logs and errors)."""
    messages: tuple[Message, ...]
    settings: ModelSettings
    output_schema: dict[str, Any]
    """JSON Schema the answer must satisfy."""
    context: dict[str, JsonValue] = Field(default_factory=dict)
    """The structured values the prompt was rendered from (inputs, plan item).
    HTTP providers ignore it; the offline provider derives its answer from it."""
    round: int = 0
    """Which try of the step's conversation this is (0: the first). A provider with a fixed sampling seed
    varies it by round, so a re-ask is not the same draw again."""
    time_limit: float | None = None
    """Seconds this call may take, retries included (what is left of the step's timeout); None: no limit."""


class ModelReply(BaseModel):
    """A provider's answer: raw text, and what it cost."""

    model_config = ConfigDict(frozen=True)

    text: str
    provider: str
    model: str
    usage: Usage
    offline: bool = False
    finish_reason: str = ""
    """Why the model stopped: `stop`, `length` (cut off at max_tokens), … as the server says; `runaway` when
    the client stopped a stream that kept repeating itself."""
    failed_attempts: tuple[Attempt, ...] = ()
    """Attempts behind this answer that failed (timed out, 5xx, …); `usage` counts them too."""


class ModelProvider(Protocol):
    """Anything that can answer a `ModelRequest`."""

    name: str
    default_model: str
    """The model that answers when a step names none."""

    @property
    def context_window(self) -> int:
        """Most tokens (prompt plus answer) the provider's model accepts."""
        ...

    async def complete(self, request: ModelRequest) -> ModelReply:
        """Answer one request; raise `ModelCallError` on failure (with the usage of the attempts it made)."""
        ...
