"""The model provider Block: settings of an OpenAI-compatible endpoint, saved on the Prefect server.

Register the type with `prefect block register -m agentflows.blocks.model_provider`, create
one in the UI (or in Python, below), and name it in a definition's
`model.provider`:

    from agentflows.blocks.model_provider import ModelProviderBlock
    ModelProviderBlock(base_url="http://localhost:8000/v1", model="qwen2.5-7b-instruct").save("local-vllm")

    # agent YAML
    model: {provider: local-vllm}
"""

from __future__ import annotations

import time
from typing import Literal

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from agentflows.tasks.llm.config import ProviderConfig, RetrySettings, Timeouts

CACHE_SECONDS = 60.0
_loaded: dict[str, tuple[float, ProviderConfig | None]] = {}


class ModelProviderBlock(Block):
    """An OpenAI-compatible chat-completions endpoint (OpenAI, Moonshot/Kimi, vLLM, Ollama, llama.cpp…)."""

    _block_type_name = "agentflows model provider"
    _block_type_slug = "agentflows-model-provider"
    _description = "Endpoint, model, key, limits and prices of a model provider used by agentflows agents."

    base_url: str = Field(description="Endpoint base up to and including /v1, e.g. https://api.openai.com/v1.")
    model: str = Field(default="gpt-4o-mini", description="Default model name.")
    api_key: SecretStr | None = Field(default=None, description="API key, sent as a bearer token.")
    fallback_models: list[str] = Field(
        default_factory=list, description="Models tried in order when the main one keeps failing."
    )
    connect_timeout: float = Field(default=10.0, gt=0, description="Seconds to connect.")
    read_timeout: float = Field(default=120.0, gt=0, description="Seconds to wait for the answer.")
    write_timeout: float = Field(default=30.0, gt=0, description="Seconds to send the request.")
    pool_timeout: float = Field(default=30.0, gt=0, description="Seconds to wait for a free connection.")
    max_attempts: int = Field(default=4, ge=1, le=20, description="Tries per model for retryable failures.")
    max_concurrency: int = Field(default=4, ge=1, description="Most calls in flight at once, across all flows.")
    requests_per_minute: int | None = Field(default=None, ge=1, description="Rate limit across all flows.")
    context_window: int = Field(default=128_000, ge=256, description="The model's context window in tokens.")
    limit_scope: Literal["auto", "server", "process"] = Field(
        default="auto",
        description="Where the concurrency and rate limits hold: across the Prefect server (server), in one process "
        "(process), or auto: server inside runs that use a configured Prefect API.",
    )
    json_mode: Literal["json_object", "json_schema", "off"] = Field(
        default="json_object",
        description="How to ask for JSON: response_format json_object, json_schema, or the prompt only.",
    )
    price_per_1k_prompt_tokens: float = Field(default=0.0, ge=0, description="Price per 1,000 prompt tokens.")
    price_per_1k_completion_tokens: float = Field(default=0.0, ge=0, description="Price per 1,000 completion tokens.")

    def to_config(self, name: str) -> ProviderConfig:
        """The client settings this block holds, under provider name `name`."""
        return ProviderConfig(
            name=name,
            base_url=self.base_url,
            api_key=self.api_key,
            model=self.model,
            fallback_models=tuple(self.fallback_models),
            timeouts=Timeouts(
                connect=self.connect_timeout, read=self.read_timeout, write=self.write_timeout, pool=self.pool_timeout
            ),
            retry=RetrySettings(attempts=self.max_attempts),
            max_concurrency=self.max_concurrency,
            requests_per_minute=self.requests_per_minute,
            context_window=self.context_window,
            json_mode=self.json_mode,
            limit_scope=self.limit_scope,
            price_per_1k_prompt_tokens=self.price_per_1k_prompt_tokens,
            price_per_1k_completion_tokens=self.price_per_1k_completion_tokens,
        )


async def load_provider_config(name: str) -> ProviderConfig | None:
    """The config of the saved block `name`, or None when there is none (cached for a minute)."""
    now = time.monotonic()
    cached = _loaded.get(name)
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    try:
        block: ModelProviderBlock = await ModelProviderBlock.aload(name)
    except ValueError:
        config = None
    else:
        config = block.to_config(name)
    _loaded[name] = (now, config)
    return config
