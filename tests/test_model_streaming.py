"""The client against a slow local model, played by the fake server: streaming, timeouts, slots, accounting.

What a user of a model on loopback notices: an answer that keeps streaming is never
cut off by a timeout, one that stops is given up after the idle timeout and counted,
a slow server never opens the breaker, the step's time limit bounds the whole call,
no more calls go at once than the server has slots, and every attempt is counted.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from agentflows.tasks.errors import ModelCallError
from agentflows.tasks.llm import Message, ModelReply, ModelRequest, ModelSettings
from agentflows.tasks.llm.endpoint import Endpoint
from agentflows.tasks.llm.openai import OpenAICompatibleProvider
from agentflows.tasks.llm.settings import ProviderSettings
from tests.fake_llm import FakeLLM, Reply
from tests.test_model_client import SCHEMA, error, provider

ANSWER = json.dumps({"answer": "The tide comes in twice a day, pulled by the Moon."})


def request(time_limit: float | None = None, max_tokens: int = 100) -> ModelRequest:
    return ModelRequest(
        label="test/generate/01-x",
        messages=(Message(role="user", content="Say it as JSON."),),
        settings=ModelSettings(provider="fake", max_tokens=max_tokens),
        output_schema=SCHEMA,
        time_limit=time_limit,
    )


def ask(p: OpenAICompatibleProvider, time_limit: float | None = None) -> ModelReply:
    return asyncio.run(p.complete(request(time_limit)))


def test_an_answer_that_keeps_streaming_is_never_cut_off_by_a_timeout() -> None:
    with FakeLLM() as fake:
        fake.script(Reply(content=ANSWER, delay=0.4, chunk_delay=0.15))  # ~10 chunks: 1.5 s in all

        reply = ask(provider(fake, read_timeout=0.6, idle_timeout=0.5, max_attempts=1))

    assert reply.text == ANSWER  # longer in all than both timeouts, but never quiet for as long as either
    assert fake.received[0].body["stream"] is True
    assert fake.received[0].body["stream_options"] == {"include_usage": True}
    assert (reply.usage.calls, reply.usage.prompt_tokens, reply.usage.completion_tokens) == (1, 120, 80)


def test_a_stream_that_stops_is_given_up_counted_and_kept() -> None:
    with FakeLLM() as fake:
        fake.script(Reply(content=ANSWER, stall_after=3, stall=2.0), Reply(content=ANSWER))

        reply = ask(provider(fake, idle_timeout=0.3, max_attempts=2))

    assert reply.text == ANSWER
    assert reply.usage.calls == 2
    assert reply.usage.completion_tokens == 3 + 80  # the stalled answer's three chunks, then the reported usage
    stalled = reply.failed_attempts[0]
    assert stalled.raw == ANSWER[:18]
    assert "timed out: stopped streaming, no new token for 0.3 s (idle_timeout)" in str(stalled.error)


def test_a_slow_server_never_opens_the_breaker() -> None:
    with FakeLLM() as fake:
        fake.script(*[Reply(content=ANSWER, stall_after=1, stall=1.0)] * 4)
        p = provider(fake, idle_timeout=0.2, max_attempts=2, breaker_threshold=2)

        for _ in range(2):
            with pytest.raises(ModelCallError, match="stopped streaming"):
                ask(p)
        reply = ask(p)  # four timeouts in a row, more than the threshold: the breaker is still closed

    assert reply.text and p.endpoint.breaker.opened_at is None


def test_a_server_that_is_down_does_open_it() -> None:
    with FakeLLM() as fake:
        fake.script(*[error(503)] * 2)
        p = provider(fake, max_attempts=2, breaker_threshold=2)

        with pytest.raises(ModelCallError, match="503"):
            ask(p)
        with pytest.raises(ModelCallError, match="circuit breaker"):
            ask(p)


def test_the_steps_time_limit_bounds_the_whole_call_with_its_retries() -> None:
    with FakeLLM() as fake:
        fake.script(*[Reply(content=ANSWER, chunk_delay=0.3)] * 3)  # each answer streams for ~3 s

        with pytest.raises(ModelCallError, match="did not finish within the step's timeout") as caught:
            ask(provider(fake, idle_timeout=1.0), time_limit=1.0)

    assert len(fake.received) == 1  # not retried: the time is gone
    assert caught.value.usage is not None and caught.value.usage.calls == 1
    assert caught.value.attempts[0].raw  # what streamed before the limit is kept


def test_a_failed_call_says_what_its_attempts_spent() -> None:
    with FakeLLM() as fake:
        fake.script(*[error(500)] * 3)

        with pytest.raises(ModelCallError) as caught:
            ask(provider(fake, max_attempts=3))

    assert caught.value.usage is not None and caught.value.usage.calls == 3
    assert [a.error is not None and "500" in a.error for a in caught.value.attempts] == [True] * 3


def test_no_more_calls_go_at_once_than_the_server_has_slots() -> None:
    with FakeLLM(slots=1, latency=0.2) as fake:
        p = provider(fake, max_concurrency=4)

        async def three() -> list[ModelReply]:
            return await asyncio.gather(*(p.complete(request()) for _ in range(3)))

        replies = asyncio.run(three())

    assert len(replies) == 3 and fake.max_overlap() == 1
    assert p.max_concurrency == 1 and p.context_window == 8192  # both from llama.cpp's /props


def test_a_configured_context_window_wins_over_the_servers() -> None:
    with FakeLLM(slots=2) as fake:
        p = provider(fake, context_window=4096)
        asyncio.run(p.prepare())

    assert (p.max_concurrency, p.context_window) == (2, 4096)


def test_a_server_that_refuses_streaming_is_asked_without_it_from_then_on() -> None:
    with FakeLLM() as fake:
        fake.script(error(400, "stream is not supported"))
        p = provider(fake)

        assert ask(p).text and ask(p).text

    assert [r.body.get("stream", False) for r in fake.received] == [True, False, False]


def test_a_server_that_answers_a_stream_request_whole_is_read_whole() -> None:
    with FakeLLM() as fake:
        body = {"choices": [{"message": {"content": ANSWER}, "finish_reason": "length"}], "usage": {}}
        fake.script(Reply(body=json.dumps(body)))

        reply = ask(provider(fake))

    assert (reply.text, reply.finish_reason) == (ANSWER, "length")


def test_a_cut_off_streamed_answer_says_so() -> None:
    with FakeLLM() as fake:
        fake.script(Reply(content=ANSWER[:20], finish_reason="length"))

        reply = ask(provider(fake))

    assert (reply.text, reply.finish_reason) == (ANSWER[:20], "length")


@pytest.mark.parametrize(
    ("base_url", "tries", "read_timeout"),
    [
        ("http://127.0.0.1:8080/v1", 2, 300.0),
        ("http://localhost:11434/v1", 2, 300.0),
        ("http://[::1]:8000/v1", 2, 300.0),
        ("https://api.openai.com/v1", 4, 120.0),
        ("http://10.0.0.5:8000/v1", 4, 120.0),
    ],
)
def test_defaults_suit_a_server_on_loopback(base_url: str, tries: int, read_timeout: float) -> None:
    settings = ProviderSettings(base_url=base_url)

    assert (settings.tries, settings.answer_timeout) == (tries, read_timeout)
    assert ProviderSettings(base_url=base_url, max_attempts=3, read_timeout=9).tries == 3


def test_an_endpoint_that_says_nothing_about_itself_keeps_the_configured_limits() -> None:
    with FakeLLM() as fake:  # no /props, no models list
        settings = ProviderSettings(base_url=fake.base_url, max_concurrency=3)
        p = OpenAICompatibleProvider("fake", settings, Endpoint("fake", settings))
        asyncio.run(p.prepare())

    assert (p.max_concurrency, p.context_window) == (3, 128_000)


def test_a_configured_seed_goes_with_every_call_and_latency_leaves_out_the_wait_for_a_slot() -> None:
    with FakeLLM(slots=1) as fake:
        fake.script(Reply(content=ANSWER, delay=0.5), Reply(content=ANSWER, delay=0.5))
        p = provider(fake, seed=7)

        async def two() -> list[ModelReply]:
            return await asyncio.gather(p.complete(request()), p.complete(request()))

        first, second = asyncio.run(two())

    assert [r.body["seed"] for r in fake.received] == [7, 7]
    assert max(first.usage.latency_seconds, second.usage.latency_seconds) < 0.9  # not 1 s: one waited for the slot


def test_a_stream_that_keeps_repeating_itself_is_stopped_early() -> None:
    runaway = '{"answer": "Tides are fun. ' + "And the stage ends with the lesson. " * 400 + '"}'
    with FakeLLM() as fake:
        fake.script(Reply(content=runaway))

        reply = ask(provider(fake, frequency_penalty=0.5))

    assert reply.finish_reason == "runaway"
    assert 1_500 <= len(reply.text) < len(runaway) / 2  # stopped, not read to the end
    assert fake.received[0].body["frequency_penalty"] == 0.5


def test_a_re_ask_is_a_new_draw_under_a_fixed_seed() -> None:
    with FakeLLM() as fake:
        p = provider(fake, seed=7)
        asyncio.run(p.complete(request().model_copy(update={"round": 2})))

    assert fake.received[0].body["seed"] == 9
