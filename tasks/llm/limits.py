"""Concurrency and rate limits per model provider.

Inside a Prefect run, the limits are Prefect global concurrency limits named
`agentflows-llm-<provider>` (concurrency) and `agentflows-llm-<provider>-rate`
(requests per minute, as slot decay), so they hold across every flow and worker
that talks to the same Prefect server. They are created or updated from the
provider's settings on first use. Outside a Prefect run (a script calling the
client directly) an in-process semaphore and pacing stand in.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import ClassVar, Protocol

from prefect import get_client
from prefect.concurrency.asyncio import concurrency, rate_limit
from prefect.context import FlowRunContext, TaskRunContext

from tasks.llm.config import ProviderConfig


class Limiter(Protocol):
    """Holds a call slot of one provider while a model call is in flight."""

    def slot(self) -> AbstractAsyncContextManager[None]: ...


def limit_name(provider: str) -> str:
    """`agentflows-llm-<provider>`, with anything but letters, digits and dashes made a dash."""
    return "agentflows-llm-" + re.sub(r"[^a-z0-9-]+", "-", provider.lower()).strip("-")


class PrefectLimiter:
    """Slots from Prefect global concurrency limits: shared by every process using the server."""

    _ensured: ClassVar[dict[str, tuple[int, int | None]]] = {}
    """Limits already created or updated by this process, with the settings used."""

    def __init__(self, config: ProviderConfig) -> None:
        self.name = limit_name(config.name)
        self.max_concurrency = config.max_concurrency
        self.rpm = config.requests_per_minute

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self._ensure_limits()
        if self.rpm:
            await rate_limit(f"{self.name}-rate", strict=True)
        async with concurrency(self.name, strict=True):
            yield

    async def _ensure_limits(self) -> None:
        wanted = (self.max_concurrency, self.rpm)
        if PrefectLimiter._ensured.get(self.name) == wanted:
            return
        async with get_client() as client:
            await client.upsert_global_concurrency_limit_by_name(self.name, self.max_concurrency)
            if self.rpm:
                burst = max(1, self.rpm // 60)
                await client.upsert_global_concurrency_limit_by_name(
                    f"{self.name}-rate", burst, slot_decay_per_second=self.rpm / 60
                )
        PrefectLimiter._ensured[self.name] = wanted


class LocalLimiter:
    """An in-process semaphore and request pacing, for calls made outside a Prefect run."""

    def __init__(self, config: ProviderConfig) -> None:
        self.semaphore = asyncio.Semaphore(config.max_concurrency)
        self.interval = 60 / config.requests_per_minute if config.requests_per_minute else 0.0
        self.next_start = 0.0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self.semaphore:
            if self.interval:
                now = time.monotonic()
                start = max(now, self.next_start)
                self.next_start = start + self.interval
                await asyncio.sleep(start - now)
            yield


def in_prefect_run() -> bool:
    """True inside a Prefect flow or task run (where the server's global limits apply)."""
    return FlowRunContext.get() is not None or TaskRunContext.get() is not None
