"""What a process learns about one model endpoint while it runs.

An `Endpoint` is shared by every call to the same provider and base URL in one
runtime: its circuit breaker (failures of one call count for all), the JSON
modes the server refused (asked once, then left out), the in-process limiter of
each event loop, and whether the server-scope limits were already set up.
"""

from __future__ import annotations

import asyncio
import weakref

from agentflows.tasks.llm.limits import ProcessLimiter
from agentflows.tasks.llm.settings import ProviderSettings
from agentflows.tasks.llm.transport import CircuitBreaker


class Endpoint:
    """Shared state of one provider's endpoint (see the module docstring)."""

    def __init__(self, provider: str, settings: ProviderSettings) -> None:
        self.provider = provider
        self.base_url = settings.base_url
        self.breaker = CircuitBreaker(settings.breaker_threshold, settings.breaker_reset_seconds)
        self.refused_json_modes: set[str] = set()
        """`response_format` types the server answered 400 to; asked through the prompt only from then on."""
        self.server_limits: tuple[int, int | None] | None = None
        """(max_concurrency, requests_per_minute) the server-scope limits were created or updated with."""
        self._local: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[int, int | None], ProcessLimiter]]
        self._local = weakref.WeakKeyDictionary()

    def local_limiter(self, settings: ProviderSettings) -> ProcessLimiter:
        """The in-process limiter of `settings` on the running event loop (semaphores belong to one loop)."""
        by_limits = self._local.setdefault(asyncio.get_running_loop(), {})
        key = (settings.max_concurrency, settings.requests_per_minute)
        if key not in by_limits:
            by_limits[key] = ProcessLimiter(settings.max_concurrency, settings.requests_per_minute)
        return by_limits[key]
