"""Server-scope model-call limits: Prefect global concurrency limits shared by every process.

`server`: Prefect global concurrency limits named `agentflows-llm-<provider>`
(concurrency) and `agentflows-llm-<provider>-rate` (requests per minute, as slot
decay). They hold across every flow, process and worker that uses the same
Prefect server, and are created or updated from the provider's settings on first
use. Each call asks the server for a slot, so the server's database is on the
path of every model call. Calls of one process first queue on the in-process
limiter of the same size (`agentflows.tasks.llm.limits`), so the server is asked
only for slots this process can use: its own calls hand slots on at once, and
only slots held by other processes make a call wait for the server's 423 ("all
slots taken") and retry.

The default (`limit_scope: auto`) is `server` inside a Prefect run that talks to a
configured Prefect API (`PREFECT_API_URL`), where workers in other processes may
call the same provider, and `process` otherwise: an ephemeral Prefect server runs
everything in this one process.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from uuid import UUID

import httpx
from prefect import get_client
from prefect.client.orchestration import PrefectClient
from prefect.context import FlowRunContext, TaskRunContext
from prefect.settings import PREFECT_API_URL

from agentflows.tasks.llm.endpoint import Endpoint
from agentflows.tasks.llm.limits import Limiter, ProcessLimiter
from agentflows.tasks.llm.settings import ProviderSettings

logger = logging.getLogger(__name__)


def limit_name(provider: str) -> str:
    """`agentflows-llm-<provider>`, with anything but letters, digits and dashes made a dash."""
    return "agentflows-llm-" + re.sub(r"[^a-z0-9-]+", "-", provider.lower()).strip("-")


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

    def __init__(self, endpoint: Endpoint, settings: ProviderSettings, local: ProcessLimiter) -> None:
        self.endpoint = endpoint
        self.local = local
        self._releasing: set[asyncio.Task[None]] = set()
        self.name = limit_name(endpoint.provider)
        self.max_concurrency = endpoint.concurrency(settings)
        self.rpm = settings.requests_per_minute
        s = settings
        # Long enough for the slowest call the client allows (a streamed answer runs as long as tokens keep
        # coming, within its step's timeout, 600 s by default); a dead holder's slot frees after it.
        self.lease_seconds = max(
            60.0,
            s.connect_timeout + s.write_timeout + s.answer_timeout + s.pool_timeout + s.retry_after_cap_seconds + 600,
        )

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
        if self.endpoint.server_limits == wanted:
            return
        await client.upsert_global_concurrency_limit_by_name(self.name, self.max_concurrency)
        if self.rpm:
            burst = max(1, self.rpm // 60)
            await client.upsert_global_concurrency_limit_by_name(
                f"{self.name}-rate", burst, slot_decay_per_second=self.rpm / 60
            )
        self.endpoint.server_limits = wanted


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


def limiter_for(endpoint: Endpoint, settings: ProviderSettings) -> Limiter:
    """The limiter of `settings` in its scope (see the module docstring)."""
    local = endpoint.local_limiter(settings)
    if resolved_scope(settings) == "server":
        return PrefectLimiter(endpoint, settings, local)
    return local


def resolved_scope(settings: ProviderSettings) -> str:
    """`server` or `process`: the configured scope, or what `auto` means here."""
    if settings.limit_scope != "auto":
        return settings.limit_scope
    in_run = FlowRunContext.get() is not None or TaskRunContext.get() is not None
    return "server" if in_run and PREFECT_API_URL.value() else "process"
