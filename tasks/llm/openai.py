"""The OpenAI-compatible provider: `/v1/chat/completions` over httpx.

Works with OpenAI, Moonshot/Kimi, vLLM, Ollama, llama.cpp's server and any
endpoint that speaks the chat-completions protocol. With an embeddings model it
also embeds texts through the same endpoint's `/v1/embeddings`
(`agentflows.tasks.llm.embeddings`), for hybrid knowledge retrieval. Transport failures are
retried here and only here (see `agentflows.tasks.llm.transport` for the policy); when a
model's attempts are spent, the fallback models are tried in order. A call that
fails for good raises a `ModelCallError` that is not retryable, so Prefect's
task retries do not repeat what the client already repeated. Error messages
name provider, model and status, never the API key.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from agentflows.tasks.artifacts import Usage
from agentflows.tasks.errors import ModelCallError, ModelUnavailable
from agentflows.tasks.llm.base import ModelReply, ModelRequest
from agentflows.tasks.llm.embeddings import embed_texts
from agentflows.tasks.llm.endpoint import Endpoint
from agentflows.tasks.llm.session import ModelSession, model_session
from agentflows.tasks.llm.settings import ProviderSettings
from agentflows.tasks.llm.transport import is_retryable_status, wait_before_retry
from agentflows.tasks.masking import masked


@dataclass(frozen=True)
class _Outcome:
    """One HTTP attempt: a reply, or why there was none (and whether to try again)."""

    reply: ModelReply | None = None
    failure: str = ""
    retry: bool = False
    retry_after: str | None = None


class OpenAICompatibleProvider:
    """Answers `ModelRequest`s through an OpenAI-compatible chat-completions endpoint."""

    def __init__(self, name: str, settings: ProviderSettings, endpoint: Endpoint) -> None:
        self.name = name
        self.settings = settings
        self.endpoint = endpoint
        self.context_window = settings.context_window
        self.default_model = settings.model
        self.embeddings_model = settings.embeddings_model

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text from this endpoint's embeddings model (`agentflows.tasks.llm.embeddings`)."""
        return await embed_texts(self.name, self.settings, self.endpoint, texts)

    async def complete(self, request: ModelRequest) -> ModelReply:
        """Answer with the step's model, then each fallback model, until one answers."""
        first = request.settings.model or self.settings.model
        fallbacks = request.settings.fallbacks or self.settings.fallback_models
        models = list(dict.fromkeys([first, *fallbacks]))
        failures: list[str] = []
        async with model_session() as session:
            for model in models:
                try:
                    return await self._complete_with(session, model, request)
                except ModelUnavailable as exc:
                    failures.append(str(exc))
        tried = ", ".join(repr(m) for m in models)
        raise ModelCallError(f"provider {self.name!r}: no model answered ({tried}); last failure: {failures[-1]}")

    async def _complete_with(self, session: ModelSession, model: str, request: ModelRequest) -> ModelReply:
        attempts = self.settings.max_attempts
        breaker = self.endpoint.breaker
        last = ""
        for attempt in range(attempts):
            if not breaker.allow():
                raise ModelCallError(
                    f"provider {self.name!r} model {model!r}: circuit breaker for {self._endpoint()} is open "
                    f"after repeated failures; the next probe goes out in {breaker.retry_in():.0f} s"
                )
            outcome = await self._attempt(session, model, request)
            if outcome.reply is not None:
                breaker.record_success()
                return outcome.reply
            if not outcome.retry:
                raise ModelCallError(outcome.failure)  # the request is wrong, not the endpoint: no breaker count
            breaker.record_failure()
            last = outcome.failure
            if attempt + 1 < attempts:
                await asyncio.sleep(wait_before_retry(attempt, outcome.retry_after, self.settings))
        raise ModelUnavailable(f"model {model!r} failed {attempts} times; last: {last}")

    async def _attempt(self, session: ModelSession, model: str, request: ModelRequest) -> _Outcome:
        client = session.client(self.settings)
        body = self._body(model, request)
        started = time.monotonic()
        try:
            async with session.limiter(self.endpoint, self.settings).slot():
                started = time.monotonic()
                response = await client.post(self._url(), json=body, headers=self._headers())
        except httpx.TimeoutException as exc:
            return _Outcome(failure=self._say(model, f"timed out ({type(exc).__name__})"), retry=True)
        except httpx.TransportError as exc:
            return _Outcome(failure=self._say(model, f"connection failed ({type(exc).__name__})"), retry=True)
        latency = time.monotonic() - started
        if response.status_code == 400 and "response_format" in body and "response_format" in response.text:
            self.endpoint.refused_json_modes.add(body["response_format"]["type"])
            return await self._attempt(session, model, request)
        if response.status_code != 200:
            failure = self._say(
                model, f"answered {response.status_code} {response.reason_phrase}: {self._snippet(response)}"
            )
            retryable = is_retryable_status(response.status_code)
            return _Outcome(failure=failure, retry=retryable, retry_after=response.headers.get("retry-after"))
        return self._read(model, response, latency)

    def _read(self, model: str, response: httpx.Response, latency: float) -> _Outcome:
        try:
            envelope = response.json()
            choice = envelope["choices"][0]
            message = choice.get("message") or {}
            text = message.get("content")
            if text is None:
                text = message.get("refusal") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return _Outcome(
                failure=self._say(model, "answered 200 with a body that is not a chat completion"), retry=True
            )
        usage = envelope.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        completion_tokens = int(usage.get("completion_tokens") or 0)
        reply = ModelReply(
            text=str(text),
            provider=self.name,
            model=str(envelope.get("model") or model),
            usage=Usage(
                calls=1,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cost=self.settings.cost(prompt_tokens, completion_tokens),
                latency_seconds=latency,
            ),
            finish_reason=str(choice.get("finish_reason") or ""),
        )
        return _Outcome(reply=reply)

    def _body(self, model: str, request: ModelRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "temperature": request.settings.temperature,
            "max_tokens": request.settings.max_tokens,
        }
        mode = self.settings.json_mode
        if mode != "off" and mode not in self.endpoint.refused_json_modes:
            if mode == "json_schema":
                schema = {"name": "answer", "schema": request.output_schema}
                body["response_format"] = {"type": "json_schema", "json_schema": schema}
            else:
                body["response_format"] = {"type": "json_object"}
        return body

    def _url(self) -> str:
        return self.settings.base_url.rstrip("/") + "/chat/completions"

    def _endpoint(self) -> str:
        return self.settings.describe_url()

    def _headers(self) -> dict[str, str]:
        key = self.settings.api_key.get_secret_value() if self.settings.api_key else ""
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _say(self, model: str, what: str) -> str:
        return f"provider {self.name!r} model {model!r} at {self._endpoint()} {what}"

    def _snippet(self, response: httpx.Response, limit: int = 200) -> str:
        """The start of an error body, with the API key and URL credentials removed should the server echo them."""
        text = response.text.strip().replace("\n", " ")
        try:
            error = json.loads(text).get("error")
            text = str(error.get("message") if isinstance(error, dict) else error or text)
        except (ValueError, AttributeError):
            pass
        secrets = [self.settings.api_key.get_secret_value()] if self.settings.api_key else []
        text = masked(text, secrets)
        return (text[:limit] + "…") if len(text) > limit else (text or "(empty body)")
