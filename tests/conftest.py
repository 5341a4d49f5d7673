"""Shared fixtures: a throwaway Prefect server, PostgreSQL cluster and S3 endpoint; an
empty AGENTFLOWS_HOME per test; an editable copy of the shipped definitions; a recorder
of model calls.

No test asserts on timing: wall times vary too much between machines to fail a build.
Outages are played by counting refused connections (`tests.servers.OutageProxy`), and
speed is measured in `benchmarks/`, not here."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import pytest
import s3fs
from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker
from prefect.testing.utilities import prefect_test_harness

from agentflows.tasks.runtime import Runtime, default_runtime
from agentflows.tasks.settings import Settings
from agentflows.tasks.storage.config import StoreSettings
from agentflows.tasks.storage.migrate import upgrade
from agentflows.tasks.storage.records import open_engine
from tests.providers import CallLog, RecordingProvider
from tests.servers import PostgresCluster, S3Server

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "agent_definitions"
DRAIN_SECONDS = 30
"""Longest wait for Prefect's log and event workers to send what they hold when the test server stops."""
SHIPPED_AGENTS = ("ebook", "lesson_plan", "quiz", "api_scaffold", "data_report")


@pytest.fixture(autouse=True)
def agentflows_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test starts with empty local state and no provider configured."""
    home = tmp_path / "home"
    monkeypatch.setenv("AGENTFLOWS_HOME", str(home))
    for variable in (
        "AGENTFLOWS_DEFINITIONS",
        "AGENTFLOWS_RESULT_STORAGE",
        "AGENTFLOWS_LLM_BASE_URL",
        "AGENTFLOWS_CONTENT_STORE",
        "AGENTFLOWS_DATABASE_URL",
        "AGENTFLOWS_STORAGE_URL",
        "AGENTFLOWS_S3_ENDPOINT_URL",
    ):
        monkeypatch.delenv(variable, raising=False)
    yield home
    default_runtime().close()


@pytest.fixture
def definitions(tmp_path: Path) -> Path:
    """A copy of the shipped definitions folder that a test may edit."""
    target = tmp_path / "definitions"
    shutil.copytree(SHIPPED, target)
    return target


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """A throwaway Prefect server for the whole session."""
    with prefect_test_harness(server_startup_timeout=120):
        yield
        # The harness drains Prefect's log and event workers on exit with no time limit, and a pytest-xdist
        # worker was once left waiting there for good after its last test: drain them first, within a bound.
        APILogWorker.drain_all(timeout=DRAIN_SECONDS)
        EventsWorker.drain_all(timeout=DRAIN_SECONDS)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster for the session."""
    cluster = PostgresCluster()
    yield cluster
    cluster.remove()


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """An S3 endpoint (moto in server mode) for the session."""
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
def postgres_s3(postgres: PostgresCluster, s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[StoreSettings]:
    """Point the content store at a fresh, migrated PostgreSQL database and an empty S3 bucket."""
    name = f"t{uuid.uuid4().hex[:12]}"
    postgres.create_database(name)
    for variable, value in {
        "AGENTFLOWS_DATABASE_URL": postgres.url(name),
        "AGENTFLOWS_STORAGE_URL": f"s3://{name}/outputs",
        "AGENTFLOWS_S3_ENDPOINT_URL": s3.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(variable, value)
    config = Settings.from_env().store
    s3fs.S3FileSystem(endpoint_url=s3.endpoint, key="testing", secret="testing").mkdir(name)
    engine = open_engine(postgres.url(name))
    upgrade(engine)
    engine.dispose()
    yield config
    default_runtime().close()
    postgres.drop_database(name)


@pytest.fixture(params=["embedded", "postgres+s3"])
def any_store(request: pytest.FixtureRequest) -> StoreSettings:
    """Each test runs on the embedded default (SQLite + folder) and on PostgreSQL + S3."""
    if request.param == "embedded":
        return Settings.from_env().store
    return request.getfixturevalue("postgres_s3")  # type: ignore[no-any-return]


@pytest.fixture
def model_calls() -> Iterator[CallLog]:
    """Record every call to the offline provider made during the test."""
    log = CallLog()
    with Runtime.from_environment(providers={"offline": lambda settings: RecordingProvider(log)}).active():
        yield log
