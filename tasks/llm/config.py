"""Settings of an OpenAI-compatible model provider, from a Block or the environment.

`ProviderConfig` is what the HTTP client reads. It comes from a saved
`agentflows.blocks.ModelProviderBlock` (loadable by name) or, for users without a Prefect
server, from environment variables:

    AGENTFLOWS_LLM_BASE_URL        e.g. http://localhost:8000/v1 (required)
    AGENTFLOWS_LLM_API_KEY         sent as a bearer token (optional for local servers)
    AGENTFLOWS_LLM_MODEL           default model name
    AGENTFLOWS_LLM_FALLBACK_MODELS comma-separated models tried in order after the main one
    AGENTFLOWS_LLM_MAX_CONCURRENCY most calls in flight at once (default 4)
    AGENTFLOWS_LLM_REQUESTS_PER_MINUTE  rate limit (default: none)
    AGENTFLOWS_LLM_CONTEXT_WINDOW  the model's context window in tokens (default 128000)
    AGENTFLOWS_LLM_JSON_MODE       json_object (default), json_schema or off
    AGENTFLOWS_LLM_LIMIT_SCOPE     auto (default), server or process: where the limits above hold
    AGENTFLOWS_LLM_PRICE_PROMPT / AGENTFLOWS_LLM_PRICE_COMPLETION   price per 1k tokens
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from agentflows.tasks.errors import ConfigurationError

ENV_PREFIX = "AGENTFLOWS_LLM_"


class Timeouts(BaseModel):
    """httpx timeouts in seconds: connecting, waiting for the answer, sending, waiting for a pooled connection."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connect: float = Field(default=10.0, gt=0)
    read: float = Field(default=120.0, gt=0)
    write: float = Field(default=30.0, gt=0)
    pool: float = Field(default=30.0, gt=0)


class RetrySettings(BaseModel):
    """How the client retries connection errors, 408, 409, 429 and 5xx."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: int = Field(default=4, ge=1, le=20)
    """Tries per model, the first included."""
    backoff_seconds: float = Field(default=0.5, ge=0)
    """Base of the exponential backoff; each delay is drawn from 0..min(cap, base * 2**retry) (full jitter)."""
    backoff_cap_seconds: float = Field(default=20.0, ge=0)
    retry_after_cap_seconds: float = Field(default=60.0, ge=0)
    """Longest `Retry-After` honoured; a server asking for more gets this."""
    breaker_threshold: int = Field(default=5, ge=1)
    """Consecutive failed calls to an endpoint that open its circuit breaker."""
    breaker_reset_seconds: float = Field(default=30.0, gt=0)
    """How long an open breaker fails fast before it lets one probe call through."""


class ProviderConfig(BaseModel):
    """Everything the OpenAI-compatible client needs to call one endpoint."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "openai"
    """Provider name, used in errors, logs and concurrency limit names."""
    base_url: str = Field(min_length=1)
    """Endpoint base, up to and including `/v1`, e.g. `https://api.openai.com/v1`."""
    api_key: SecretStr | None = None
    model: str = Field(default="gpt-4o-mini", min_length=1)
    fallback_models: tuple[str, ...] = ()
    timeouts: Timeouts = Timeouts()
    retry: RetrySettings = RetrySettings()
    max_concurrency: int = Field(default=4, ge=1, le=1000)
    requests_per_minute: int | None = Field(default=None, ge=1)
    context_window: int = Field(default=128_000, ge=256)
    limit_scope: Literal["auto", "server", "process"] = "auto"
    """Where `max_concurrency` and `requests_per_minute` hold: across the Prefect server's flows and
    workers, in this process, or `auto` (see `agentflows.tasks.llm.limits`)."""
    json_mode: Literal["json_object", "json_schema", "off"] = "json_object"
    """How to ask for JSON: OpenAI's `response_format` in either form, or only the prompt's instruction."""
    price_per_1k_prompt_tokens: float = Field(default=0.0, ge=0)
    price_per_1k_completion_tokens: float = Field(default=0.0, ge=0)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Cost of one call at the configured prices."""
        return (
            prompt_tokens * self.price_per_1k_prompt_tokens + completion_tokens * self.price_per_1k_completion_tokens
        ) / 1000


def config_from_env(environ: dict[str, str] | None = None) -> ProviderConfig:
    """The provider configured by `AGENTFLOWS_LLM_*` variables; raises `ConfigurationError` when one is invalid."""
    env = dict(os.environ if environ is None else environ)

    def get(name: str) -> str | None:
        value = env.get(ENV_PREFIX + name, "").strip()
        return value or None

    if not get("BASE_URL"):
        raise ConfigurationError(
            f"{ENV_PREFIX}BASE_URL is not set; set it to an OpenAI-compatible endpoint such as http://localhost:8000/v1"
        )
    values: dict[str, object] = {
        "base_url": get("BASE_URL"),
        "api_key": get("API_KEY"),
        "model": get("MODEL"),
        "fallback_models": tuple(m.strip() for m in (get("FALLBACK_MODELS") or "").split(",") if m.strip()),
        "max_concurrency": get("MAX_CONCURRENCY"),
        "requests_per_minute": get("REQUESTS_PER_MINUTE"),
        "context_window": get("CONTEXT_WINDOW"),
        "json_mode": get("JSON_MODE"),
        "limit_scope": get("LIMIT_SCOPE"),
        "price_per_1k_prompt_tokens": get("PRICE_PROMPT"),
        "price_per_1k_completion_tokens": get("PRICE_COMPLETION"),
    }
    try:
        return ProviderConfig.model_validate({k: v for k, v in values.items() if v not in (None, ())})
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "?"
        variable = ENV_PREFIX + _ENV_NAMES.get(field, field.upper())
        raise ConfigurationError(f"{variable} is invalid: {error['msg']}") from None


_ENV_NAMES = {
    "price_per_1k_prompt_tokens": "PRICE_PROMPT",
    "price_per_1k_completion_tokens": "PRICE_COMPLETION",
}
