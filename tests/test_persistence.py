"""Persistence on a real PostgreSQL cluster and a real S3 endpoint (moto server), and on the
embedded default (SQLite + folder): layout, metadata, lineage, write-once, faults, sweeps."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import s3fs
from sqlalchemy import inspect, text

from agentflows import open_store, run_agent
from agentflows.cli import main
from agentflows.tasks.artifacts import BuiltContent, BuiltFile
from agentflows.tasks.errors import StorageError
from agentflows.tasks.normalize import TYPE_FOLDERS, normalize
from agentflows.tasks.runtime import default_runtime
from agentflows.tasks.storage import DATAFRAME_COLUMNS
from agentflows.tasks.storage.config import StoreSettings
from agentflows.tasks.storage.migrate import current_revision, downgrade, head_revision, upgrade
from agentflows.tasks.storage.records import open_engine
from tests.conftest import SHIPPED_AGENTS
from tests.offline_steps import INPUTS, OfflineRun, offline_run
from tests.servers import PostgresCluster, S3Server, free_port
from tests.test_storage import run_info

EXPECTED = {
    "ebook": ("text", "markdown+html", {"index.html", "index.md"}),
    "lesson_plan": ("text", "markdown+html", {"index.html", "index.md"}),
    "quiz": ("interactive", "html", {"index.html", "quiz.json"}),
    "api_scaffold": ("code", "file-tree", {"agentflows-preview.html", "app/main.py"}),
    "data_report": ("chart", "vega-lite+html", {"index.html", "report.md"}),
}


@pytest.mark.usefixtures("prefect_server")
@pytest.mark.parametrize("agent", SHIPPED_AGENTS)
def test_every_shipped_agent_lands_with_type_layout_metadata_and_lineage(agent: str, any_store: StoreSettings) -> None:
    result = run_agent(agent, **INPUTS[agent])

    store = open_store()
    stored = store.get(result.content_id)
    content_type, fmt, some_files = EXPECTED[agent]
    assert (stored.content_type.value, stored.format, stored.agent) == (content_type, fmt, agent)
    assert some_files <= set(stored.keys)
    folder = TYPE_FOLDERS[stored.content_type]
    assert all(key == f"{folder}/{stored.id}/{path}" for path, key in stored.keys.items())
    assert stored.metadata["primary"] in stored.keys and stored.render["open"] == stored.metadata["primary"]
    assert stored.flow_run_id == result.flow_run_id and stored.parameters == {**stored.parameters, **INPUTS[agent]}
    labels = [step["label"] for step in stored.lineage]
    assert labels[0] == "decide" and labels[-1] == "build" and len(labels) == result.model_calls + 1
    assert stored.lineage[0]["parent_checksum"] is not None
    drafts = [s for s in stored.lineage if s["step"] == "generate"]
    assert all(d["parent_checksum"] == stored.lineage[0]["checksum"] for d in drafts)
    assert stored.metadata["build_checksum"] == stored.lineage[-1]["checksum"]
    assert all(s["model"] == "agentflows-offline-1" for s in stored.lineage[:-1])
    if any_store.storage_url.startswith("s3://"):
        assert stored.location.startswith(f"{any_store.storage_url}/{folder}/{stored.id}/")


@pytest.mark.parametrize("agent", SHIPPED_AGENTS)
def test_objects_read_back_byte_identical(agent: str, any_store: StoreSettings) -> None:
    run = offline_run(agent)
    built = run.build()
    store = open_store()

    stored = store.get(store.save(built, run_info(run, built)).content_id)

    assert set(stored.keys) == {f.path for f in built.files}
    for file in built.files:
        assert store.read(stored, file.path) == file.text.encode()
    assert stored.size == sum(len(f.text.encode()) for f in built.files)


def test_objects_are_in_the_bucket_under_the_layout(postgres_s3: StoreSettings, s3: S3Server) -> None:
    run = offline_run("quiz")
    built = run.build()

    saved = open_store().save(built, run_info(run, built))

    fs = s3fs.S3FileSystem(endpoint_url=s3.endpoint, key="testing", secret="testing")
    bucket = postgres_s3.storage_url.removeprefix("s3://")
    found = {path.removeprefix(f"{bucket}/") for path in fs.find(bucket)}
    assert found == {f"interactive/{saved.content_id}/index.html", f"interactive/{saved.content_id}/quiz.json"}
    assert fs.cat_file(f"{bucket}/interactive/{saved.content_id}/quiz.json") == built.file("quiz.json").text.encode()


def test_metadata_is_jsonb_and_the_type_a_native_enum_on_postgres(postgres_s3: StoreSettings) -> None:
    run = offline_run("data_report")
    built = run.build()
    saved = open_store().save(built, run_info(run, built))
    engine = open_engine(postgres_s3.database_url.get_secret_value())

    with engine.connect() as connection:
        row = connection.execute(
            text(
                "SELECT pg_typeof(metadata)::text, pg_typeof(content_type)::text, metadata->'tables' "
                "FROM generated_contents"
            )
        ).one()
        labels = connection.execute(text("SELECT unnest(enum_range(NULL::content_type))::text")).scalars().all()
    engine.dispose()

    assert row[0] == "jsonb" and row[1] == "content_type"
    assert row[2] == [f"tables/{item.key}.csv" for item in run.plan.items]
    assert labels == ["text", "code", "chart", "file", "interactive", "mixed"]
    assert saved.content_type.value == "chart"


def test_the_same_save_twice_makes_one_row(any_store: StoreSettings) -> None:
    run = offline_run("ebook")
    built = run.build()
    store = open_store()

    first = store.save(built, run_info(run, built, "run-1"))
    second = store.save(built, run_info(run, built, "run-1"))

    assert first.content_id == second.content_id
    assert len(store.list()) == 1
    assert len(store.to_dataframe()) == 1


def _mixed_contents() -> list[tuple[OfflineRun, BuiltContent]]:
    runs = [offline_run(agent) for agent in SHIPPED_AGENTS]
    runs += [offline_run(agent, **{key: "Volcanoes"}) for agent, key in (("ebook", "topic"), ("quiz", "topic"))]
    runs += [offline_run("lesson_plan", topic="Rivers"), offline_run("api_scaffold", service="a library catalogue")]
    runs += [offline_run("data_report", subject="museum visitors by month")]
    return [(run, run.build()) for run in runs]


def test_twenty_concurrent_saves_lose_nothing_and_duplicate_nothing(any_store: StoreSettings) -> None:
    contents = _mixed_contents()  # ten distinct contents, each saved twice below
    store = open_store()
    jobs = [(run, built, f"run-{i}-{copy}") for i, (run, built) in enumerate(contents) for copy in (0, 1)]

    with ThreadPoolExecutor(max_workers=20) as pool:
        saved = list(pool.map(lambda job: store.save(job[1], run_info(job[0], job[1], job[2])), jobs))

    assert len(saved) == 20
    expected = {normalize(built).content_id for _, built in contents}
    assert {s.content_id for s in saved} == expected
    stored = store.list(limit=100)
    assert len(stored) == len(expected) == 10
    for content in stored:
        for path in content.keys:
            assert store.read(content, path)


def test_a_batch_saves_every_content_and_repeats_nothing(any_store: StoreSettings) -> None:
    contents = _mixed_contents()
    store = open_store()
    items = [(built, run_info(run, built, f"batch-{i}")) for i, (run, built) in enumerate(contents)]
    items.append(items[0])  # the same content twice in one batch

    saved = store.save_many(items)

    assert [s.content_id for s in saved] == [normalize(built).content_id for built, _ in items]
    stored = store.list(limit=100)
    assert len(stored) == len(contents) == 10
    for content in stored:
        assert all(store.read(content, path) for path in content.keys)
    assert len(store.save_many(items)) == len(items) and len(store.list(limit=100)) == 10
    assert len(store.get(saved[0].content_id).lineage) == len(items[0][1].lineage)


@pytest.fixture
def stoppable(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[PostgresCluster, str]]:
    """A PostgreSQL cluster of the test's own, which it may stop (its URL carries a password), and a bucket."""
    cluster = PostgresCluster()
    bucket = f"faults{uuid.uuid4().hex[:8]}"
    cluster.create_database("faults")
    monkeypatch.setenv("AGENTFLOWS_DATABASE_URL", cluster.url("faults", password="s3cret-pw"))
    monkeypatch.setenv("AGENTFLOWS_STORAGE_URL", f"s3://{bucket}/outputs")
    monkeypatch.setenv("AGENTFLOWS_S3_ENDPOINT_URL", s3.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    s3fs.S3FileSystem(endpoint_url=s3.endpoint, key="testing", secret="testing").mkdir(bucket)
    engine = open_engine(cluster.url("faults"))
    upgrade(engine)
    engine.dispose()
    yield cluster, bucket
    default_runtime().close()
    cluster.remove()


def test_database_down_at_commit_leaves_no_row_and_the_orphans_are_swept(
    stoppable: tuple[PostgresCluster, str], s3: S3Server
) -> None:
    cluster, bucket = stoppable
    run = offline_run("quiz")
    built = run.build()
    store = open_store()
    cluster.stop()  # the objects go in, then the commit finds no database

    with pytest.raises(StorageError) as caught:
        store.save(built, run_info(run, built))

    message = str(caught.value)
    assert message.startswith("database postgresql+psycopg://postgres:***@127.0.0.1:")
    assert "s3cret-pw" not in message
    cluster.start()
    assert store.list() == []
    fs = s3fs.S3FileSystem(endpoint_url=s3.endpoint, key="testing", secret="testing")
    orphans = fs.find(bucket)
    assert len(orphans) == 2

    assert store.sweep(timedelta(hours=1)).removed == []  # too recent to be sure they are orphans
    report = store.sweep(timedelta(0))

    assert len(report.removed) == 2 and fs.find(bucket, refresh=True) == []


def test_a_batch_whose_commit_fails_leaves_no_row_of_it(stoppable: tuple[PostgresCluster, str]) -> None:
    cluster, _ = stoppable
    store = open_store()
    items = [(built, run_info(run, built, f"batch-{i}")) for i, (run, built) in enumerate(_mixed_contents()[:4])]
    cluster.stop()

    with pytest.raises(StorageError, match=r"^database postgresql"):
        store.save_many(items)

    cluster.start()
    assert store.list() == []


def test_storage_down_leaves_no_row(postgres_s3: StoreSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    config = postgres_s3.model_copy(update={"s3_endpoint_url": closed})
    store = open_store(config)
    run = offline_run("ebook")
    built = run.build()

    with pytest.raises(StorageError) as caught:
        store.save(built, run_info(run, built))

    assert str(caught.value).startswith(f"cannot write 'text/{normalize(built).content_id}/")
    assert f"{postgres_s3.storage_url} at {closed}" in str(caught.value)
    assert "testing" not in str(caught.value)
    assert open_store().list() == []


def test_referenced_objects_survive_a_sweep(any_store: StoreSettings) -> None:
    run = offline_run("api_scaffold")
    built = run.build()
    store = open_store()
    saved = store.save(built, run_info(run, built))

    report = store.sweep(timedelta(0))

    assert report.removed == [] and report.referenced == len(built.files)
    assert store.read(store.get(saved.content_id), "app/main.py")


@pytest.mark.parametrize("path", ["../escape.html", "/etc/passwd", "a\\b.html", "nul\x00.html", "./x", "a/../../b"])
def test_file_paths_that_would_escape_are_refused_before_anything_is_written(
    path: str, postgres_s3: StoreSettings
) -> None:
    run = offline_run("quiz")
    built = run.build()
    bad = built.model_copy(update={"files": (*built.files, BuiltFile(path=path, media_type="text/html", text="x"))})
    store = open_store()

    with pytest.raises(StorageError, match="could escape the store"):
        store.save(bad, run_info(run, bad))

    assert store.list() == []
    assert list(store.objects.objects()) == []


def test_to_dataframe_has_one_row_per_run_that_saved_content_with_its_usage(any_store: StoreSettings) -> None:
    store = open_store()
    for number, (run, built) in enumerate(_mixed_contents()[:3]):
        store.save(built, run_info(run, built, f"run-{number}"))

    frame = store.to_dataframe()

    assert list(frame.columns) == list(DATAFRAME_COLUMNS)
    assert len(frame) == 3 and frame["id"].is_unique
    assert (frame["model_calls"] > 0).all() and (
        frame["tokens"] == frame["prompt_tokens"] + frame["completion_tokens"]
    ).all()
    by_agent = frame.groupby(["agent", "content_type"])[["tokens", "cost", "latency_seconds"]].sum()
    assert set(by_agent.index) == {("ebook", "text"), ("lesson_plan", "text"), ("quiz", "interactive")}


def test_migrations_upgrade_and_downgrade_a_postgres_database(postgres: PostgresCluster) -> None:
    postgres.create_database("migrations")
    engine = open_engine(postgres.url("migrations"))
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        assert {"generations", "generated_contents", "artifact_versions", "knowledge_passages"} <= set(
            inspect(engine).get_table_names()
        )
        downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    finally:
        engine.dispose()
        postgres.drop_database("migrations")


def test_an_unmigrated_postgres_database_is_refused_with_the_command_to_run(
    postgres: PostgresCluster, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    postgres.create_database("fresh")
    monkeypatch.setenv("AGENTFLOWS_DATABASE_URL", postgres.url("fresh", password="hunter2"))
    try:
        head = head_revision()
        with pytest.raises(StorageError, match=rf"schema revision none, not {head}; run `agentflows db upgrade`"):
            open_store()

        assert main(["db", "upgrade"]) == 0
        out = capsys.readouterr().out
        assert "postgres:***@" in out and "hunter2" not in out and f"none -> {head}" in out
        assert main(["db", "current"]) == 0
        assert "(up to date)" in capsys.readouterr().out
        assert open_store().list() == []
    finally:
        default_runtime().close()
        postgres.drop_database("fresh")


@pytest.mark.usefixtures("prefect_server")
def test_show_prints_a_content_with_its_lineage(postgres_s3: StoreSettings, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_agent("quiz", topic="Tides", questions=2)

    assert main(["show", result.content_id]) == 0
    out = capsys.readouterr().out

    assert f"id {result.content_id}" in out and "s3://" in out
    assert "decide" in out and "generate 01-" in out and "build" in out and "offline/agentflows-offline-1" in out
    assert main(["show", result.content_id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["generation_id"] == result.flow_run_id and len(shown["lineage"]) == 4


def test_sweep_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["storage", "sweep", "--older-than", "0", "--dry-run"]) == 0
    assert "would remove 0 orphan objects" in capsys.readouterr().out
    assert main(["storage", "sweep", "--older-than", "soon"]) == 1
    assert "--older-than: 'soon' is not a duration" in capsys.readouterr().err
