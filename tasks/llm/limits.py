"""Concurrency and rate limits per model provider, in one of two scopes.

`server`: Prefect global concurrency limits named `agentflows-llm-<provider>`
(concurrency) and `agentflows-llm-<provider>-rate` (requests per minute, as slot
decay). They hold across every flow, process and worker that uses the same
Prefect server, and are created or updated from the provider's settings on first
use. Each call asks the server for a slot, so the server's database is on the
path of every model call. Calls of one process first queue on a local semaphore
of the same size, so the server is asked only for slots this process can use:
its own calls hand slots on at once, and only slots held by other processes make
a call wait for the server's 423 ("all slots taken") and retry.

`process`: a semaphore and request pacing shared by every flow running in this
process (on one event loop), with no round trip.

The default (`limit_scope: auto`) is `server` inside a Prefect run that talks to a
configured Prefect API (`PREFECT_API_URL`), where workers in other processes may
call the same provider, and `process` otherwise: an ephemeral Prefect server runs
everything in this one process.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import ClassVar, Protocol
from uuid import UUID

import httpx
from prefect import get_client
from prefect.client.orchestration import PrefectClient
from prefect.context import FlowRunContext, TaskRunContext
from prefect.settings import PREFECT_API_URL

from agentflows.tasks.llm.config import ProviderConfig
from agentflows.tasks.names import slug

logger = logging.getLogger(__name__)


class Limiter(Protocol):
    """Holds a call slot of one provider while a model call is in flight."""

    def slot(self) -> AbstractAsyncContextManager[None]: ...

    async def drain(self) -> None:
        """Wait for work the limiter left running after a slot was given back."""


def limit_name(provider: str) -> str:
    """`agentflows-llm-<provider>`, the provider's name as a slug."""
    return f"agentflows-llm-{slug(provider, 100)}"


class PrefectLimiter:
    """Slots from Prefect global concurrency limits: shared by every process using the server.

    It calls the server's slot endpoints with the run's own client instead of
    `prefect.concurrency.asyncio.concurrency()`, which adds a lease-renewal thread
    and a queue service per limit. A slot is held under a lease long enough for the
    slowest call the client allows, so a process that dies holding one frees it
    when the lease runs out. On a SQLite-backed Prefect server each slot request
    can wait for the database while other runs write (about 2 s per request was
    seen with four concurrent task runs); production servers use PostgreSQL.
    """

    _ensured: ClassVar[dict[str, tuple[int, int | None]]] = {}
    """Limits already created or updated by this process, with the settings used."""

    def __init__(self, config: ProviderConfig, local: ProcessLimiter) -> None:
        self.local = local
        self._releasing: set[asyncio.Task[None]] = set()
        self.name = limit_name(config.name)
        self.max_concurrency = config.max_concurrency
        self.rpm = config.requests_per_minute
        t, r = config.timeouts, config.retry
        # Long enough for the slowest call the client allows; a dead holder's slot frees after it.
        self.lease_seconds = max(60.0, t.connect + t.write + t.read + t.pool + r.retry_after_cap_seconds)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        held = AsyncExitStack()  # the local slot and the client, until the server slot is released
        try:
            await held.enter_async_context(self.local.slot())
            client = await held.enter_async_context(get_client())
            await self._ensure_limits(client)
            if self.rpm:
                await _until_granted(lambda: client.increment_concurrency_slots([f"{self.name}-rate"], 1, "rate_limit"))
            response = await _until_granted(
                lambda: client.increment_concurrency_slots_with_lease([self.name], 1, "concurrency", self.lease_seconds)
            )
        except BaseException:
            await held.aclose()
            raise
        lease = UUID(response.json()["lease_id"])
        try:
            yield
        finally:
            # The caller has its answer: release in the background, off its critical path. The local
            # slot stays taken until the server has the slot back, so no call of this process asks
            # for a slot the server still counts as held.
            releasing = asyncio.create_task(self._release(held, client, lease))
            self._releasing.add(releasing)
            releasing.add_done_callback(self._releasing.discard)

    async def _release(self, held: AsyncExitStack, client: PrefectClient, lease: UUID) -> None:
        async with held:
            try:
                await client.release_concurrency_slots_with_lease(lease)
            except (httpx.HTTPError, OSError) as exc:  # the lease runs out on its own
                logger.warning("could not release a slot of %s (%s); it frees when its lease ends", self.name, exc)

    async def drain(self) -> None:
        """Wait until every slot this limiter took is back with the server."""
        while self._releasing:
            await asyncio.gather(*self._releasing, return_exceptions=True)

    async def _ensure_limits(self, client: PrefectClient) -> None:
        wanted = (self.max_concurrency, self.rpm)
        if PrefectLimiter._ensured.get(self.name) == wanted:
            return
        await client.upsert_global_concurrency_limit_by_name(self.name, self.max_concurrency)
        if self.rpm:
            burst = max(1, self.rpm // 60)
            await client.upsert_global_concurrency_limit_by_name(
                f"{self.name}-rate", burst, slot_decay_per_second=self.rpm / 60
            )
        PrefectLimiter._ensured[self.name] = wanted


SLOT_WAIT_CAP_SECONDS = 1.0
"""Longest pause before asking again for a slot the server refused.

The server's Retry-After estimates the whole queue's wait (average occupancy ×
waiting slots / limit), which is seconds for model calls; asking again within a
second at most frees a waiting call soon after a slot does, at the cost of a few
more small requests.
"""


async def _until_granted(request: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
    """Repeat a slot request while the server answers 423 (all slots taken), waiting as it says, at most 1 s."""
    while True:
        try:
            return await request()
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 423:
                raise
            hint = float(exc.response.headers.get("retry-after") or 0.1)
            await asyncio.sleep(min(hint, SLOT_WAIT_CAP_SECONDS))


class ProcessLimiter:
    """A semaphore and request pacing shared by the flows of this process's event loop."""

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

    async def drain(self) -> None:
        """Nothing to wait for: a semaphore is given back at once."""


_process_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, ProcessLimiter]] = (
    weakref.WeakKeyDictionary()
)


def limiter_for(config: ProviderConfig) -> Limiter:
    """The limiter of `config` in its scope (see the module docstring)."""
    by_key = _process_limiters.setdefault(asyncio.get_running_loop(), {})
    key = config.model_dump_json(include={"name", "base_url", "max_concurrency", "requests_per_minute"})
    if key not in by_key:
        by_key[key] = ProcessLimiter(config)
    if resolved_scope(config) == "server":
        return PrefectLimiter(config, local=by_key[key])
    return by_key[key]


def resolved_scope(config: ProviderConfig) -> str:
    """`server` or `process`: the configured scope, or what `auto` means here."""
    if config.limit_scope != "auto":
        return config.limit_scope
    in_run = FlowRunContext.get() is not None or TaskRunContext.get() is not None
    return "server" if in_run and PREFECT_API_URL.value() else "process"
