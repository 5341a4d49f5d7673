"""The Prefect a CLI run talks to: the configured API, or a temporary server of this home.

`prefect_for_cli()` prepares Prefect for one `agentflows run` or `route`, before
Prefect is imported (its settings are read once, at import):

1. Prefect's state goes under `$AGENTFLOWS_HOME/prefect` unless PREFECT_HOME or
   PREFECT_API_URL is set (`agentflows.deployments.temporary_server.prefect_environment`);
2. with a Prefect API configured, it must answer, else one `PrefectUnreachable` line;
   without one, a `TemporaryServer` starts, and stops when the run ends (or dies with
   the CLI);
3. Prefect's console logging is kept off stderr unless `--debug` (`agentflows.console`);
4. flow runs a dead CLI process left RUNNING are marked Crashed
   (`agentflows.deployments.crashed_runs`), and this run's flow runs are tagged with
   this process, so the next start can tell.

Called from Python code that already imported Prefect, it uses Prefect's settings as
they are and starts no server (Prefect's own ephemeral mode applies there).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from agentflows.console import quiet_prefect_console
from agentflows.deployments.errors import PrefectUnreachable
from agentflows.deployments.temporary_server import TemporaryServer, configured_api_url, prefect_environment
from agentflows.tasks.masking import masked
from agentflows.tasks.runtime import current_runtime


@contextmanager
def prefect_for_cli(*, debug: bool = False) -> Iterator[str | None]:
    """Prefect ready for one CLI run (see the module docstring); yields the API URL it uses."""
    with ExitStack() as stack:
        api_url = _api(stack)
        from prefect import get_client, tags

        from agentflows.deployments.crashed_runs import Owner, mark_crashed

        quiet_prefect_console(debug=debug)
        stack.callback(_drain_prefect_workers)  # before the temporary server stops: logs and events reach it
        with get_client(sync_client=True) as client:
            mark_crashed(client)
        stack.enter_context(tags(Owner.this_process().tag))
        yield api_url


def _api(stack: ExitStack) -> str | None:
    """The Prefect API URL this run uses, once it answers (starting a temporary server when there is none)."""
    if "prefect.settings" in sys.modules:  # Prefect was set up before the CLI was called: leave it be
        from prefect.settings import PREFECT_API_URL

        return PREFECT_API_URL.value()
    os.environ.update(prefect_environment(os.environ, current_runtime().settings.home))
    configured = configured_api_url(os.environ)
    if configured:
        _check_answers(configured)
        return configured
    home = Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()
    server = stack.enter_context(TemporaryServer.start(home))
    os.environ["PREFECT_API_URL"] = server.api_url
    return server.api_url


def _check_answers(api_url: str) -> None:
    try:
        answer = httpx.get(f"{api_url.rstrip('/')}/health", timeout=10)
    except httpx.HTTPError as exc:
        reason = type(exc).__name__
    else:
        if answer.status_code < 500:
            return
        reason = f"HTTP {answer.status_code}"
    raise PrefectUnreachable(
        f"the Prefect API at {masked(api_url)} does not answer ({reason}); start its server "
        "(`agentflows up` starts one on 127.0.0.1:4200), or unset PREFECT_API_URL to run on a temporary server"
    )


def _drain_prefect_workers() -> None:
    """Send the run's queued logs and events to the API, waiting at most a few seconds."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=5)
