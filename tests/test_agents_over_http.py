"""Every shipped agent through the real OpenAI-compatible client, against the fake server.

The provider is configured the way a user without a Prefect server does it:
`AGENTFLOWS_LLM_*` environment variables. Runs happen on the Prefect test server,
so the per-provider limit is a Prefect global concurrency limit.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect import get_client

from agentflows import open_store, run_agent
from agentflows.blocks.model_provider import ModelProviderBlock
from agentflows.tasks.llm.endpoint import Endpoint
from agentflows.tasks.llm.server_limits import PrefectLimiter, limit_name, resolved_scope
from agentflows.tasks.llm.settings import ProviderSettings
from tests.conftest import SHIPPED_AGENTS
from tests.fake_llm import FakeLLM, Reply
from tests.offline_steps import INPUTS

pytestmark = pytest.mark.usefixtures("prefect_server")
PRICES = {"AGENTFLOWS_LLM_PRICE_PROMPT": "0.5", "AGENTFLOWS_LLM_PRICE_COMPLETION": "1.5"}
COST_PER_CALL = 120 * 0.5 / 1000 + 80 * 1.5 / 1000  # the fake server reports 120 + 80 tokens a call


@pytest.fixture
def fake_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        monkeypatch.setenv("AGENTFLOWS_LLM_BASE_URL", fake.base_url)
        monkeypatch.setenv("AGENTFLOWS_LLM_MODEL", "fake-model")
        monkeypatch.setenv("AGENTFLOWS_LLM_API_KEY", "sk-fake-key-for-tests")
        # The test server is SQLite-backed: server-scoped slots wait on its database (see agentflows.tasks.llm.limits).
        monkeypatch.setenv("AGENTFLOWS_LLM_LIMIT_SCOPE", "process")
        for name, value in PRICES.items():
            monkeypatch.setenv(name, value)
        yield fake


@pytest.mark.parametrize("agent", SHIPPED_AGENTS)
def test_every_shipped_agent_runs_against_an_openai_compatible_server(agent: str, fake_llm: FakeLLM) -> None:
    result = run_agent(agent, **INPUTS[agent])

    assert result.offline is False
    assert result.model_calls == len(fake_llm.received) == len(result.steps) - 2
    assert set(fake_llm.models()) == {"fake-model"}
    lineage = open_store().get(result.content_id).lineage
    model_steps = [p for p in lineage if p["step"] in ("decide", "generate")]
    assert len(model_steps) == result.model_calls
    for provenance in model_steps:
        assert (provenance["provider"], provenance["model"], provenance["offline"]) == ("openai", "fake-model", False)
        usage = provenance["usage"]
        assert (usage["prompt_tokens"], usage["completion_tokens"], usage["calls"]) == (120, 80, 1)
        assert usage["cost"] == pytest.approx(COST_PER_CALL)
        assert provenance["attempts"][0]["method"] == "strict"
    page = Path(result.location.removeprefix("file://")).read_text()
    assert "no language model was called" not in page


def test_user_inputs_reach_the_model_as_delimited_data(fake_llm: FakeLLM) -> None:
    run_agent("ebook", topic="Tides\u200b and\u202e moons", chapters=1)

    prompt = fake_llm.received[0].body["messages"][1]["content"]
    assert "«Tides and moons»" in prompt  # zero-width and bidi-override characters removed, text delimited
    assert "Fields of the answer:\n- title: text, 1 to 20 words\n- items: a list of exactly 1 entry" in prompt
    assert fake_llm.received[0].body["response_format"]["type"] == "json_schema"  # the server holds the shape


def test_a_bad_answer_is_reasked_and_every_attempt_is_kept(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply(content="Sure! Here is your outline: chapter one, chapter two."))

    result = run_agent("ebook", topic="Glaciers", chapters=1)

    decide = open_store().get(result.content_id).lineage[0]
    assert [a["method"] for a in decide["attempts"]] == [None, "reasked+strict"]
    assert decide["attempts"][0]["error"].startswith("the answer holds no JSON object")
    assert decide["usage"]["calls"] == 2
    reask = fake_llm.received[1].body["messages"]
    assert [m["role"] for m in reask] == ["system", "user", "assistant", "user"]


def test_a_degraded_draft_is_flagged_in_the_run_result(fake_llm: FakeLLM, definitions: Path) -> None:
    yaml = definitions / "ebook.yaml"
    yaml.write_text(yaml.read_text().replace("    concurrency: 4\n", "    concurrency: 4\n    on_invalid: degrade\n"))
    fake_llm.script(Reply(), *[Reply(content="Glaciers are slow rivers of ice.")] * 3)  # decide, then generate x3

    result = run_agent("ebook", definitions=definitions, topic="Glaciers", chapters=1)

    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("generate 01-")
    assert "degraded: no answer fit the schema after 3 attempts" in result.warnings[0]
    assert "Glaciers are slow rivers of ice." in Path(result.files["index.md"].removeprefix("file://")).read_text()


def test_the_process_concurrency_limit_holds(fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTFLOWS_LLM_MAX_CONCURRENCY", "2")
    fake_llm.latency = 0.3

    run_agent("ebook", topic="Rivers", chapters=4)  # generate would make 4 calls at once without the limit

    assert fake_llm.max_overlap() == 2


async def hold_server_slots(slots: int, limit: int) -> Any:
    """Take `slots` of the provider's server-scope limit under a lease of their own, as a run elsewhere would."""
    async with get_client() as client:
        await client.upsert_global_concurrency_limit_by_name(limit_name("openai"), limit)
        response = await client.increment_concurrency_slots_with_lease(
            [limit_name("openai")], slots, "concurrency", 120
        )
        return response.json()["lease_id"]


async def release_server_slots(lease: Any) -> None:
    async with get_client() as client:
        await client.release_concurrency_slots_with_lease(lease)


@pytest.mark.parametrize("held", [1, 2])
def test_server_scope_leaves_a_run_only_the_slots_other_processes_do_not_hold(
    fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch, held: int
) -> None:
    monkeypatch.setenv("AGENTFLOWS_LLM_MAX_CONCURRENCY", "3")
    monkeypatch.setenv("AGENTFLOWS_LLM_LIMIT_SCOPE", "server")
    fake_llm.latency = 0.3
    lease = asyncio.run(hold_server_slots(held, limit=3))
    try:
        run_agent("ebook", topic="Rivers", chapters=4)  # 3 calls at once with every slot free
    finally:
        asyncio.run(release_server_slots(lease))

    # A slot is reused once the SQLite-backed test server has it back, which may come after the next call.
    assert 1 <= fake_llm.max_overlap() <= 3 - held


def test_server_scope_holds_a_run_back_while_other_processes_hold_every_slot(
    fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTFLOWS_LLM_MAX_CONCURRENCY", "2")
    monkeypatch.setenv("AGENTFLOWS_LLM_LIMIT_SCOPE", "server")
    lease = asyncio.run(hold_server_slots(2, limit=2))
    released: list[float] = []

    def release_later() -> None:
        time.sleep(3)
        released.append(time.monotonic())
        asyncio.run(release_server_slots(lease))

    releaser = threading.Thread(target=release_later)
    releaser.start()
    try:
        run_agent("quiz", topic="Rivers", questions=1)
    finally:
        releaser.join()

    assert min(call.started for call in fake_llm.received) >= released[0]


def test_server_scope_is_a_prefect_global_concurrency_limit(fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTFLOWS_LLM_MAX_CONCURRENCY", "3")
    monkeypatch.setenv("AGENTFLOWS_LLM_REQUESTS_PER_MINUTE", "600")
    monkeypatch.setenv("AGENTFLOWS_LLM_LIMIT_SCOPE", "auto")
    # What a worker sets in the process it starts for a flow run: with a configured API, server scope.
    monkeypatch.setenv("PREFECT__FLOW_RUN_ID", str(uuid.uuid4()))

    run_agent("quiz", topic="Rivers", questions=1)

    async def limits() -> tuple[Any, Any]:
        async with get_client() as client:
            name = limit_name("openai")
            return (
                await client.read_global_concurrency_limit_by_name(name),
                await client.read_global_concurrency_limit_by_name(f"{name}-rate"),
            )

    concurrency, rate = asyncio.run(limits())
    assert concurrency.limit == 3 and concurrency.active_slots == 0
    assert rate.slot_decay_per_second == 10.0


def test_a_definition_can_name_a_saved_provider_block(fake_llm: FakeLLM, definitions: Path) -> None:
    ModelProviderBlock(
        base_url=fake_llm.base_url, model="block-model", price_per_1k_prompt_tokens=1.0, limit_scope="process"
    ).save("fake-endpoint", overwrite=True)
    yaml = definitions / "quiz.yaml"
    yaml.write_text(yaml.read_text().replace("model:\n", "model:\n  provider: fake-endpoint\n", 1))

    result = run_agent("quiz", definitions=definitions, topic="Tides", questions=1)

    assert set(fake_llm.models()) == {"block-model"}
    lineage = open_store().get(result.content_id).lineage
    assert lineage[0]["provider"] == "fake-endpoint"
    assert lineage[0]["usage"]["cost"] == pytest.approx(120 / 1000)


def test_offline_results_are_never_served_for_a_real_model(fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTFLOWS_LLM_BASE_URL")
    offline = run_agent("quiz", topic="Tides", questions=1)
    monkeypatch.setenv("AGENTFLOWS_LLM_BASE_URL", fake_llm.base_url)

    real = run_agent("quiz", topic="Tides", questions=1)

    assert offline.offline and offline.model_calls == 2
    assert not real.offline and real.model_calls == 2 and real.cache_hits == 0
    assert len(fake_llm.received) == 2


def test_runs_that_make_their_first_call_at_once_all_get_a_slot() -> None:
    settings = ProviderSettings(base_url="http://127.0.0.1:9/v1", max_concurrency=3, limit_scope="server")
    provider = f"first-{uuid.uuid4().hex[:8]}"  # a limit no run has created yet

    async def first_call() -> None:
        endpoint = Endpoint(provider, settings)  # a fresh process's view: it has not set the limit up
        limiter = PrefectLimiter(endpoint, settings, endpoint.local_limiter(settings))
        async with limiter.slot():
            pass
        await limiter.drain()

    async def at_once() -> list[Any]:
        return await asyncio.gather(*(first_call() for _ in range(12)), return_exceptions=True)

    assert [r for r in asyncio.run(at_once()) if r is not None] == []  # each created or found the limit

    async def limit() -> Any:
        async with get_client() as client:
            return await client.read_global_concurrency_limit_by_name(limit_name(provider))

    found = asyncio.run(limit())
    assert (found.limit, found.active_slots) == (3, 0)


def test_auto_scope_is_the_process_for_runs_this_process_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    auto = ProviderSettings(base_url="http://127.0.0.1:9/v1", limit_scope="auto")
    monkeypatch.delenv("PREFECT__FLOW_RUN_ID", raising=False)

    started_here = resolved_scope(auto)
    monkeypatch.setenv("PREFECT__FLOW_RUN_ID", str(uuid.uuid4()))
    started_by_a_worker = resolved_scope(auto)
    chosen = resolved_scope(auto.model_copy(update={"limit_scope": "process"}))

    assert (started_here, started_by_a_worker, chosen) == ("process", "server", "process")


def test_a_run_started_here_asks_the_server_for_no_model_call_slot(
    fake_llm: FakeLLM, definitions: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PREFECT__FLOW_RUN_ID", raising=False)
    provider = f"auto-scope-{uuid.uuid4().hex[:8]}"
    ModelProviderBlock(base_url=fake_llm.base_url, model="block-model", limit_scope="auto").save(provider)
    yaml = definitions / "quiz.yaml"
    yaml.write_text(yaml.read_text().replace("model:\n", f"model:\n  provider: {provider}\n", 1))

    run_agent("quiz", definitions=definitions, topic="Tides", questions=1)

    async def limits() -> list[str]:
        async with get_client() as client:
            return [limit.name for limit in await client.read_global_concurrency_limits(limit=200, offset=0)]

    assert len(fake_llm.received) == 2 and limit_name(provider) not in asyncio.run(limits())
