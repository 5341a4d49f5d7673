"""Shared fixtures: a throwaway Prefect server, an empty AGENTFLOWS_HOME per test,
an editable copy of the shipped definitions, and a recorder of model calls."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import pytest
from prefect.testing.utilities import prefect_test_harness

from tasks.llm import OfflineProvider, register_provider
from tasks.storage.store import forget_stores
from tests.providers import CallLog, RecordingProvider

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "agent_definitions"
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
    forget_stores()


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


@pytest.fixture
def model_calls() -> Iterator[CallLog]:
    """Record every call to the offline provider made during the test."""
    log = CallLog()
    register_provider("offline", lambda settings: RecordingProvider(log))
    yield log
    register_provider("offline", OfflineProvider)
