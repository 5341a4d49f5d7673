"""The HTTP connections and limiters model calls share while a run is in progress.

A `ModelSession` keeps one `httpx.AsyncClient` (one connection pool) per
provider configuration, and the limiter each configuration uses. The pipeline opens a session for each flow
run, so every call of the run reuses the same connections, and closes it when
the run ends; a call made outside any session gets a session of its own.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from functools import cache

import httpx

from agentflows.tasks.llm.config import ProviderConfig
from agentflows.tasks.llm.limits import Limiter, limiter_for

_current: ContextVar[ModelSession | None] = ContextVar("agentflows_model_session", default=None)


class ModelSession:
    """Clients and limiters by provider configuration."""

    def __init__(self) -> None:
        self.clients: dict[str, httpx.AsyncClient] = {}
        self.limiters: dict[str, Limiter] = {}

    def client(self, config: ProviderConfig) -> httpx.AsyncClient:
        """The shared client of `config`'s endpoint, with its timeouts and pool size."""
        key = _key(config)
        if key not in self.clients:
            t = config.timeouts
            self.clients[key] = httpx.AsyncClient(
                verify=_ssl_context(),
                timeout=httpx.Timeout(connect=t.connect, read=t.read, write=t.write, pool=t.pool),
                limits=httpx.Limits(
                    max_connections=config.max_concurrency, max_keepalive_connections=config.max_concurrency
                ),
            )
        return self.clients[key]

    def limiter(self, config: ProviderConfig) -> Limiter:
        """The limiter of `config` in its scope (`agentflows.tasks.llm.limits`)."""
        key = _key(config)
        if key not in self.limiters:
            self.limiters[key] = limiter_for(config)
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


def _key(config: ProviderConfig) -> str:
    return config.model_dump_json(include={"name", "base_url", "timeouts", "max_concurrency", "requests_per_minute"})


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
