"""What a process learns about one model endpoint while it runs.

An `Endpoint` is shared by every call to the same provider and base URL in one
runtime: its circuit breaker (failures of one call count for all), the
structured-output formats and streaming the server refused (asked once, then
left out), what the server says about itself (`ServerInfo`: its slots and
context window, asked once), and the in-process limiter of each event loop.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from typing import Any

import httpx

from agentflows.tasks.llm.limits import ProcessLimiter
from agentflows.tasks.llm.settings import DEFAULT_CONTEXT_WINDOW, ProviderSettings
from agentflows.tasks.llm.structured import ResponseFormat, ladder
from agentflows.tasks.llm.transport import CircuitBreaker

PROBE_TIMEOUT = 5.0


@dataclass(frozen=True)
class ServerInfo:
    """What an OpenAI-compatible server says about itself, where it says it (None: it does not)."""

    slots: int | None = None
    """Requests it answers at once (llama.cpp: `/props` `total_slots`); more only queue there."""
    context_window: int | None = None
    """Tokens per request (llama.cpp: `/props` per-slot `n_ctx`; vLLM: `/v1/models` `max_model_len`)."""


class Endpoint:
    """Shared state of one provider's endpoint (see the module docstring)."""

    def __init__(self, provider: str, settings: ProviderSettings) -> None:
        self.provider = provider
        self.base_url = settings.base_url
        self.breaker = CircuitBreaker(settings.breaker_threshold, settings.breaker_reset_seconds)
        self.refused_json_modes: set[str] = set()
        """Names of the `ResponseFormat`s the server refused; never asked again in this process."""
        self.stream_refused = False
        self.server: ServerInfo | None = None
        self.server_limits: tuple[int, int | None] | None = None
        """(max_concurrency, requests_per_minute) the server-scope limits were created or updated with."""
        self._probing: asyncio.Lock | None = None
        self._local: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[int, int | None], ProcessLimiter]]
        self._local = weakref.WeakKeyDictionary()

    def response_format(self, settings: ProviderSettings) -> ResponseFormat | None:
        """The strongest structured-output format of `settings.json_mode` not refused here; None when all were."""
        return next((f for f in ladder(settings.json_mode) if f.name not in self.refused_json_modes), None)

    def concurrency(self, settings: ProviderSettings) -> int:
        """`max_concurrency`, never above the server's slots: more calls would only queue on the server."""
        slots = self.server.slots if self.server else None
        return min(settings.max_concurrency, slots) if slots else settings.max_concurrency

    def context_window(self, settings: ProviderSettings) -> int:
        """The configured context window, else what the server reports, else 128,000 tokens."""
        if settings.context_window is not None:
            return settings.context_window
        reported = self.server.context_window if self.server else None
        return reported or DEFAULT_CONTEXT_WINDOW

    async def learn(self, client: httpx.AsyncClient, headers: dict[str, str]) -> ServerInfo:
        """Ask the server about itself, once per endpoint; a server that says nothing is left at that."""
        if self.server is not None:
            return self.server
        if self._probing is None:
            self._probing = asyncio.Lock()
        async with self._probing:
            if self.server is None:
                self.server = await probe_server(client, self.base_url, headers)
        return self.server

    def local_limiter(self, settings: ProviderSettings) -> ProcessLimiter:
        """The in-process limiter of `settings` on the running event loop (semaphores belong to one loop)."""
        by_limits = self._local.setdefault(asyncio.get_running_loop(), {})
        key = (self.concurrency(settings), settings.requests_per_minute)
        if key not in by_limits:
            by_limits[key] = ProcessLimiter(*key)
        return by_limits[key]


async def probe_server(client: httpx.AsyncClient, base_url: str, headers: dict[str, str]) -> ServerInfo:
    """`ServerInfo` from llama.cpp's `/props` and the `/v1/models` list (vLLM's `max_model_len`)."""
    root = base_url.rstrip("/").removesuffix("/v1")
    props = await _get_json(client, f"{root}/props", headers)
    models = await _get_json(client, base_url.rstrip("/") + "/models", headers)
    slots = _positive(props.get("total_slots"))
    window = _positive((props.get("default_generation_settings") or {}).get("n_ctx"))
    for model in models.get("data") or []:
        if isinstance(model, dict):
            window = window or _positive(model.get("max_model_len"))
    return ServerInfo(slots=slots, context_window=window)


async def _get_json(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> dict[str, Any]:
    try:
        response = await client.get(url, headers=headers, timeout=PROBE_TIMEOUT)
        data = response.json() if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _positive(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
