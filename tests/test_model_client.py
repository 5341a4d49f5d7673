"""The OpenAI-compatible client against a real HTTP server on loopback (no mocked httpx).

Transport behaviour: Retry-After, 5xx retries, read timeouts, fallback models,
4xx failing at once without leaking the key, the circuit breaker, JSON mode,
usage and cost.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from pydantic import SecretStr

from agentflows.blocks.model_provider import ModelProviderBlock
from agentflows.tasks.errors import ConfigurationError, ModelCallError
from agentflows.tasks.llm import Message, ModelReply, ModelRequest, ModelSettings
from agentflows.tasks.llm.endpoint import Endpoint
from agentflows.tasks.llm.openai import OpenAICompatibleProvider
from agentflows.tasks.llm.settings import ProviderSettings
from agentflows.tasks.llm.transport import backoff_delay, retry_after_seconds
from tests.conftest import REPO
from tests.fake_llm import FakeLLM, Reply

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
KEY = "sk-test-NOT-A-REAL-KEY-1234567890"


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


def error(status: int, message: str = "boom", **headers: str) -> Reply:
    return Reply(status=status, body=json.dumps({"error": {"message": message}}), headers=headers)


def provider(fake: FakeLLM, endpoint: Endpoint | None = None, **overrides: object) -> OpenAICompatibleProvider:
    """A provider for the fake server with fast backoff and 4 tries (a remote endpoint's default),
    and an endpoint of its own unless one is given."""
    values = {
        "base_url": fake.base_url,
        "model": "main",
        "backoff_seconds": 0.01,
        "backoff_cap_seconds": 0.05,
        "max_attempts": 4,
    }
    settings = ProviderSettings.model_validate({**values, **overrides})
    return OpenAICompatibleProvider("fake", settings, endpoint or Endpoint("fake", settings))


def ask(p: OpenAICompatibleProvider, **settings: object) -> ModelReply:
    request = ModelRequest(
        label="test/decide",
        messages=(Message(role="user", content="Say hello as JSON."),),
        settings=ModelSettings(provider="fake", **settings),  # type: ignore[arg-type]
        output_schema=SCHEMA,
    )
    return asyncio.run(p.complete(request))


def test_429_with_retry_after_waits_that_long_then_succeeds(fake: FakeLLM) -> None:
    fake.script(error(429, "slow down", **{"Retry-After": "2"}), Reply(content='{"answer": "hi"}'))

    reply = ask(provider(fake))

    assert reply.text == '{"answer": "hi"}'
    first, second = fake.received
    assert second.started - first.ended >= 1.9  # the server asked for 2 s; backoff alone is at most 0.05 s


def test_three_500s_then_success(fake: FakeLLM) -> None:
    fake.script(error(500), error(502), error(503), Reply(content='{"answer": "ok"}'))

    reply = ask(provider(fake))

    assert reply.text == '{"answer": "ok"}'
    assert len(fake.received) == 4


def test_a_hung_response_hits_the_read_timeout(fake: FakeLLM) -> None:
    fake.script(Reply(content='{"answer": "late"}', delay=30))

    with pytest.raises(ModelCallError, match=r"sent no answer within 0.3 s \(read_timeout\)"):  # not 30 s later
        ask(provider(fake, read_timeout=0.3, max_attempts=1))


def test_a_permanent_429_exhausts_attempts_then_uses_the_fallback_model(fake: FakeLLM) -> None:
    fake.script(*[error(429, "quota")] * 3, model="main")
    fake.script(Reply(content='{"answer": "from backup"}'), model="backup")

    reply = ask(provider(fake, max_attempts=3, fallback_models=("backup",)))

    assert fake.models() == ["main", "main", "main", "backup"]
    assert reply.model == "backup" and reply.text == '{"answer": "from backup"}'


def test_a_step_can_name_its_own_fallbacks(fake: FakeLLM) -> None:
    fake.script(*[error(503)] * 2, model="main")

    reply = ask(provider(fake, max_attempts=2, fallback_models=("ignored",)), fallbacks=("step-backup",))

    assert fake.models() == ["main", "main", "step-backup"] and reply.model == "step-backup"


def test_401_fails_at_once_and_the_error_never_shows_the_key(fake: FakeLLM) -> None:
    fake.script(error(401, f"Incorrect API key provided: {KEY}"))

    with pytest.raises(ModelCallError) as caught:
        ask(provider(fake, api_key=SecretStr(KEY), fallback_models=("backup",)))

    message = str(caught.value)
    assert "provider 'fake' model 'main'" in message and "401" in message
    assert KEY not in message and "***" in message
    assert len(fake.received) == 1  # no retry, no fallback
    assert fake.received[0].headers["Authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_other_client_errors_fail_at_once(fake: FakeLLM, status: int) -> None:
    fake.script(error(status, "bad request"))

    with pytest.raises(ModelCallError, match=rf"answered {status} "):
        ask(provider(fake))

    assert len(fake.received) == 1


def test_the_breaker_opens_fails_fast_and_closes_after_a_good_probe(fake: FakeLLM) -> None:
    p = provider(fake, max_attempts=3, breaker_threshold=3, breaker_reset_seconds=0.5)
    fake.script(*[error(500)] * 3)

    with pytest.raises(ModelCallError, match="no model answered"):
        ask(p)
    with pytest.raises(ModelCallError, match=r"circuit breaker .* is open"):
        ask(p)
    assert len(fake.received) == 3  # the second call never reached the server

    time.sleep(0.6)
    assert ask(p).text  # the probe succeeds (default reply) and closes the breaker
    assert ask(p).text
    assert len(fake.received) == 5


def test_json_modes_step_down_once_per_refusal_and_the_endpoint_remembers(fake: FakeLLM) -> None:
    fake.script(*[error(400, "unknown field: response_format")] * 3, Reply(content='{"answer": "plain"}'))

    p = provider(fake)
    reply = ask(p)
    ask(p)

    formats = [r.body.get("response_format", {}).get("type") for r in fake.received]
    assert formats == ["json_schema", "json_schema", "json_object", None, None]  # then asked once, not per call
    assert reply.text == '{"answer": "plain"}' and reply.usage.calls == 4  # the refused requests count too
    assert "shaped like this" in fake.received[3].body["messages"][-1]["content"]  # the prompt shows the shape


def test_json_schema_mode_sends_the_schema_in_strict_form(fake: FakeLLM) -> None:
    ask(provider(fake, json_mode="json_schema"))

    sent = fake.received[0].body["response_format"]["json_schema"]
    assert sent["strict"] is True
    assert sent["schema"] == {**SCHEMA, "additionalProperties": False}
    assert "shaped like this" not in fake.received[0].body["messages"][-1]["content"]  # the server holds the shape


def test_usage_cost_and_latency_are_recorded(fake: FakeLLM) -> None:
    fake.script(Reply(content='{"answer": "x"}', usage=(1000, 500), delay=0.2))

    reply = ask(provider(fake, price_per_1k_prompt_tokens=0.5, price_per_1k_completion_tokens=2.0))

    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.calls) == (1000, 500, 1)
    assert reply.usage.cost == pytest.approx(0.5 + 1.0)
    assert reply.usage.latency_seconds >= 0.2


def test_a_200_that_is_not_a_chat_completion_is_retried(fake: FakeLLM) -> None:
    fake.script(Reply(body="<html>proxy error</html>"), Reply(content='{"answer": "fine"}'))

    assert ask(provider(fake)).text == '{"answer": "fine"}'
    assert len(fake.received) == 2


def test_retry_after_reads_seconds_and_http_dates() -> None:
    soon = datetime.now(UTC) + timedelta(seconds=30)

    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds("0.5") == 0.5
    assert 28 <= (retry_after_seconds(format_datetime(soon, usegmt=True)) or 0) <= 30
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_backoff_is_full_jitter_under_a_cap() -> None:
    settings = ProviderSettings(base_url="http://x/v1", backoff_seconds=1.0, backoff_cap_seconds=5.0)
    rng = random.Random(7)

    delays = [backoff_delay(retry, settings, rng) for retry in range(8) for _ in range(50)]

    assert all(0 <= d <= 5.0 for d in delays)
    assert min(delays) < 0.1 and max(delays) > 4.0  # spread over the whole range, capped


def test_environment_configuration() -> None:
    config = ProviderSettings.from_env(
        {
            "AGENTFLOWS_LLM_BASE_URL": "http://localhost:8000/v1",
            "AGENTFLOWS_LLM_API_KEY": KEY,
            "AGENTFLOWS_LLM_MODEL": "qwen",
            "AGENTFLOWS_LLM_FALLBACK_MODELS": "a, b",
            "AGENTFLOWS_LLM_MAX_CONCURRENCY": "8",
        }
    )
    assert config is not None
    assert (config.model, config.fallback_models, config.max_concurrency) == ("qwen", ("a", "b"), 8)
    assert KEY not in repr(config)
    with pytest.raises(ConfigurationError, match="AGENTFLOWS_LLM_MAX_CONCURRENCY is invalid"):
        ProviderSettings.from_env({"AGENTFLOWS_LLM_BASE_URL": "http://x/v1", "AGENTFLOWS_LLM_MAX_CONCURRENCY": "lots"})
    with pytest.raises(ConfigurationError, match="AGENTFLOWS_LLM_READ_TIMEOUT is invalid"):
        ProviderSettings.from_env({"AGENTFLOWS_LLM_BASE_URL": "http://x/v1", "AGENTFLOWS_LLM_READ_TIMEOUT": "-1"})
    with pytest.raises(ConfigurationError, match=r"AGENTFLOWS_LLM_BASE_URL is invalid: must be an http:// or https://"):
        ProviderSettings.from_env({"AGENTFLOWS_LLM_BASE_URL": "localhost:8000/v1"})
    with pytest.raises(ConfigurationError) as refused:
        ProviderSettings.from_env({"AGENTFLOWS_LLM_BASE_URL": "ftp://agent:SECRET@host/v1"})
    assert "SECRET" not in str(refused.value) and "agent:***@host" in str(refused.value)
    assert ProviderSettings.from_env({}) is None  # no endpoint: the offline provider


def test_one_provider_setting_is_one_field_for_the_environment_the_block_and_the_readme() -> None:
    readme = (REPO / "README.md").read_text()

    assert set(ModelProviderBlock.model_fields) == set(ProviderSettings.model_fields)
    undocumented = [
        ProviderSettings.env_name(name)
        for name in ProviderSettings.model_fields
        if f"`{ProviderSettings.env_name(name)}`" not in readme
    ]
    assert undocumented == []
    every = {ProviderSettings.env_name(name): "7" for name in ("max_attempts", "breaker_threshold")}
    read = ProviderSettings.from_env({"AGENTFLOWS_LLM_BASE_URL": "http://x/v1", **every})
    assert read is not None and (read.max_attempts, read.breaker_threshold) == (7, 7)


def test_a_named_json_mode_the_server_refuses_is_an_error_that_says_so(fake: FakeLLM) -> None:
    fake.script(*[error(400, "Unable to generate parser for this template")] * 2)

    with pytest.raises(ModelCallError, match="refused the structured output json_mode 'json_schema' asks for"):
        ask(provider(fake, json_mode="json_schema"))

    assert len(fake.received) == 2  # with length bounds, then without: json_schema's two forms
