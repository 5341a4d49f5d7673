"""The runtime: agentflows' settings, model providers, content stores and caches, in one object.

    Runtime
    ├── settings       Settings: home, result storage, definitions folder, model endpoint, content store
    ├── providers      provider factories by name: `offline`, and whatever a caller adds (tests, plugins)
    ├── provider()     the provider that serves a step's ModelSettings (saved Blocks read once a minute)
    ├── endpoint()     what this process learns about a model endpoint: breaker, refused JSON modes, limits
    ├── store()        the content store (one per storage configuration)
    └── remembered()   what is compiled from the definitions (catalogs, flows) while the files are unchanged

It is built at the edges — the CLI, `run_agent`/`route`, a flow run started by a
worker — from the environment (`Settings.from_env()`); Blocks named in a definition
(`model.provider`) or by `AGENTFLOWS_CONTENT_STORE` are read through the Prefect API
on first use. Code inside a run reaches it with `current_runtime()`: the runtime made
active with `Runtime.active()`, else the process's default one for the current
environment (a new one, with fresh caches, when the environment changes).

Tests and plugins give their own providers through it:

    runtime = Runtime(Settings.from_env(), providers={"offline": lambda settings: MyProvider()})
    with runtime.active():
        run_agent("ebook", topic="Tides")
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from agentflows.tasks.errors import ConfigurationError, ProviderNotFound
from agentflows.tasks.llm.base import ModelProvider
from agentflows.tasks.llm.endpoint import Endpoint
from agentflows.tasks.llm.offline import OfflineProvider
from agentflows.tasks.llm.settings import PROVIDER_BLOCK_TYPE, ModelSettings, ProviderSettings
from agentflows.tasks.settings import Settings, environment_key
from agentflows.tasks.storage.config import STORE_BLOCK_TYPE, StoreSettings

if TYPE_CHECKING:
    from agentflows.tasks.storage.store import ContentStore

ProviderFactory = Callable[[ModelSettings], ModelProvider]
BUILT_IN_PROVIDERS: Mapping[str, ProviderFactory] = {"offline": OfflineProvider}
SAVED_SECONDS = 60.0
"""How long a saved Block's settings are used before they are read again."""
T = TypeVar("T")


class Runtime:
    """Settings, providers, stores and caches of one configuration (see the module docstring)."""

    def __init__(self, settings: Settings, providers: Mapping[str, ProviderFactory] | None = None) -> None:
        self.settings = settings
        self.providers: dict[str, ProviderFactory] = {**BUILT_IN_PROVIDERS, **(providers or {})}
        self._lock = threading.RLock()
        self._saved: dict[tuple[str, str], tuple[float, Any]] = {}
        self._endpoints: dict[tuple[str, str], Endpoint] = {}
        self._stores: dict[str, ContentStore] = {}
        self._remembered: dict[Hashable, tuple[Hashable, Any]] = {}

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, *, providers: Mapping[str, ProviderFactory] | None = None
    ) -> Runtime:
        """A runtime for the settings the environment describes (`ConfigurationError` names a bad variable)."""
        return cls(Settings.from_env(environ), providers)

    @contextmanager
    def active(self) -> Iterator[Runtime]:
        """Make this the runtime of the code inside the block (and of the flows and tasks it runs)."""
        token = _active.set(self)
        try:
            yield self
        finally:
            _active.reset(token)

    # -- model providers ---------------------------------------------------------------------

    def provider_names(self) -> list[str]:
        """Names a definition may use as `model.provider`, besides saved Blocks."""
        return sorted({"default", "openai", *self.providers})

    def provider_name(self, name: str) -> str:
        """`default` as the environment means it: `openai` when an endpoint is configured, else `offline`."""
        if name != "default":
            return name
        return "openai" if self.settings.provider is not None else "offline"

    async def provider(self, settings: ModelSettings) -> ModelProvider:
        """The provider that serves `settings`; raises `ProviderNotFound` before any call."""
        name = self.provider_name(settings.provider)
        factory = self.providers.get(name)
        if factory is not None:
            return factory(settings)
        if name == "openai":
            if self.settings.provider is None:
                raise ConfigurationError(
                    "provider 'openai' needs AGENTFLOWS_LLM_BASE_URL, e.g. http://localhost:8000/v1"
                )
            return self.http_provider(name, self.settings.provider)
        saved = await self.saved_provider(name)
        if saved is None:
            raise ProviderNotFound(
                f"model provider {settings.provider!r} is neither registered nor a saved model provider block; "
                f"registered providers are: {', '.join(self.provider_names())}"
            )
        return self.http_provider(name, saved)

    def http_provider(self, name: str, settings: ProviderSettings) -> ModelProvider:
        """The OpenAI-compatible client of endpoint `settings`, under provider name `name`."""
        from agentflows.tasks.llm.openai import OpenAICompatibleProvider  # httpx only when a real model is used

        return OpenAICompatibleProvider(name, settings, self.endpoint(name, settings))

    def endpoint(self, name: str, settings: ProviderSettings) -> Endpoint:
        """What this runtime has learned about the endpoint of provider `name` (shared by its calls)."""
        key = (name, settings.base_url)
        with self._lock:
            if key not in self._endpoints:
                self._endpoints[key] = Endpoint(name, settings)
            return self._endpoints[key]

    async def saved_provider(self, name: str) -> ProviderSettings | None:
        """The settings of the saved model provider Block `name`, or None when there is none."""
        cached = self._fresh(PROVIDER_BLOCK_TYPE, name)
        if cached is not None:
            return cached[0]
        data = await _read_block(PROVIDER_BLOCK_TYPE, name)
        settings = None if data is None else ProviderSettings.from_saved(data, name)
        self._saved[(PROVIDER_BLOCK_TYPE, name)] = (time.monotonic(), settings)
        return settings

    # -- content stores ----------------------------------------------------------------------

    def store_settings(self) -> StoreSettings:
        """Where content is stored: the saved Block `AGENTFLOWS_CONTENT_STORE` names, or the environment."""
        name = self.settings.store_block or ""
        cached = self._fresh(STORE_BLOCK_TYPE, name)
        if cached is not None:
            return cached[0]
        if not name:
            settings = self.settings.store.check()
        else:
            data = _read_block_sync(STORE_BLOCK_TYPE, name)
            if data is None:
                raise ConfigurationError(
                    f"AGENTFLOWS_CONTENT_STORE names {name!r}, but no agentflows content store block has that name"
                )
            settings = StoreSettings.from_saved(data, name).check()
        self._saved[(STORE_BLOCK_TYPE, name)] = (time.monotonic(), settings)
        return settings

    def store(self, settings: StoreSettings | None = None) -> ContentStore:
        """The content store of `settings` (default: `store_settings()`), opened once and kept open."""
        from agentflows.tasks.storage.opening import open_configured  # SQLAlchemy and fsspec only when storing

        settings = settings or self.store_settings()
        key = settings.key()
        with self._lock:
            if key not in self._stores:
                self._stores[key] = open_configured(settings)
            return self._stores[key]

    # -- caches ------------------------------------------------------------------------------

    def remembered(self, key: Hashable, version: Hashable, make: Callable[[], T]) -> T:
        """`make()`, made once for `key` and kept while `version` stays the same."""
        with self._lock:
            found = self._remembered.get(key)
            if found is not None and found[0] == version:
                return found[1]
        value = make()
        with self._lock:
            self._remembered[key] = (version, value)
        return value

    def close(self) -> None:
        """Close every open store; the runtime can still be used and opens them again."""
        with self._lock:
            for store in self._stores.values():
                store.close()
            self._stores.clear()

    def _fresh(self, kind: str, name: str) -> tuple[Any] | None:
        found = self._saved.get((kind, name))
        if found is not None and time.monotonic() - found[0] < SAVED_SECONDS:
            return (found[1],)
        return None


_active: ContextVar[Runtime | None] = ContextVar("agentflows_runtime", default=None)
_default: tuple[Hashable, Runtime] | None = None
_default_lock = threading.Lock()


def current_runtime() -> Runtime:
    """The active runtime, else the default one for the current environment."""
    runtime = _active.get()
    return runtime if runtime is not None else default_runtime()


def default_runtime() -> Runtime:
    """The process's runtime for the current environment; a change of environment replaces it."""
    global _default
    key = environment_key(os.environ)
    with _default_lock:
        if _default is not None and _default[0] == key:
            return _default[1]
        runtime = Runtime.from_environment()
        previous, _default = _default, (key, runtime)
    if previous is not None:
        previous[1].close()
    return runtime


def open_store(settings: StoreSettings | None = None) -> ContentStore:
    """The content store of the current runtime (or of `settings`), open and on the newest schema."""
    return current_runtime().store(settings)


async def _read_block(block_type: str, name: str) -> dict[str, Any] | None:
    """The data of the saved Block `name` of `block_type`, secrets included, or None when there is none."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    async with get_client() as client:
        try:
            document = await client.read_block_document_by_name(name, block_type, include_secrets=True)
        except ObjectNotFound:
            return None
    return dict(document.data)


def _read_block_sync(block_type: str, name: str) -> dict[str, Any] | None:
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            document = client.read_block_document_by_name(name, block_type, include_secrets=True)
        except ObjectNotFound:
            return None
    return dict(document.data)
