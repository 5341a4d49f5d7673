"""Usage is recorded as really spent: a step served from the cache costs its run nothing.

The fake OpenAI-compatible server counts the calls it answers and reports 120 + 80
tokens for each; what `generations`, `artifact_versions` and `to_dataframe()` hold is
compared with that count, on the embedded store and on PostgreSQL + S3.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from agentflows import open_store, run_agent
from agentflows.cli import main
from agentflows.tasks.storage.config import StoreSettings
from agentflows.tasks.storage.migrate import upgrade
from agentflows.tasks.storage.records import open_engine
from agentflows.tasks.storage.schema import ArtifactVersion, Generation
from tests.fake_llm import FakeLLM

pytestmark = pytest.mark.usefixtures("prefect_server")
PROMPT_PRICE, COMPLETION_PRICE = 0.5, 1.5
COST_PER_CALL = 120 * PROMPT_PRICE / 1000 + 80 * COMPLETION_PRICE / 1000
QUESTIONS = 3
STEPS_FROM_CACHE = 1 + QUESTIONS + 1  # decide, every question, build


@pytest.fixture
def fake_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        for name, value in {
            "AGENTFLOWS_LLM_BASE_URL": fake.base_url,
            "AGENTFLOWS_LLM_MODEL": "fake-model",
            "AGENTFLOWS_LLM_LIMIT_SCOPE": "process",
            "AGENTFLOWS_LLM_PRICE_PROMPT": str(PROMPT_PRICE),
            "AGENTFLOWS_LLM_PRICE_COMPLETION": str(COMPLETION_PRICE),
        }.items():
            monkeypatch.setenv(name, value)
        yield fake


def generations() -> list[Generation]:
    with open_store().records.session() as session:
        return list(session.scalars(select(Generation).order_by(Generation.finished_at)))


def test_the_same_request_three_times_records_what_the_model_server_counted(
    any_store: StoreSettings, fake_llm: FakeLLM
) -> None:
    results = [run_agent("quiz", topic="Tides", questions=QUESTIONS) for _ in range(3)]

    calls = len(fake_llm.received)
    rows = generations()
    assert calls == 1 + QUESTIONS  # the reruns were served from the cache
    assert [r.model_calls for r in rows] == [calls, 0, 0] == [r.model_calls for r in results]
    assert [r.cached_steps for r in rows] == [0, STEPS_FROM_CACHE, STEPS_FROM_CACHE]
    assert sum(r.prompt_tokens for r in rows) == 120 * calls
    assert sum(r.completion_tokens for r in rows) == 80 * calls
    assert sum(r.cost for r in rows) == pytest.approx(COST_PER_CALL * calls)
    assert {r.content_id for r in rows} == {results[0].content_id}
    frame = open_store().to_dataframe()
    assert len(frame) == 3 and list(frame["cached_steps"]) == [0, STEPS_FROM_CACHE, STEPS_FROM_CACHE]
    assert (frame["model_calls"].sum(), frame["tokens"].sum()) == (calls, 200 * calls)
    assert frame["cost"].sum() == pytest.approx(COST_PER_CALL * calls)


def test_a_cached_artifact_costs_its_generation_nothing_in_the_lineage(
    fake_llm: FakeLLM, capsys: pytest.CaptureFixture[str]
) -> None:
    first = run_agent("quiz", topic="Tides", questions=1)
    second = run_agent("quiz", topic="Tides", questions=1)

    with open_store().records.session() as session:
        lineage = {
            g: [(a.step, a.cached, a.calls, a.prompt_tokens, a.cost) for a in session.scalars(query)]
            for g in (first.flow_run_id, second.flow_run_id)
            for query in [select(ArtifactVersion).where(ArtifactVersion.generation_id == g)]
        }
    cost = pytest.approx(COST_PER_CALL)
    assert lineage[first.flow_run_id] == [
        ("decide", False, 1, 120, cost),
        ("generate", False, 1, 120, cost),
        ("build", False, 0, 0, 0.0),
    ]
    assert lineage[second.flow_run_id] == [
        ("decide", True, 0, 0, 0.0),
        ("generate", True, 0, 0, 0.0),
        ("build", True, 0, 0, 0.0),
    ]
    assert main(["show", first.content_id]) == 0
    assert "(from the cache)" not in capsys.readouterr().out  # the content shows the run that made it


def test_a_refreshed_run_that_makes_the_same_content_counts_what_it_spent(fake_llm: FakeLLM) -> None:
    run_agent("quiz", topic="Tides", questions=1)
    again = run_agent("quiz", topic="Tides", questions=1, refresh=True)  # the fake answers the same: same content

    frame = open_store().to_dataframe()

    assert len(open_store().list()) == 1 and len(frame) == 2
    assert list(frame["model_calls"]) == [2, 2] and frame["model_calls"].sum() == len(fake_llm.received) == 4
    assert list(frame["generation_id"])[1] == again.flow_run_id


def test_the_migration_gives_existing_generations_their_content(agentflows_home: Path) -> None:
    engine = open_engine(f"sqlite:///{agentflows_home / 'old.db'}")
    upgrade(engine, "0001")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO generations VALUES ('g1', 'quiz', '1.0.0', '{}', 'g1', 'completed', NULL, "
                "'2025-01-01 00:00:00', NULL, 4, 480, 320, 0.1, 1.5)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO generated_contents VALUES ('c1', 'g1', 'interactive', 'html', 'Tides', 'quiz', '1.0.0', "
                "'{}', '{}', 'file:///x', '{}', 10, 'hash', '2025-01-01 00:00:00')"
            )
        )

    upgrade(engine)

    with engine.connect() as connection:
        row = connection.execute(text("SELECT content_id, cached_steps, model_calls FROM generations")).one()
    engine.dispose()
    assert tuple(row) == ("c1", 0, 4)
