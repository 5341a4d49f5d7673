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
slots taken") and retry. A slot is held under a short lease, renewed while its
call runs and given back through a short outage of the server (`Lease`).

The default (`limit_scope: auto`) is `server` in a process that a worker or a runner
started for a flow run (`PREFECT__FLOW_RUN_ID` is set) and that talks to a configured
Prefect API (`PREFECT_API_URL`): there, other flow-run processes may call the same
provider. Everywhere else — `run_agent`, `route`, the CLI, however many runs they start
at once — it is `process`: the runs of one process share its in-process limiter, with
no round trip to the server per call (each slot request is on the call's critical path).
Several processes of one's own that call the same provider at once set `server`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from itertools import chain, repeat
from uuid import UUID

import httpx
from prefect import get_client
from prefect.client.orchestration import PrefectClient
from prefect.exceptions import ObjectAlreadyExists
from prefect.settings import PREFECT_API_URL

from agentflows.tasks.llm.endpoint import Endpoint
from agentflows.tasks.llm.limits import Limiter, ProcessLimiter
from agentflows.tasks.llm.settings import ProviderSettings
from agentflows.tasks.names import slug
from agentflows.tasks.prefect_api import api_error

logger = logging.getLogger(__name__)


def limit_name(provider: str) -> str:
    """`agentflows-llm-<provider>`, the provider's name as a slug."""
    return f"agentflows-llm-{slug(provider, 100)}"


LEASE_SECONDS = 60.0
"""How long the server keeps a slot for its holder unless the lease is renewed: the shortest lease
Prefect accepts. A slot is renewed every `RENEW_SECONDS` while its call runs, so a holder that dies
frees its slot within a minute (plus the server's sweep of expired leases, every 15 s)."""
RENEW_SECONDS = LEASE_SECONDS / 3
RELEASE_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0)
"""Pauses between attempts to give a slot back while the server fails; the last repeats until the lease ends."""


class PrefectLimiter:
    """Slots from Prefect global concurrency limits: shared by every process using the server.

    It calls the server's slot endpoints with the run's own client instead of
    `prefect.concurrency.asyncio.concurrency()`, which adds a lease-renewal thread
    and a queue service per limit. A slot is held under a short lease that a task of
    this event loop renews while the call runs; it is given back off the caller's
    critical path, again and again while the server fails (an outage of its
    database, a restart), until the server has it or the lease has ended. On a
    SQLite-backed Prefect server each slot request can wait for the database while
    other runs write (about 2 s per request was seen with four concurrent task
    runs); production servers use PostgreSQL.
    """

    def __init__(self, endpoint: Endpoint, settings: ProviderSettings, local: ProcessLimiter) -> None:
        self.endpoint = endpoint
        self.local = local
        self._releasing: set[asyncio.Task[None]] = set()
        self.name = limit_name(endpoint.provider)
        self.max_concurrency = endpoint.concurrency(settings)
        self.rpm = settings.requests_per_minute

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        held = AsyncExitStack()  # the local slot and the client, until the server slot is released
        try:
            await held.enter_async_context(self.local.slot())
            client = await held.enter_async_context(get_client())
            lease = await self._take(client)
        except BaseException as exc:
            await held.aclose()
            if isinstance(exc, httpx.HTTPError):
                raise api_error(exc) from exc  # not a failure of the model's endpoint
            raise
        renewing = asyncio.create_task(lease.keep(client))
        try:
            yield
        finally:
            renewing.cancel()
            # The caller has its answer: release in the background, off its critical path. The local
            # slot stays taken until the server has the slot back, so no call of this process asks
            # for a slot the server still counts as held.
            releasing = asyncio.create_task(self._release(held, client, lease))
            self._releasing.add(releasing)
            releasing.add_done_callback(self._releasing.discard)

    async def _take(self, client: PrefectClient) -> Lease:
        await self._ensure_limits(client)
        if self.rpm:
            await _until_granted(lambda: client.increment_concurrency_slots([f"{self.name}-rate"], 1, "rate_limit"))
        response = await _until_granted(
            lambda: client.increment_concurrency_slots_with_lease([self.name], 1, "concurrency", LEASE_SECONDS)
        )
        return Lease(UUID(response.json()["lease_id"]), time.monotonic() + LEASE_SECONDS)

    async def _release(self, held: AsyncExitStack, client: PrefectClient, lease: Lease) -> None:
        async with held:
            if not await lease.give_back(client):
                logger.warning("could not give a slot of %s back to the Prefect server; its lease has ended", self.name)

    async def drain(self) -> None:
        """Wait until every slot this limiter took is back with the server (or its lease has ended)."""
        while self._releasing:
            await asyncio.gather(*self._releasing, return_exceptions=True)

    async def _ensure_limits(self, client: PrefectClient) -> None:
        wanted = (self.max_concurrency, self.rpm)
        if self.endpoint.server_limits == wanted:
            return
        await _upsert(client, self.name, self.max_concurrency)
        if self.rpm:
            await _upsert(client, f"{self.name}-rate", max(1, self.rpm // 60), self.rpm / 60)
        self.endpoint.server_limits = wanted


@dataclass
class Lease:
    """The server's hold on one slot, and until when it lasts unless renewed."""

    id: UUID
    ends: float
    """`time.monotonic()` at which the server frees the slot on its own."""

    async def keep(self, client: PrefectClient) -> None:
        """Renew the lease every `RENEW_SECONDS` until cancelled (when the call is over)."""
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            try:
                await client.renew_concurrency_lease(self.id, LEASE_SECONDS)
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code == 410:
                    return  # the lease ran out during an outage: the server has freed the slot
                logger.debug("could not renew lease %s (%s); trying again", self.id, exc)
            except httpx.HTTPError as exc:
                logger.debug("could not renew lease %s (%s); trying again", self.id, exc)
            else:
                self.ends = time.monotonic() + LEASE_SECONDS

    async def give_back(self, client: PrefectClient) -> bool:
        """Release the slot, trying again while the server fails; False when the lease ended first."""
        pauses = chain(RELEASE_BACKOFF_SECONDS, repeat(RELEASE_BACKOFF_SECONDS[-1]))
        while True:
            try:
                await client.release_concurrency_slots_with_lease(self.id)
                return True
            except httpx.HTTPError as exc:
                pause = next(pauses)
                if time.monotonic() + pause >= self.ends:
                    return False
                logger.debug("could not release lease %s (%s); trying again in %s s", self.id, exc, pause)
                await asyncio.sleep(pause)


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


async def _upsert(client: PrefectClient, name: str, limit: int, decay: float | None = None) -> None:
    """Create or update a global concurrency limit, also when other runs create it at the same moment.

    Prefect's upsert reads, then creates: of runs that make their first call at once, all
    but one get 409 from the create; upserting again finds the limit and updates it.
    """
    try:
        await client.upsert_global_concurrency_limit_by_name(name, limit, slot_decay_per_second=decay)
    except ObjectAlreadyExists:
        await client.upsert_global_concurrency_limit_by_name(name, limit, slot_decay_per_second=decay)


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
    return "server" if started_for_a_flow_run() and PREFECT_API_URL.value() else "process"


def started_for_a_flow_run() -> bool:
    """Whether a worker or a runner started this process to run a flow run (of a deployment)."""
    return bool(os.environ.get(FLOW_RUN_PROCESS_VARIABLE))


FLOW_RUN_PROCESS_VARIABLE = "PREFECT__FLOW_RUN_ID"
"""Set by Prefect's workers and runners in the environment of the process they start for a flow run."""
