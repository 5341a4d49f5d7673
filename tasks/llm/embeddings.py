"""Embeddings from an OpenAI-compatible endpoint: `/v1/embeddings` of the same provider as the chat model.

`embed_texts` sends texts in batches to the endpoint's `embeddings_model` and
returns one vector per text, in order. Failures follow the chat client's
transport policy (`agentflows.tasks.llm.transport`): connection errors, timeouts,
408/409/429 and 5xx are retried with backoff (honouring Retry-After) and count on
the endpoint's circuit breaker; any other status fails at once. Errors name the
provider, model and status, never the API key.
"""

from __future__ import annotations

import asyncio

import httpx

from agentflows.tasks.errors import ModelCallError
from agentflows.tasks.llm.endpoint import Endpoint
from agentflows.tasks.llm.session import model_session
from agentflows.tasks.llm.settings import REMOTE_ATTEMPTS, ProviderSettings
from agentflows.tasks.llm.transport import is_retryable_status, wait_before_retry

BATCH = 64
"""Texts per request."""


async def embed_texts(
    provider: str, settings: ProviderSettings, endpoint: Endpoint, texts: list[str]
) -> list[list[float]]:
    """One vector per text, from `settings.embeddings_model`; `ModelCallError` when the endpoint fails for good."""
    model = settings.embeddings_model
    if not model:
        raise ModelCallError(f"provider {provider!r} has no embeddings model; set AGENTFLOWS_LLM_EMBEDDINGS_MODEL")
    vectors: list[list[float]] = []
    async with model_session() as session:
        client = session.client(settings)
        for start in range(0, len(texts), BATCH):
            vectors += await _batch(client, provider, settings, endpoint, model, texts[start : start + BATCH])
    return vectors


async def _batch(
    client: httpx.AsyncClient,
    provider: str,
    settings: ProviderSettings,
    endpoint: Endpoint,
    model: str,
    texts: list[str],
) -> list[list[float]]:
    url = settings.base_url.rstrip("/") + "/embeddings"
    key = settings.api_key.get_secret_value() if settings.api_key else ""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    where = f"provider {provider!r} embeddings model {model!r} at {settings.base_url.rstrip('/')}"
    failure = ""
    # An embeddings call is short: the fewer tries a loopback server gets are for long generations.
    tries = settings.max_attempts if settings.max_attempts is not None else REMOTE_ATTEMPTS
    for attempt in range(tries):
        if not endpoint.breaker.allow():
            raise ModelCallError(f"{where}: circuit breaker is open after repeated failures")
        retry_after = None
        try:
            response = await client.post(url, json={"model": model, "input": texts}, headers=headers)
        except httpx.TransportError as exc:
            failure = f"{where} failed to answer ({type(exc).__name__})"
        else:
            if response.status_code == 200:
                endpoint.breaker.record_success()
                return _vectors(response, len(texts), where)
            failure = f"{where} answered {response.status_code} {response.reason_phrase}"
            if key:
                failure = failure.replace(key, "***")
            if not is_retryable_status(response.status_code):
                raise ModelCallError(failure)
            retry_after = response.headers.get("retry-after")
        endpoint.breaker.record_failure()
        if attempt + 1 < tries:
            await asyncio.sleep(wait_before_retry(attempt, retry_after, settings))
    raise ModelCallError(f"{failure} ({tries} attempts)")


def _vectors(response: httpx.Response, expected: int, where: str) -> list[list[float]]:
    try:
        data = sorted(response.json()["data"], key=lambda row: row.get("index", 0))
        vectors = [[float(x) for x in row["embedding"]] for row in data]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ModelCallError(f"{where} answered 200 with a body that is not a list of embeddings") from None
    if len(vectors) != expected or len({len(v) for v in vectors}) > 1 or not vectors[0]:
        raise ModelCallError(f"{where} answered {len(vectors)} vectors of mixed or no size for {expected} texts")
    return vectors
