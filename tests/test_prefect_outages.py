"""Outages of Prefect's API and its database, on the production layout: one PostgreSQL cluster holds
both the Prefect server's database and the content database, and it goes away for a few seconds.

A real `prefect server start` runs on a PostgreSQL cluster of this module's own (the outage stops
the whole cluster with `pg_ctl stop -m immediate`, as a crash or a failover would, and starts it
again after `OUTAGE_SECONDS`). Model calls go to the fake OpenAI-compatible server under the
server-scope concurrency limit, so every call takes a slot of a Prefect global concurrency limit.
Outages begin on what a run says it is doing (its progress lines), never after a sleep.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect import get_client
from prefect.exceptions import PrefectHTTPStatusError
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_CLIENT_MAX_RETRIES,
    PREFECT_CLIENT_RETRY_JITTER_FACTOR,
    temporary_settings,
)
from sqlalchemy import func, select

from agentflows import run_agent
from agentflows.deployments.stack import start_server, stop_group
from agentflows.progress import ProgressEvent, listening
from agentflows.tasks.errors import PrefectAPIError, StorageError
from agentflows.tasks.llm.endpoint import Endpoint
from agentflows.tasks.llm.server_limits import PrefectLimiter, limit_name
from agentflows.tasks.llm.settings import ProviderSettings
from agentflows.tasks.prefect_api import riding_out_outages
from agentflows.tasks.storage.migrate import upgrade
from agentflows.tasks.storage.records import open_engine
from agentflows.tasks.storage.schema import GeneratedContent, Generation
from tests.fake_llm import FakeLLM
from tests.servers import PostgresCluster, free_port

OUTAGE_SECONDS = 6.0
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
LIMIT = 2


@dataclass
class SharedCluster:
    """The PostgreSQL cluster and the Prefect server that keeps its state in it."""

    cluster: PostgresCluster
    api_url: str
    outages: list[Outage] = field(default_factory=list)

    def outage(self) -> Outage:
        """Stop the cluster now; it starts again `OUTAGE_SECONDS` later."""
        outage = Outage(self.cluster)
        self.outages.append(outage)
        outage.begin()
        return outage

    def settle(self) -> None:
        """Wait until every outage begun so far is over."""
        for outage in self.outages:
            assert outage.over.wait(OUTAGE_SECONDS * 3), "the cluster did not start again"

    def api(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, f"{self.api_url}{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json() if response.content else None


@dataclass
class Outage:
    """One stop of the cluster; `over` is set once it is serving again."""

    cluster: PostgresCluster
    over: threading.Event = field(default_factory=threading.Event)

    def begin(self) -> None:
        self.cluster.stop()
        threading.Thread(target=self._end_later, daemon=True).start()

    def _end_later(self) -> None:
        threading.Event().wait(OUTAGE_SECONDS)
        self.cluster.start()
        self.over.set()


@dataclass
class FlakyAPI:
    """A stand-in for Prefect's API on loopback that answers 500 to the next `failures` requests, then 200."""

    failures: int = 1
    requests: int = 0
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/api"

    def answer(self) -> int:
        self.requests += 1
        if self.failures > 0:
            self.failures -= 1
            return 500
        return 200


@pytest.fixture
def api_answering_500() -> Iterator[FlakyAPI]:
    api = FlakyAPI()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = api.answer()
            body = b'"hello"' if status == 200 else b'{"exception_message": "Internal Server Error"}'
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    api.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=api.server.serve_forever, daemon=True).start()
    yield api
    api.server.shutdown()
    api.server.server_close()


@pytest.fixture(scope="module")
def shared() -> Iterator[SharedCluster]:
    cluster = PostgresCluster()
    cluster.create_database("prefect")
    home = Path(tempfile.mkdtemp(prefix="agentflows-outage-prefect-"))
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": cluster.url("prefect").replace("+psycopg", "+asyncpg"),
    }
    port = free_port()
    server = start_server("127.0.0.1", port, env, home / "server.log")
    shared = SharedCluster(cluster, f"http://127.0.0.1:{port}/api")
    try:
        yield shared
    finally:
        shared.settle()
        stop_group(server.pid)
        cluster.remove()


@pytest.fixture
def content_database(shared: SharedCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh content database on the shared cluster; runs talk to the shared Prefect server."""
    shared.settle()
    name = f"c{uuid.uuid4().hex[:12]}"
    shared.cluster.create_database(name)
    url = shared.cluster.url(name)
    engine = open_engine(url)
    upgrade(engine)
    engine.dispose()
    monkeypatch.setenv("AGENTFLOWS_DATABASE_URL", url)
    monkeypatch.setenv("PREFECT_API_URL", shared.api_url)
    with temporary_settings({PREFECT_API_URL: shared.api_url}):
        yield url


@pytest.fixture
def fake_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    with FakeLLM(latency=0.05) as fake:
        monkeypatch.setenv("AGENTFLOWS_LLM_BASE_URL", fake.base_url)
        monkeypatch.setenv("AGENTFLOWS_LLM_MODEL", "fake-model")
        monkeypatch.setenv("AGENTFLOWS_LLM_MAX_CONCURRENCY", str(LIMIT))
        monkeypatch.setenv("AGENTFLOWS_LLM_LIMIT_SCOPE", "server")
        yield fake


def active_slots(shared: SharedCluster, provider: str = "openai") -> int:
    return int(shared.api("GET", f"/v2/concurrency_limits/{limit_name(provider)}")["active_slots"])


def flow_run_states(shared: SharedCluster) -> dict[str, str]:
    runs = shared.api("POST", "/flow_runs/filter", {})
    return {run["id"]: run["state"]["type"] for run in runs}


def rows(url: str) -> tuple[int, int]:
    """Generations and contents in the content database."""
    engine = open_engine(url)
    try:
        with engine.connect() as connection:
            counted = [
                connection.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (Generation, GeneratedContent)
            ]
    finally:
        engine.dispose()
    return counted[0], counted[1]


def test_a_slot_given_back_during_an_outage_is_given_back_once_the_server_answers(
    shared: SharedCluster, content_database: str
) -> None:
    settings = ProviderSettings(base_url="http://127.0.0.1:9/v1", max_concurrency=1, limit_scope="server")
    endpoint = Endpoint("outage-probe", settings)
    outage: list[Outage] = []

    async def hold_a_slot_through_the_outage() -> None:
        limiter = PrefectLimiter(endpoint, settings, endpoint.local_limiter(settings))
        with riding_out_outages():
            async with limiter.slot():
                outage.append(shared.outage())  # the server's database goes away while the call runs
            await limiter.drain()

    asyncio.run(hold_a_slot_through_the_outage())

    assert outage[0].over.is_set()  # the slot went back only once the database was back
    assert active_slots(shared, "outage-probe") == 0


def test_a_database_outage_during_save_ends_the_run_in_one_line_and_leaks_nothing(
    shared: SharedCluster, content_database: str, fake_llm: FakeLLM
) -> None:
    before = set(flow_run_states(shared))

    def outage_at_save(event: ProgressEvent) -> None:
        if (event.step, event.status) == ("save", "started"):
            shared.outage()  # before the save task exists: its start, its write and its end all meet the outage

    with listening(outage_at_save), pytest.raises(StorageError) as caught:
        run_agent("quiz", topic="Tides", questions=2)

    assert shared.outages[0].over.is_set()  # the run waited for the server instead of giving up on it
    assert str(caught.value).startswith(f"database {content_database} failed: OperationalError: connection failed")
    assert "\n" not in str(caught.value)
    runs = {run: state for run, state in flow_run_states(shared).items() if run not in before}
    assert list(runs.values()) == ["FAILED"]  # ended, not left Running
    assert active_slots(shared) == 0  # the next run's calls start at once
    assert rows(content_database) == (0, 0)

    again = run_agent("quiz", topic="Tides", questions=2)

    assert again.model_calls == 0 and again.cache_hits == 4  # decide, 2 questions, build: paid for once
    assert rows(content_database) == (1, 1)
    fresh = run_agent("quiz", topic="Volcanoes", questions=1)
    assert fresh.model_calls == 2 and active_slots(shared) == 0


def test_prefect_client_requests_ride_out_a_server_answering_500(api_answering_500: FlakyAPI) -> None:
    async def health() -> int:
        async with get_client() as client:
            return (await client.hello()).status_code

    with temporary_settings({PREFECT_API_URL: api_answering_500.url, PREFECT_CLIENT_RETRY_JITTER_FACTOR: 0}):
        with pytest.raises(PrefectHTTPStatusError, match="500 Internal Server Error"):
            asyncio.run(health())  # Prefect's client gives up on a 500 at once
        api_answering_500.failures = 2
        with riding_out_outages():
            assert asyncio.run(health()) == 200

    assert api_answering_500.requests == 1 + 3


def test_a_run_that_cannot_reach_the_prefect_api_says_so_in_one_line(
    fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/api"
    monkeypatch.setenv("PREFECT_API_URL", nowhere)

    with (
        temporary_settings({PREFECT_API_URL: nowhere, PREFECT_CLIENT_MAX_RETRIES: 0}),
        pytest.raises(PrefectAPIError) as caught,
    ):
        run_agent("quiz", topic="Tides", questions=1)

    message = str(caught.value)
    assert message.startswith(f"the Prefect API at {nowhere} could not be reached for GET /api/admin/version (")
    assert message.endswith(
        "after its client's retries; check that the Prefect server and its database are up, then run again"
    )
    assert "\n" not in message and len(fake_llm.received) == 0


def test_the_command_line_says_in_one_line_that_the_prefect_api_is_down(tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/api"
    env = {**os.environ, "PREFECT_API_URL": nowhere, "AGENTFLOWS_HOME": str(tmp_path / "home")}

    done = subprocess.run(
        [str(Path(sys.executable).with_name("agentflows")), "run", "quiz", "-p", "topic=Tides"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 1
    # the CLI asks the configured API before it starts anything (agentflows.local_prefect)
    assert done.stderr.splitlines() == [done.stderr.splitlines()[-1]]
    assert done.stderr.startswith(f"error: the Prefect API at {nowhere} does not answer (ConnectError)")
