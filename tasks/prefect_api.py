"""Prefect's API as a run uses it: riding out a short outage, and telling one that lasts in one line.

Every state change of a flow or task run is a request to Prefect's API, which
keeps its state in a database. Prefect's client retries the answers it knows to
be passing (408, 429, 502, 503 and lost connections, `PREFECT_CLIENT_MAX_RETRIES`
times with exponential backoff: about a minute in all by default). A
PostgreSQL-backed server whose database refuses connections answers 500 instead,
which the client does not retry: a database restart of a few seconds fails the
run's next state change, and the run stays Running forever.

`riding_out_outages()` adds 500 to the codes the client retries
(`PREFECT_CLIENT_RETRY_EXTRA_CODES`) for the requests made inside it; agentflows
runs its flows inside it (from Python and the CLI around the whole flow run, on a
worker around the flow's body). An outage longer than the retries ends the run
with a `PrefectAPIError` that says so in one sentence (`api_error`).

`prefect_clients()` opens the sync and the async Prefect client a run shares (the
flow engine, task runs, artifacts and model-call slots all find them in Prefect's
client contexts), built on one TLS context for the process. Prefect builds a new
certificate-verifying context for every client it creates, reading certifi's CA
bundle each time (≈25 ms on an idle core, ≈100 ms on a busy one), even for an
`http://` API: two per run, on its critical path.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import cache
from typing import TypeVar

import certifi
import httpx
from prefect.context import AsyncClientContext, SettingsContext, SyncClientContext, get_settings_context
from prefect.exceptions import PrefectHTTPStatusError
from prefect.settings import PREFECT_API_SSL_CERT_FILE, PREFECT_API_TLS_INSECURE_SKIP_VERIFY, PREFECT_API_URL, Settings

from agentflows.tasks.errors import PrefectAPIError, one_line

OUTAGE_STATUS_CODES = frozenset({500})
"""Answers of Prefect's API retried inside `riding_out_outages`, besides those Prefect's client retries anyway."""


@contextmanager
def riding_out_outages() -> Iterator[None]:
    """Requests to Prefect's API made inside retry a 500 too (its answer while its database is down);
    a failure of the API that outlasts the retries leaves as `PrefectAPIError`."""
    context = get_settings_context()
    tolerant = _tolerant_settings(context.settings)
    try:
        if tolerant is context.settings:
            yield
        else:
            with SettingsContext(profile=context.profile, settings=tolerant):
                yield
    except httpx.HTTPError as exc:
        if not _from_prefect(exc):
            raise
        raise api_error(exc) from exc
    except RuntimeError as exc:  # Prefect's client checking the server's version: "Failed to reach API at …"
        if not (isinstance(exc.__cause__, httpx.HTTPError) and _from_prefect(exc.__cause__)):
            raise
        raise api_error(exc.__cause__) from exc


@asynccontextmanager
async def prefect_clients() -> AsyncIterator[None]:
    """The code inside shares one sync and one async Prefect client (those already open, else new ones on the
    process's TLS context for Prefect's API)."""
    with _client_context(SyncClientContext):
        if AsyncClientContext.get() is not None:
            yield
            return
        async with _client_context(AsyncClientContext):
            yield


ClientContext = TypeVar("ClientContext", SyncClientContext, AsyncClientContext)


def _client_context(kind: type[ClientContext]) -> ClientContext:
    """An open client context of `kind`, or a new one whose client uses `api_tls_context()`."""
    found = kind.get()
    if found is not None:
        return found
    context = kind(httpx_settings={"verify": api_tls_context()})
    # Prefect's code asks for clients without settings: the context must say it has none to be found.
    context._httpx_settings = None
    return context


def api_tls_context() -> ssl.SSLContext:
    """The TLS context Prefect would build for its API client (the same settings), built once per process."""
    return _tls_context(bool(PREFECT_API_TLS_INSECURE_SKIP_VERIFY.value()), PREFECT_API_SSL_CERT_FILE.value() or None)


@cache
def _tls_context(insecure: bool, cert_file: str | None) -> ssl.SSLContext:
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=cert_file or certifi.where())


def _from_prefect(exc: httpx.HTTPError) -> bool:
    """Whether Prefect's client raised `exc` (a model provider of one's own might raise httpx errors too)."""
    if isinstance(exc, PrefectHTTPStatusError):
        return True
    try:
        url = str(exc.request.url)
    except RuntimeError:
        return False
    api = PREFECT_API_URL.value()
    return url.startswith(api) if api else "/api/" in url


def _tolerant_settings(settings: Settings) -> Settings:
    codes = set(settings.client.retry_extra_codes or ())  # type: ignore[arg-type]
    if codes >= OUTAGE_STATUS_CODES:
        return settings
    # A copy of the validated settings with one field changed (`copy_with_update` validates every
    # setting again from the environment: ~0.1 s, where this takes microseconds).
    client = settings.client.model_copy(update={"retry_extra_codes": codes | OUTAGE_STATUS_CODES})
    return settings.model_copy(update={"client": client})


def api_error(exc: httpx.HTTPError) -> PrefectAPIError:
    """`exc`, which Prefect's client raised, as one sentence naming the API, the request and what went wrong."""
    try:
        request: httpx.Request | None = exc.request
    except RuntimeError:  # an error raised without its request
        request = None
    target = f" to {request.method} {request.url.path}" if request else ""
    server = f"{request.url.scheme}://{request.url.host}:{request.url.port}" if request else "(unknown)"
    api = PREFECT_API_URL.value() or server  # host and port only: no credentials a URL may carry
    if isinstance(exc, httpx.HTTPStatusError):
        happened = f"answered {exc.response.status_code} {exc.response.reason_phrase}{target}"
    else:
        happened = f"could not be reached{target.replace(' to ', ' for ', 1)} ({one_line(exc)})"
    return PrefectAPIError(
        f"the Prefect API at {api} {happened}, after its client's retries; "
        "check that the Prefect server and its database are up, then run again"
    )
