"""Concurrency and rate limits of model calls: the limiter interface and its in-process form.

A `Limiter` holds a call slot of one provider while a model call is in flight.
`ProcessLimiter` is a semaphore plus request pacing shared by the flows of one
event loop: no round trip, limits hold within this process only. The
server-scope limiter, which holds across every process using the same Prefect
server, is in `agentflows.tasks.llm.server_limits`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol


class Limiter(Protocol):
    """Holds a call slot of one provider while a model call is in flight."""

    def slot(self) -> AbstractAsyncContextManager[None]: ...

    async def drain(self) -> None:
        """Wait for work the limiter left running after a slot was given back."""


class ProcessLimiter:
    """A semaphore and request pacing shared by the flows of this process's event loop."""

    def __init__(self, max_concurrency: int, requests_per_minute: int | None = None) -> None:
        self.semaphore = asyncio.Semaphore(max_concurrency)
        self.interval = 60 / requests_per_minute if requests_per_minute else 0.0
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

    async def drain(self) -> None:
        """Nothing to wait for: a semaphore is given back at once."""
