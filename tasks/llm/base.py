"""The model provider interface: one request in, one reply out.

A provider turns a `ModelRequest` (messages, settings, the JSON schema the
answer must satisfy) into a `ModelReply` (the raw text and its usage). Providers
are found by name in a registry, so a definition can say `provider: offline` and
a test or plugin can `register_provider("mine", factory)`.

`default` resolves from the environment: the `openai` provider (OpenAI-compatible
HTTP, configured by `AGENTFLOWS_LLM_*` variables) when `AGENTFLOWS_LLM_BASE_URL`
is set, otherwise the offline provider. Any other unregistered name is the name
of a saved model provider Block.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from agentflows.tasks.artifacts import Usage
from agentflows.tasks.errors import ProviderNotFound

BASE_URL_VARIABLE = "AGENTFLOWS_LLM_BASE_URL"


class ModelSettings(BaseModel):
    """How one step calls its model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str = "default"
    model: str | None = None
    """Model name; None means the provider's default model."""
    temperature: float = Field(default=0.7, ge=0, le=2)
    max_tokens: int = Field(default=2048, ge=1)
    fallbacks: tuple[str, ...] = ()
    """Models tried in order when `model` keeps failing; empty means the provider's own fallbacks."""


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


class ModelReply(BaseModel):
    """A provider's answer: raw text, and what it cost."""

    model_config = ConfigDict(frozen=True)

    text: str
    provider: str
    model: str
    usage: Usage
    offline: bool = False
    finish_reason: str = ""
    """Why the model stopped: `stop`, `length` (cut off at max_tokens), … as the server says."""


class ModelProvider(Protocol):
    """Anything that can answer a `ModelRequest`."""

    name: str
    context_window: int
    """Most tokens (prompt plus answer) the provider's model accepts."""
    default_model: str
    """The model that answers when a step names none."""

    async def complete(self, request: ModelRequest) -> ModelReply:
        """Answer one request; raise `ModelCallError` on failure."""
        ...


ProviderFactory = Callable[[ModelSettings], ModelProvider]
_registry: dict[str, ProviderFactory] = {}


def register_provider(name: str, factory: ProviderFactory) -> None:
    """Make `factory` the provider for steps whose model settings name `name`."""
    _registry[name] = factory


def registered_providers() -> list[str]:
    """Names a definition may use as `model.provider`."""
    return sorted({"default", *_registry})


async def resolve_provider(settings: ModelSettings) -> ModelProvider:
    """The provider that serves `settings`; raises `ProviderNotFound` before any call.

    Registered names come first; any other name is loaded as a saved
    `agentflows-model-provider` Block of that name.
    """
    name = settings.provider
    if name == "default":
        name = "openai" if os.environ.get(BASE_URL_VARIABLE) else "offline"
    factory = _registry.get(name)
    if factory is not None:
        return factory(settings)
    from agentflows.blocks.model_provider import load_provider_config  # imports Prefect's block machinery
    from agentflows.tasks.llm.openai import OpenAICompatibleProvider

    config = await load_provider_config(name)
    if config is None:
        raise ProviderNotFound(
            f"model provider {settings.provider!r} is neither registered nor a saved model provider block; "
            f"registered providers are: {', '.join(registered_providers())}"
        )
    return OpenAICompatibleProvider(config, settings)
