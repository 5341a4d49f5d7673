"""The ideal baseline: plain asyncio + httpx making the same model calls, and nothing else.

It replays request bodies recorded from an agentflows run in the same dependency
order (each pipeline's decide call, then its generate calls; a pipeline whose agent
ran after others in a routed graph starts when their pipelines end) with the same
concurrency (each agent's own fan-out, and the provider's limit shared across
pipelines). No templates, no validation, no Prefect, no storage: the floor
agentflows is measured against, and for a graph its critical path.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Pipeline:
    """The calls of one agent run: one decide body, then generate bodies, `fan_out` at a time."""

    decide: dict[str, Any]
    generate: list[dict[str, Any]]
    fan_out: int
    agent: str = ""
    after: tuple[str, ...] = ()
    """Agents whose pipelines must end before this one starts."""


async def replay(base_url: str, pipelines: list[Pipeline], *, shared_limit: int) -> float:
    """Run every pipeline concurrently; return the wall time in seconds."""
    limit = asyncio.Semaphore(shared_limit)
    async with httpx.AsyncClient(
        base_url=base_url, timeout=120, limits=httpx.Limits(max_connections=shared_limit)
    ) as client:

        async def call(body: dict[str, Any]) -> None:
            # The same body agentflows sent, streamed (server-sent events) when it asked for a stream.
            async with limit, client.stream("POST", "/chat/completions", json=body) as response:
                response.raise_for_status()
                content = await response.aread()
                if not body.get("stream"):
                    json.loads(content)

        runs: dict[str, asyncio.Task[None]] = {}

        async def run(pipeline: Pipeline) -> None:
            for upstream in pipeline.after:
                await runs[upstream]
            await call(pipeline.decide)
            own = asyncio.Semaphore(pipeline.fan_out)

            async def bounded(body: dict[str, Any]) -> None:
                async with own:
                    await call(body)

            await asyncio.gather(*(bounded(b) for b in pipeline.generate))

        started = time.perf_counter()
        for index, pipeline in enumerate(pipelines):  # every task exists before any of them runs
            runs[pipeline.agent or str(index)] = asyncio.create_task(run(pipeline))
        await asyncio.gather(*runs.values())
        return time.perf_counter() - started


def pipelines_from(
    bodies: list[dict[str, Any]],
    fan_out: dict[str, int],
    generates_per_pipeline: int | None = None,
    after: Mapping[str, Sequence[str]] | None = None,
) -> list[Pipeline]:
    """Group recorded request bodies into pipelines; `fan_out` is each agent's generate concurrency.

    A decide request is the one whose schema has plan `items`; with one agent per
    pipeline the agent name (from the system prompt) groups them, and `after` names the
    agents each one waits for; otherwise `generates_per_pipeline` deals the generate
    calls out in order.
    """
    decides = [b for b in bodies if _is_decide(b)]
    generates = [b for b in bodies if not _is_decide(b)]
    if generates_per_pipeline is None:
        waits = after or {}
        by_agent = {
            _agent(b): Pipeline(b, [], fan_out[_agent(b)], _agent(b), tuple(waits.get(_agent(b), ()))) for b in decides
        }
        for body in generates:
            by_agent[_agent(body)].generate.append(body)
        return list(by_agent.values())
    n = generates_per_pipeline
    return [Pipeline(d, generates[i * n : (i + 1) * n], fan_out[_agent(d)]) for i, d in enumerate(decides)]


def _is_decide(body: dict[str, Any]) -> bool:
    """A plan's schema has `items`: in `response_format` when the server holds the answer to it, else in the
    prompt's field guide (`- items: a list of …`) or skeleton."""
    schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema") or {}
    if schema:
        return "items" in (schema.get("properties") or {})
    prompt = str(body["messages"][-1]["content"])
    return "\n- items: a list" in prompt or '"items": [' in prompt


def _agent(body: dict[str, Any]) -> str:
    return str(body["messages"][0]["content"]).split('"')[1]
