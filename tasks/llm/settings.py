"""Model settings: how a step asks (`ModelSettings`) and how an endpoint is reached (`ProviderSettings`).

`ModelSettings` is what a definition's `model:` keys resolve to for one step:
which provider, which model, temperature, answer length, fallback models.

`ProviderSettings` is everything the OpenAI-compatible client needs to call one
endpoint. There is one model and two ways to fill it:

- environment variables, `AGENTFLOWS_LLM_<FIELD>` for each field below
  (`AGENTFLOWS_LLM_BASE_URL`, `AGENTFLOWS_LLM_READ_TIMEOUT`, …; a few keep
  shorter names: `MODEL` stays as is, prices are `PRICE_PROMPT` and
  `PRICE_COMPLETION`), through `ProviderSettings.from_env()`;
- a saved `agentflows model provider` Block, whose class is this model with
  Prefect's Block machinery added (`agentflows.blocks.model_provider`).

So a new provider setting is one field here: the environment variable, the
Block's form field and the client's use of it follow from it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from ipaddress import ip_address
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from agentflows.tasks.errors import ConfigurationError
from agentflows.tasks.llm.structured import JsonMode
from agentflows.tasks.masking import masked

ENV_PREFIX = "AGENTFLOWS_LLM_"
PROVIDER_BLOCK_TYPE = "agentflows-model-provider"
"""Slug of the model provider Block type on the Prefect server."""
REMOTE_READ_TIMEOUT = 120.0
LOOPBACK_READ_TIMEOUT = 300.0
"""A local CPU server reads a long prompt at ~100 tokens/s before its first token."""
REMOTE_ATTEMPTS = 4
LOOPBACK_ATTEMPTS = 2
DEFAULT_CONTEXT_WINDOW = 128_000


class ModelSettings(BaseModel):
    """How one step calls its model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str = "default"
    """`default` (the environment decides), `offline`, `openai` (the AGENTFLOWS_LLM_* endpoint),
    a registered provider, or the name of a saved model provider Block."""
    model: str | None = None
    """Model name; None means the provider's default model."""
    temperature: float = Field(default=0.7, ge=0, le=2)
    max_tokens: int = Field(default=2048, ge=1)
    fallbacks: tuple[str, ...] = ()
    """Models tried in order when `model` keeps failing; empty means the provider's own fallbacks."""


class ProviderSettings(BaseModel):
    """An OpenAI-compatible chat-completions endpoint: where it is, how to call it, what it costs."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    ENV_NAMES: ClassVar[dict[str, str]] = {
        "price_per_1k_prompt_tokens": "PRICE_PROMPT",
        "price_per_1k_completion_tokens": "PRICE_COMPLETION",
    }
    """Fields whose environment variable is not `AGENTFLOWS_LLM_<FIELD>`."""

    base_url: str = Field(
        min_length=1, description="Endpoint base up to and including /v1, e.g. https://api.openai.com/v1."
    )
    api_key: SecretStr | None = Field(
        default=None, description="API key, sent as a bearer token; never logged or stored."
    )
    model: str = Field(default="gpt-4o-mini", min_length=1, description="Model that answers when a step names none.")
    fallback_models: tuple[str, ...] = Field(
        default=(), description="Models tried in order when the main one keeps failing."
    )
    connect_timeout: float = Field(default=10.0, gt=0, description="Seconds to connect.")
    read_timeout: float | None = Field(
        default=None,
        gt=0,
        description="Seconds to wait for the answer; when streaming, for its first token. "
        "Empty: 120, or 300 for a server on loopback.",
    )
    idle_timeout: float = Field(
        default=30.0, gt=0, description="When streaming: seconds without a new token before the answer is given up."
    )
    stream: bool = Field(
        default=True,
        description="Stream answers token by token, so a slow model is judged by the time between tokens; "
        "an endpoint that refuses streaming is asked without it.",
    )
    write_timeout: float = Field(default=30.0, gt=0, description="Seconds to send the request.")
    pool_timeout: float = Field(default=30.0, gt=0, description="Seconds to wait for a free connection.")
    max_attempts: int | None = Field(
        default=None,
        ge=1,
        le=20,
        description="Tries per model for retryable failures. Empty: 4, or 2 for a server on loopback.",
    )
    backoff_seconds: float = Field(
        default=0.5, ge=0, description="Base of the retry backoff; retry n waits up to base × 2ⁿ (full jitter)."
    )
    backoff_cap_seconds: float = Field(default=20.0, ge=0, description="Longest backoff between two tries.")
    retry_after_cap_seconds: float = Field(
        default=60.0, ge=0, description="Longest Retry-After honoured; a server asking for more gets this."
    )
    breaker_threshold: int = Field(
        default=5,
        ge=1,
        description="Failed calls in a row (connection errors, 5xx; never a slow answer) that open the endpoint's "
        "circuit breaker.",
    )
    breaker_reset_seconds: float = Field(
        default=30.0, gt=0, description="Seconds an open breaker fails fast before it lets one probe call through."
    )
    max_concurrency: int = Field(
        default=4,
        ge=1,
        le=1000,
        description="Most calls in flight at once; never more than the slots the server reports (llama.cpp).",
    )
    requests_per_minute: int | None = Field(default=None, ge=1, description="Rate limit; empty for none.")
    context_window: int | None = Field(
        default=None,
        ge=256,
        description="The model's context window in tokens. Empty: what the server reports (llama.cpp, vLLM), "
        "else 128000.",
    )
    limit_scope: Literal["auto", "server", "process"] = Field(
        default="auto",
        description="Where the concurrency and rate limits hold: across the Prefect server (server), in one "
        "process (process), or auto: server inside runs that use a configured Prefect API.",
    )
    json_mode: JsonMode = Field(
        default="auto",
        description="How to ask for JSON: auto (the strongest the endpoint accepts: json_schema, then "
        "json_object, then the prompt only), or exactly json_schema, json_object or off (the prompt only).",
    )
    frequency_penalty: float | None = Field(
        default=None,
        ge=-2,
        le=2,
        description="Sent with every call when set: lowers the odds of tokens by how often they already appear, "
        "which keeps a small model from repeating itself (0.5 suits SmolLM2-135M). Empty: the server's default.",
    )
    seed: int | None = Field(
        default=None,
        description="Sampling seed sent with every call: servers that honour it (llama.cpp, vLLM, Ollama, OpenAI) "
        "answer the same prompt the same way. Empty: none.",
    )
    embeddings_model: str | None = Field(
        default=None,
        description="Embeddings model of this endpoint (/v1/embeddings) for hybrid knowledge retrieval; "
        "empty: knowledge is searched by keywords only.",
    )
    price_per_1k_prompt_tokens: float = Field(default=0.0, ge=0, description="Price per 1,000 prompt tokens.")
    price_per_1k_completion_tokens: float = Field(default=0.0, ge=0, description="Price per 1,000 completion tokens.")

    @property
    def on_loopback(self) -> bool:
        """Whether the endpoint is on this machine (`localhost`, `127.x.x.x`, `::1`): a local model server."""
        return is_loopback(self.base_url)

    @property
    def answer_timeout(self) -> float:
        """`read_timeout`, or its default for where the endpoint is."""
        if self.read_timeout is not None:
            return self.read_timeout
        return LOOPBACK_READ_TIMEOUT if self.on_loopback else REMOTE_READ_TIMEOUT

    @property
    def tries(self) -> int:
        """`max_attempts`, or its default for where the endpoint is.

        A local server that timed out is busy, not flaky: trying the same long
        generation four times only queues more work on it.
        """
        if self.max_attempts is not None:
            return self.max_attempts
        return LOOPBACK_ATTEMPTS if self.on_loopback else REMOTE_ATTEMPTS

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "must be an http:// or https:// URL up to and including /v1, e.g. http://localhost:8000/v1"
            )
        return value.strip()

    def describe_url(self) -> str:
        """The base URL as it may be shown or stored: any password in it masked."""
        return masked(self.base_url.rstrip("/"))

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Cost of one call at the configured prices."""
        return (
            prompt_tokens * self.price_per_1k_prompt_tokens + completion_tokens * self.price_per_1k_completion_tokens
        ) / 1000

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable of `field`, e.g. `AGENTFLOWS_LLM_READ_TIMEOUT`."""
        return ENV_PREFIX + cls.ENV_NAMES.get(field, field.upper())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProviderSettings | None:
        """The endpoint the `AGENTFLOWS_LLM_*` variables describe, or None when no base URL is set.

        Raises `ConfigurationError` naming the variable when a value does not fit its field.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            raw = env.get(cls.env_name(name), "").strip()
            if raw:
                values[name] = _split_list(raw) if field.annotation == tuple[str, ...] else raw
        if "base_url" not in values:
            return None
        return cls.validated(values, where=lambda field: cls.env_name(field))

    @classmethod
    def from_saved(cls, data: Mapping[str, Any], name: str) -> ProviderSettings:
        """The settings a saved Block document holds (fields it does not know are left out)."""
        known = {k: v for k, v in data.items() if k in cls.model_fields and v is not None}
        return cls.validated(known, where=lambda field: f"model provider block {name!r}: {field}")

    @classmethod
    def validated(cls, values: Mapping[str, Any], *, where: Callable[[str], str]) -> ProviderSettings:
        """`values` as settings; a `ConfigurationError` names the first bad field as `where(field)` says."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0]) if error["loc"] else "?"
            got = values.get(field)
            shown = "" if field == "api_key" else f" (got {masked(repr(got))})"
            message = str(error["msg"]).removeprefix("Value error, ")
            raise ConfigurationError(f"{where(field)} is invalid: {message}{shown}") from None


def is_loopback(base_url: str) -> bool:
    """Whether `base_url`'s host is this machine."""
    host = (urlsplit(base_url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _split_list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())
