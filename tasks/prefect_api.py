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
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from prefect.context import SettingsContext, get_settings_context
from prefect.exceptions import PrefectHTTPStatusError
from prefect.settings import PREFECT_API_URL, Settings

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
