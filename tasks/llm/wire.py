"""The chat-completions protocol on the wire: the request body, and the answer read whole or streamed.

`request_body` builds one request for a `ResponseFormat`: when the server does
not hold the answer to the schema, the JSON's shape is added to the last user
message. `exchange` sends it and reads the answer: whole (`read_completion`), or
as a server-sent-event stream token by token (`read_stream`), giving up
(`AnswerTimeout`) when the answer does not start within the read timeout or a
streamed one stops for the idle timeout, and stopping a stream that keeps
repeating itself (`runaway`). What was received before a failure stays in the
`Received` it fills, so an aborted answer is still counted and kept.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from agentflows.tasks.answers import is_runaway
from agentflows.tasks.errors import AnswerTimeout, BrokenAnswer
from agentflows.tasks.llm.base import RUNAWAY, ModelRequest
from agentflows.tasks.llm.structured import ResponseFormat, shape_instruction

CHARS_PER_TOKEN = 4.0
"""For a prompt whose size the server did not report (an aborted stream)."""
RUNAWAY_CHECK_EVERY = 32
RUNAWAY_WINDOW = 600
"""Chunks (about tokens) of the stream's tail looked at for repetition."""
RUNAWAY_MIN_CHARS = 1_500


@dataclass
class Received:
    """What came back for one request, filled as it arrives (so a failure keeps what was received)."""

    text: str = ""
    finish_reason: str = ""
    model: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    chunks: int = 0
    """Content deltas of a stream: about one per token, for servers that report no usage."""
    prompt_chars: int = 0
    sent_at: float | None = None
    """When the request went out (after waiting for a free slot)."""

    def tokens(self) -> tuple[int, int]:
        """Prompt and completion tokens: as reported, else estimated (prompt size, streamed deltas)."""
        prompt = self.prompt_tokens if self.prompt_tokens is not None else int(self.prompt_chars / CHARS_PER_TOKEN)
        completion = self.completion_tokens if self.completion_tokens is not None else self.chunks
        return prompt, completion


def request_body(
    model: str, request: ModelRequest, fmt: ResponseFormat, *, stream: bool, sampling: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON body of one chat-completions request."""
    messages = [{"role": m.role, "content": m.content} for m in request.messages]
    if not fmt.constrained and messages:
        last = messages[-1]
        last["content"] = f"{last['content']}\n\n{shape_instruction(request.output_schema)}"
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "temperature": request.settings.temperature,
        "max_tokens": request.settings.max_tokens,
    }
    response_format = fmt.body(request.output_schema)
    if response_format is not None:
        body["response_format"] = response_format
    body.update({key: value for key, value in (sampling or {}).items() if value is not None})
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def prompt_chars(body: dict[str, Any]) -> int:
    return sum(len(str(m.get("content", ""))) for m in body.get("messages", []))


async def exchange(
    client: httpx.AsyncClient,
    request: httpx.Request,
    received: Received,
    *,
    read_timeout: float,
    idle_timeout: float,
) -> httpx.Response | None:
    """Send `request` and fill `received` with its answer; the response when it is not a 200 (read whole)."""
    try:
        async with asyncio.timeout(read_timeout):
            response = await client.send(request, stream=True)
    except TimeoutError:
        raise AnswerTimeout.waiting(read_timeout) from None
    try:
        if response.status_code != 200:
            await response.aread()
            return response
        if "text/event-stream" in response.headers.get("content-type", ""):
            await read_stream(response, received, first_timeout=read_timeout, idle_timeout=idle_timeout)
            return None
        try:
            async with asyncio.timeout(read_timeout):
                await response.aread()
        except TimeoutError:
            raise AnswerTimeout.waiting(read_timeout) from None
        try:
            envelope = response.json()
        except ValueError:
            raise BrokenAnswer("answered 200 with a body that is not a chat completion") from None
        read_completion(envelope, received)
        return None
    finally:
        await response.aclose()


def read_completion(envelope: Any, received: Received) -> None:
    """Fill `received` from a whole chat completion; raise `BrokenAnswer` when it is not one."""
    try:
        choice = envelope["choices"][0]
        message = choice.get("message") or {}
        text = message.get("content")
        if text is None:
            text = message.get("refusal") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        raise BrokenAnswer("answered 200 with a body that is not a chat completion") from None
    received.text = str(text)
    received.finish_reason = str(choice.get("finish_reason") or "")
    received.model = str(envelope.get("model") or "")
    _usage(envelope, received)


async def read_stream(
    response: httpx.Response, received: Received, *, first_timeout: float, idle_timeout: float
) -> None:
    """Fill `received` from a server-sent-event stream of chat-completion chunks, until `[DONE]` or its end.

    A stream that has started repeating itself is stopped there (`finish_reason` `runaway`): closing it
    frees the server at once, where it would otherwise write the same words until `max_tokens`.
    """
    lines = response.aiter_lines()
    parts: list[str] = []
    try:
        async for line in _paced(lines, first_timeout, idle_timeout, lambda: received.chunks == 0):
            if not line.startswith("data:"):
                continue  # blank separators, `:` keep-alive comments, `event:` lines
            data = line[5:].strip()
            if data == "[DONE]":
                break
            _chunk(data, received, parts)
            if received.chunks % RUNAWAY_CHECK_EVERY == 0 and not received.finish_reason and _running_away(parts):
                received.finish_reason = RUNAWAY
                break
    finally:
        received.text = "".join(parts)


def _running_away(parts: list[str]) -> bool:
    tail = "".join(parts[-RUNAWAY_WINDOW:])
    return len(tail) >= RUNAWAY_MIN_CHARS and is_runaway(tail)


async def _paced(
    lines: AsyncIterator[str], first_timeout: float, idle_timeout: float, waiting_for_first: Any
) -> AsyncIterator[str]:
    """The stream's lines, each awaited at most `idle_timeout` (`first_timeout` until the first token)."""
    while True:
        wait = first_timeout if waiting_for_first() else idle_timeout
        try:
            async with asyncio.timeout(wait):
                line = await anext(lines)
        except StopAsyncIteration:
            return
        except TimeoutError:
            first = waiting_for_first()
            raise (AnswerTimeout.waiting(wait) if first else AnswerTimeout.stalled(wait)) from None
        yield line


def _chunk(data: str, received: Received, parts: list[str]) -> None:
    try:
        chunk = json.loads(data)
    except ValueError:
        raise BrokenAnswer("streamed a chunk that is not JSON") from None
    if not isinstance(chunk, dict):
        raise BrokenAnswer("streamed a chunk that is not a JSON object")
    if chunk.get("error"):
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise BrokenAnswer(f"reported an error mid-stream: {message}")
    received.model = str(chunk.get("model") or received.model)
    _usage(chunk, received)
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if content:
            parts.append(str(content))
            received.chunks += 1
        if choice.get("finish_reason"):
            received.finish_reason = str(choice["finish_reason"])


def _usage(envelope: dict[str, Any], received: Received) -> None:
    usage = envelope.get("usage")
    if isinstance(usage, dict):
        received.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        received.completion_tokens = int(usage.get("completion_tokens") or 0)
