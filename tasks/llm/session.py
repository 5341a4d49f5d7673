"""The HTTP connections and limiters model calls share while a run is in progress.

A `ModelSession` keeps one `httpx.AsyncClient` (one connection pool) per
endpoint configuration, and the limiter each endpoint uses. The pipeline opens a
session for each flow run, so every call of the run reuses the same connections,
and closes it when the run ends; a call made outside any session gets a session
of its own. Clients and limiters belong to one event loop, so they live here,
per run, and not in the runtime.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from functools import cache

import httpx

from agentflows.tasks.llm.endpoint import Endpoint
from agentflows.tasks.llm.limits import Limiter
from agentflows.tasks.llm.server_limits import limiter_for
from agentflows.tasks.llm.settings import ProviderSettings

_current: ContextVar[ModelSession | None] = ContextVar("agentflows_model_session", default=None)


class ModelSession:
    """Clients and limiters by endpoint configuration."""

    def __init__(self) -> None:
        self.clients: dict[str, httpx.AsyncClient] = {}
        self.limiters: dict[str, Limiter] = {}

    def client(self, settings: ProviderSettings) -> httpx.AsyncClient:
        """The shared client of `settings`' endpoint, with its timeouts and pool size."""
        key = _key(settings)
        if key not in self.clients:
            s = settings
            self.clients[key] = httpx.AsyncClient(
                verify=_ssl_context(),
                # Streamed answers are paced by the client itself (first token, then idle timeout);
                # httpx's read timeout is only the outer bound of one network read.
                timeout=httpx.Timeout(
                    connect=s.connect_timeout,
                    read=max(s.answer_timeout, s.idle_timeout),
                    write=s.write_timeout,
                    pool=s.pool_timeout,
                ),
                limits=httpx.Limits(max_connections=s.max_concurrency, max_keepalive_connections=s.max_concurrency),
            )
        return self.clients[key]

    def limiter(self, endpoint: Endpoint, settings: ProviderSettings) -> Limiter:
        """The limiter of `endpoint` in its scope (`agentflows.tasks.llm.server_limits`)."""
        key = endpoint.provider + "\0" + _key(settings)
        if key not in self.limiters:
            self.limiters[key] = limiter_for(endpoint, settings)
        return self.limiters[key]

    async def close(self) -> None:
        """Wait for the limiters' pending work (slots given back to the server), then close the clients."""
        for limiter in self.limiters.values():
            await limiter.drain()
        for client in self.clients.values():
            await client.aclose()
        self.clients.clear()


@cache
def _ssl_context() -> ssl.SSLContext:
    """One certificate-verifying TLS context for the process (building one costs ~40 ms)."""
    return httpx.create_ssl_context()


def _key(settings: ProviderSettings) -> str:
    return settings.model_dump_json(
        include={
            "base_url",
            "connect_timeout",
            "read_timeout",
            "idle_timeout",
            "write_timeout",
            "pool_timeout",
            "max_concurrency",
            "requests_per_minute",
        }
    )


@asynccontextmanager
async def model_session() -> AsyncIterator[ModelSession]:
    """Open a session for the calls made inside the block (reusing one already open)."""
    existing = _current.get()
    if existing is not None:
        yield existing
        return
    session = ModelSession()
    token = _current.set(session)
    try:
        yield session
    finally:
        _current.reset(token)
        await session.close()
