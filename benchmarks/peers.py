"""Peers: the e-book pipeline as a user would write it without agentflows, run in the same benchmark.

    python -m benchmarks.peers record            one agentflows e-book run; its model calls into BENCH_RECORDED
    python -m benchmarks.peers agentflows        agentflows measured the same way as the peers
    python -m benchmarks.peers prefect           plain Prefect 3 tasks + the `openai` client
    python -m benchmarks.peers pydantic-ai       pydantic-ai agents with its `PrefectDurability` capability
    python -m benchmarks.peers crewai            a crewAI Flow (runs in .venv-crewai: crewAI pins pydantic < 2.13)

Every peer makes the calls of the recorded agentflows run (BENCH_RECORDED: the decide
body, then the generate bodies) against the same fake model server, so it gets the
same answers: decide, parse and validate the plan, then one generate per chapter, 4 at
a time (the e-book's fan-out) under the provider's limit (AGENTFLOWS_LLM_MAX_CONCURRENCY),
each answer parsed and validated. Results are persisted and cached where the peer
can: Prefect tasks with `INPUTS` caching in a local result folder (a fresh folder per
cold run), as agentflows runs; crewAI has state persistence (`@persist`) but no result
cache, so its second run calls the model again. Each peer prints one JSON line:
cold and cached wall seconds, model calls of each, and the ideal of the same calls.

Only the standard library and httpx are imported at module level: the crewAI peer runs
in an environment without agentflows or Prefect.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx

from benchmarks.ideal import Pipeline, _is_decide, replay

FAN_OUT = 4
"""The e-book agent's generate concurrency (agent_definitions/ebook.yaml)."""
EBOOK: dict[str, Any] = {"topic": "How tides work", "chapters": 4}


def recorded() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The decide body and the generate bodies of the recorded agentflows run."""
    bodies = json.loads(Path(os.environ["BENCH_RECORDED"]).read_text())
    for body in bodies:  # the peers ask for whole answers; the answers are the same
        body.pop("stream", None)
        body.pop("stream_options", None)
    decide = next(b for b in bodies if _is_decide(b))
    return decide, [b for b in bodies if b is not decide]


def plan_items(content: str) -> list[dict[str, str]]:
    """The chapters of a decide answer; raises when it is not the plan the schema asks for."""
    plan = json.loads(content)
    items = plan["items"]
    if not isinstance(plan["title"], str) or not all(isinstance(i["title"], str) for i in items):
        raise ValueError(f"not a plan: {content[:200]!r}")
    return list(items)


def chapter_body(content: str) -> str:
    """The Markdown of a generate answer; raises when it has none."""
    body = json.loads(content)["body"]
    if not isinstance(body, str):
        raise ValueError(f"not a chapter: {content[:200]!r}")
    return body


def model_calls() -> int:
    return len(httpx.get(os.environ["BENCH_FAKE_CONTROL"] + "/received", timeout=30).json())


def reset_calls() -> None:
    httpx.post(os.environ["BENCH_FAKE_CONTROL"] + "/reset", timeout=30)


def limit() -> int:
    return int(os.environ["AGENTFLOWS_LLM_MAX_CONCURRENCY"])


async def fanned_out(make: Callable[[int], Awaitable[Any]], count: int) -> list[Any]:
    """`make(i)` for each chapter, `FAN_OUT` at a time."""
    own = asyncio.Semaphore(FAN_OUT)

    async def bounded(index: int) -> Any:
        async with own:
            return await make(index)

    return await asyncio.gather(*(bounded(i) for i in range(count)))


def measure(run: Callable[[Path], Coroutine[Any, Any, Any]], repeats: int) -> dict[str, Any]:
    """Cold (fresh result folder) then identical runs of `run`, and the ideal of the same calls."""
    decide, generates = recorded()
    rows = []
    asyncio.run(run(Path(tempfile.mkdtemp(prefix="peer-warm-"))))  # imports, clients: paid once, as for agentflows
    for _ in range(repeats):
        results = Path(tempfile.mkdtemp(prefix="peer-results-"))
        reset_calls()
        started, cpu = time.perf_counter(), time.process_time()
        asyncio.run(run(results))
        cold, cold_cpu = time.perf_counter() - started, time.process_time() - cpu
        cold_calls = model_calls()
        reset_calls()
        started, cpu = time.perf_counter(), time.process_time()
        asyncio.run(run(results))
        cached, cached_cpu = time.perf_counter() - started, time.process_time() - cpu
        cached_calls = model_calls()
        pipeline = Pipeline(decide, generates, FAN_OUT)
        ideal = asyncio.run(replay(os.environ["AGENTFLOWS_LLM_BASE_URL"], [pipeline], shared_limit=limit()))
        rows.append(
            {
                **{"cold": cold, "cached": cached, "ideal": ideal},
                **{"cold_calls": cold_calls, "cached_calls": cached_calls},
                **{"cold_cpu": cold_cpu, "cached_cpu": cached_cpu},  # CPU seconds of this process, all threads
            }
        )
    return {"rows": rows}


# -- agentflows: the recording ------------------------------------------------------------------


def record(_: int) -> dict[str, Any]:
    """One cold agentflows e-book run; its request bodies go to BENCH_RECORDED."""
    from agentflows import run_agent_async
    from benchmarks.scenarios import fresh_home

    fresh_home()
    reset_calls()
    asyncio.run(run_agent_async("ebook", **EBOOK))
    bodies = httpx.get(os.environ["BENCH_FAKE_CONTROL"] + "/received", timeout=30).json()
    Path(os.environ["BENCH_RECORDED"]).write_text(json.dumps(bodies))
    return {"calls": len(bodies)}


def agentflows_peer(repeats: int) -> dict[str, Any]:
    """agentflows itself, measured the same way: `run_agent_async("ebook", ...)`, cold then cached."""
    from agentflows import run_agent_async
    from benchmarks.scenarios import cold_cache, fresh_home

    fresh_home()
    last: list[Path] = []

    async def run(results: Path) -> Any:
        if results not in last:  # a new folder: measure() asks for a cold run
            cold_cache()
            last[:] = [results]
        return await run_agent_async("ebook", **EBOOK)

    return measure(run, repeats)


# -- (a) plain Prefect tasks + openai ---------------------------------------------------------------


def prefect_peer(repeats: int) -> dict[str, Any]:
    """decide and generate as Prefect tasks calling `openai.AsyncOpenAI`, in one async flow."""
    from openai import AsyncOpenAI
    from prefect import flow, task
    from prefect.cache_policies import INPUTS

    decide_body, generate_bodies = recorded()
    client = AsyncOpenAI(base_url=os.environ["AGENTFLOWS_LLM_BASE_URL"], api_key="bench", max_retries=3)
    shared = asyncio.Semaphore(limit())

    async def complete(body: dict[str, Any]) -> str:
        async with shared:
            answer = await client.chat.completions.create(**body)
        return answer.choices[0].message.content or ""

    @task(persist_result=True, cache_policy=INPUTS, retries=2)
    async def decide(body: dict[str, Any]) -> list[dict[str, str]]:
        return plan_items(await complete(body))

    @task(persist_result=True, cache_policy=INPUTS, retries=2)
    async def generate(body: dict[str, Any], chapter: dict[str, str]) -> str:
        return chapter_body(await complete(body))

    @flow(name="ebook-prefect-peer")
    async def ebook(results: str) -> list[str]:
        storage = Path(results)  # a local folder, as agentflows' steps use
        items = await decide.with_options(result_storage=storage)(decide_body)
        write = generate.with_options(result_storage=storage)
        return await fanned_out(lambda i: write(generate_bodies[i % len(generate_bodies)], items[i]), len(items))

    async def run(results: Path) -> Any:
        nonlocal client, shared
        client = AsyncOpenAI(base_url=os.environ["AGENTFLOWS_LLM_BASE_URL"], api_key="bench", max_retries=3)
        shared = asyncio.Semaphore(limit())  # a semaphore belongs to one event loop
        return await ebook(str(results))

    return measure(run, repeats)


# -- (b) pydantic-ai on Prefect -------------------------------------------------------------------------


def pydantic_ai_peer(repeats: int) -> dict[str, Any]:
    """Two pydantic-ai agents (decide, generate) with `PrefectDurability`: each model request a Prefect task.

    The default task cache policy includes the flow run's id, so a new run never reuses a
    result; the policy here leaves it out (inputs + task source), as agentflows' steps do.
    """
    from prefect import flow
    from prefect.cache_policies import TASK_SOURCE
    from pydantic_ai import Agent
    from pydantic_ai.durable_exec.prefect import PrefectDurability
    from pydantic_ai.durable_exec.prefect._cache_policies import PrefectAgentInputs
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider
    from pydantic_ai.settings import ModelSettings

    decide_body, generate_bodies = recorded()

    def agent(name: str, body: dict[str, Any], results: str) -> Agent[None, str]:
        provider = OpenAIProvider(base_url=os.environ["AGENTFLOWS_LLM_BASE_URL"], api_key="bench")
        settings = ModelSettings(
            temperature=body["temperature"],
            max_tokens=body["max_tokens"],
            extra_body={"response_format": body["response_format"]} if "response_format" in body else None,
        )
        durability = PrefectDurability(
            model_task_config={
                "cache_policy": PrefectAgentInputs() + TASK_SOURCE,
                "result_storage": Path(results),
                "retries": 2,
            }
        )
        return Agent(
            OpenAIChatModel("bench-model", provider=provider),
            name=name,
            instructions=body["messages"][0]["content"],
            model_settings=settings,
            capabilities=[durability],
        )

    @flow(name="ebook-pydantic-ai-peer")
    async def ebook(results: str) -> list[str]:
        shared = asyncio.Semaphore(limit())
        decide, generate = agent("decide", decide_body, results), agent("generate", generate_bodies[0], results)

        async def ask(which: Agent[None, str], body: dict[str, Any]) -> str:
            async with shared:
                return (await which.run(body["messages"][-1]["content"])).output

        items = plan_items(await ask(decide, decide_body))
        return await fanned_out(
            lambda i: _then(ask(generate, generate_bodies[i % len(generate_bodies)]), chapter_body), len(items)
        )

    return measure(lambda results: ebook(str(results)), repeats)


async def _then(answer: Awaitable[str], parse: Callable[[str], Any]) -> Any:
    return parse(await answer)


# -- (c) crewAI Flows ------------------------------------------------------------------------------------


def crewai_peer(repeats: int) -> dict[str, Any]:
    """A crewAI Flow: `@start` decide, `@listen` generate (4 at a time), state persisted with `@persist`."""
    os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("CREWAI_DISABLE_TRACKING", "true")
    os.environ.setdefault("OTEL_SDK_DISABLED", "true")
    from crewai import LLM
    from crewai.flow.flow import Flow, listen, start
    from crewai.flow.persistence import SQLiteFlowPersistence, persist
    from pydantic import BaseModel

    decide_body, generate_bodies = recorded()

    class Book(BaseModel):
        items: list[dict[str, str]] = []
        chapters: list[str] = []

    def llm(body: dict[str, Any]) -> LLM:
        return LLM(
            model="openai/bench-model",
            base_url=os.environ["AGENTFLOWS_LLM_BASE_URL"],
            api_key="bench",
            temperature=body["temperature"],
            max_tokens=body["max_tokens"],
            additional_params={"response_format": body["response_format"]} if "response_format" in body else {},
        )

    def flow_class(results: Path, shared: asyncio.Semaphore) -> type[Flow[Book]]:
        @persist(SQLiteFlowPersistence(str(results / "flows.db")))
        class Ebook(Flow[Book]):
            @start()
            async def decide(self) -> None:
                async with shared:
                    self.state.items = plan_items(str(await llm(decide_body).acall(decide_body["messages"])))

            @listen(decide)
            async def generate(self) -> None:
                async def write(i: int) -> str:
                    body = generate_bodies[i % len(generate_bodies)]
                    async with shared:
                        return chapter_body(str(await llm(body).acall(body["messages"])))

                self.state.chapters = await fanned_out(write, len(self.state.items))

        return Ebook

    async def run(results: Path) -> Any:
        book = flow_class(results, asyncio.Semaphore(limit()))()  # a semaphore belongs to one event loop
        return await book.kickoff_async()

    return measure(run, repeats)


PEERS: dict[str, Callable[[int], dict[str, Any]]] = {
    "record": record,
    "agentflows": agentflows_peer,
    "prefect": prefect_peer,
    "pydantic-ai": pydantic_ai_peer,
    "crewai": crewai_peer,
}


def main() -> None:
    parser = argparse.ArgumentParser(description="run one peer of the e-book pipeline and print its measurements")
    parser.add_argument("peer", choices=sorted(PEERS))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    measured = PEERS[args.peer](args.repeats)
    measured["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(measured))
    sys.stdout.flush()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
