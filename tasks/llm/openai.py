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

Contracts:
- answers are streamed (`stream`), so a slow model is judged by the time
  between its tokens (`idle_timeout`) and its first token (`read_timeout`), never
  by one timeout for the whole answer; the request's `time_limit` bounds the whole
  call, retries included;
- structured output is negotiated (`tasks.llm.structured`): the strongest
  format the endpoint has not refused, stepping down once per refusal, remembered
  for the endpoint; a server that refuses streaming is asked without it from then on;
- the circuit breaker counts connection failures, 5xx and broken answers; a slow
  answer (a timeout) or a busy server (429) never opens it;
- every HTTP attempt counts: the reply's `usage` (or the error's) sums every
  attempt made for it, failed ones included, and the failed ones are kept as
  `failed_attempts` with what they received.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import httpx

from agentflows.tasks.artifacts import Attempt, Usage
from agentflows.tasks.errors import AnswerTimeout, BrokenAnswer, ModelCallError, ModelUnavailable
from agentflows.tasks.llm.base import ModelReply, ModelRequest
from agentflows.tasks.llm.embeddings import embed_texts
from agentflows.tasks.llm.endpoint import Endpoint
from agentflows.tasks.llm.session import ModelSession, model_session
from agentflows.tasks.llm.settings import ProviderSettings
from agentflows.tasks.llm.structured import is_structured_output_refusal
from agentflows.tasks.llm.transport import is_retryable_status, wait_before_retry
from agentflows.tasks.llm.wire import Received, exchange, prompt_chars, request_body
from agentflows.tasks.masking import masked

RAW_KEPT = 2_000


@dataclass(frozen=True)
class _Outcome:
    """One HTTP attempt: a reply, or why there was none (and whether to try again)."""

    reply: ModelReply | None = None
    failure: str = ""
    retry: bool = False
    retry_after: str | None = None
    endpoint_fault: bool = False
    """Whether the failure says the endpoint is down or broken (counted by the breaker)."""


@dataclass
class _Spent:
    """What a call has cost so far, over its attempts and models."""

    usage: Usage = field(default_factory=Usage)
    failed: list[Attempt] = field(default_factory=list)

    def error(self, message: str) -> ModelCallError:
        return ModelCallError(message, usage=self.usage, attempts=tuple(self.failed))


class OpenAICompatibleProvider:
    """Answers `ModelRequest`s through an OpenAI-compatible chat-completions endpoint."""

    def __init__(self, name: str, settings: ProviderSettings, endpoint: Endpoint) -> None:
        self.name = name
        self.settings = settings
        self.endpoint = endpoint
        self.default_model = settings.model
        self.embeddings_model = settings.embeddings_model

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text from this endpoint's embeddings model (`agentflows.tasks.llm.embeddings`)."""
        return await embed_texts(self.name, self.settings, self.endpoint, texts)

    @property
    def context_window(self) -> int:
        """The configured window, else what the server reports (after `prepare`), else 128,000."""
        return self.endpoint.context_window(self.settings)

    @property
    def max_concurrency(self) -> int:
        """Most calls at once: `max_concurrency`, capped by the server's slots (after `prepare`)."""
        return self.endpoint.concurrency(self.settings)

    async def prepare(self) -> None:
        """Learn what the server says about itself (slots, context window), once per endpoint."""
        async with model_session() as session:
            await self.endpoint.learn(session.client(self.settings), self._headers())

    async def complete(self, request: ModelRequest) -> ModelReply:
        """Answer with the step's model, then each fallback model, until one answers."""
        first = request.settings.model or self.settings.model
        fallbacks = request.settings.fallbacks or self.settings.fallback_models
        models = list(dict.fromkeys([first, *fallbacks]))
        deadline = time.monotonic() + request.time_limit if request.time_limit else None
        spent = _Spent()
        failures: list[str] = []
        async with model_session() as session:
            await self.endpoint.learn(session.client(self.settings), self._headers())
            for model in models:
                try:
                    return await self._complete_with(session, model, request, spent, deadline)
                except ModelUnavailable as exc:
                    failures.append(str(exc))
        tried = ", ".join(repr(m) for m in models)
        raise spent.error(f"provider {self.name!r}: no model answered ({tried}); last failure: {failures[-1]}")

    async def _complete_with(
        self, session: ModelSession, model: str, request: ModelRequest, spent: _Spent, deadline: float | None
    ) -> ModelReply:
        attempts = self.settings.tries
        breaker = self.endpoint.breaker
        last = ""
        for attempt in range(attempts):
            if not breaker.allow():
                raise spent.error(
                    f"provider {self.name!r} model {model!r}: circuit breaker for {self._endpoint()} is open "
                    f"after repeated failures; the next probe goes out in {breaker.retry_in():.0f} s"
                )
            outcome = await self._attempt(session, model, request, spent, _left(deadline))
            if outcome.reply is not None:
                breaker.record_success()
                return outcome.reply.model_copy(update={"usage": spent.usage, "failed_attempts": tuple(spent.failed)})
            if outcome.endpoint_fault:
                breaker.record_failure()
            if not outcome.retry:
                raise spent.error(outcome.failure)  # the request is wrong, or out of time: no other try helps
            last = outcome.failure
            if attempt + 1 < attempts:
                pause = wait_before_retry(attempt, outcome.retry_after, self.settings)
                left = _left(deadline)
                if left is not None and pause >= left:
                    raise spent.error(f"{outcome.failure}; no time left for another try within the step's timeout")
                await asyncio.sleep(pause)
        raise ModelUnavailable(f"model {model!r} failed {attempts} times; last: {last}")

    async def _attempt(
        self, session: ModelSession, model: str, request: ModelRequest, spent: _Spent, left: float | None
    ) -> _Outcome:
        """One try, repeated at once with a weaker format when the server refuses the one asked for."""
        while True:
            fmt = self.endpoint.response_format(self.settings)
            if fmt is None:
                mode = self.settings.json_mode
                return _Outcome(
                    failure=self._say(
                        model,
                        f"refused the structured output json_mode {mode!r} asks for; "
                        "set AGENTFLOWS_LLM_JSON_MODE=auto (or the Block's json_mode) to negotiate one it accepts",
                    )
                )
            stream = self.settings.stream and not self.endpoint.stream_refused
            seed = None if self.settings.seed is None else self.settings.seed + request.round
            sampling = {"seed": seed, "frequency_penalty": self.settings.frequency_penalty}
            body = request_body(model, request, fmt, stream=stream, sampling=sampling)
            received = Received(prompt_chars=prompt_chars(body))
            started = time.monotonic()
            outcome, refusal = await self._send(session, model, body, received, left)
            ended = time.monotonic()
            latency = ended - (received.sent_at or ended)  # the model's time, not the wait for a slot
            prompt_tokens, completion_tokens = received.tokens()
            spent.usage = spent.usage + Usage(
                calls=1,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cost=self.settings.cost(prompt_tokens, completion_tokens),
                latency_seconds=latency,
            )
            if refusal == "format":
                self.endpoint.refused_json_modes.add(fmt.name)
            elif refusal == "stream":
                self.endpoint.stream_refused = True
            if refusal:
                if left is not None:
                    left -= ended - started
                continue
            if outcome.reply is None:
                raw = received.text[:RAW_KEPT]
                spent.failed.append(
                    Attempt(
                        model=model,
                        raw=raw,
                        error=outcome.failure,
                        finish_reason=received.finish_reason,
                        failed_call=True,
                    )
                )
            return outcome

    async def _send(
        self, session: ModelSession, model: str, body: dict[str, object], received: Received, left: float | None
    ) -> tuple[_Outcome, str]:
        """Send `body`; the outcome, and `format` or `stream` when the server refused that part of the request."""
        client = session.client(self.settings)
        try:
            async with asyncio.timeout(left):
                async with session.limiter(self.endpoint, self.settings).slot():
                    received.sent_at = time.monotonic()
                    return await self._exchange(client, model, body, received)
        except TimeoutError:
            return _Outcome(failure=self._say(model, "did not finish within the step's timeout")), ""
        except AnswerTimeout as exc:
            return _Outcome(failure=self._say(model, str(exc)), retry=True), ""
        except httpx.TimeoutException as exc:
            return _Outcome(failure=self._say(model, f"timed out ({type(exc).__name__})"), retry=True), ""
        except httpx.TransportError as exc:
            failure = self._say(model, f"connection failed ({type(exc).__name__})")
            return _Outcome(failure=failure, retry=True, endpoint_fault=True), ""
        except BrokenAnswer as exc:
            return _Outcome(failure=self._say(model, str(exc)), retry=True, endpoint_fault=True), ""

    async def _exchange(
        self, client: httpx.AsyncClient, model: str, body: dict[str, object], received: Received
    ) -> tuple[_Outcome, str]:
        request = client.build_request("POST", self._url(), json=body, headers=self._headers())
        s = self.settings
        refused = await exchange(client, request, received, read_timeout=s.answer_timeout, idle_timeout=s.idle_timeout)
        if refused is not None:
            return self._refused(model, body, refused)
        return _Outcome(reply=self._reply(model, received)), ""

    def _refused(self, model: str, body: dict[str, object], response: httpx.Response) -> tuple[_Outcome, str]:
        message = self._snippet(response)
        status = response.status_code
        if "response_format" in body and is_structured_output_refusal(status, message):
            return _Outcome(), "format"
        if body.get("stream") and status in (400, 422) and "stream" in message.lower():
            return _Outcome(), "stream"
        failure = self._say(model, f"answered {status} {response.reason_phrase}: {message}")
        retryable = is_retryable_status(status)
        fault = status >= 500
        return _Outcome(
            failure=failure, retry=retryable, retry_after=response.headers.get("retry-after"), endpoint_fault=fault
        ), ""

    def _reply(self, model: str, received: Received) -> ModelReply:
        return ModelReply(
            text=received.text,
            provider=self.name,
            model=received.model or model,
            usage=Usage(),  # replaced by the call's total over its attempts
            finish_reason=received.finish_reason,
        )

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


def _left(deadline: float | None) -> float | None:
    """Seconds left before `deadline` (None: no limit)."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())
