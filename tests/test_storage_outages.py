"""How the content store behaves when its servers misbehave, and how it is configured and kept.

Outages are played by a TCP proxy on loopback that refuses a counted number of
connections (no timing involved); schema policy, the Block, sweeps and first
opens from several processes run against the same real servers as the rest.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import s3fs
from pydantic import SecretStr
from sqlalchemy import text

from agentflows import open_store
from agentflows.blocks.content_store import ContentStoreBlock
from agentflows.cli import main
from agentflows.tasks.errors import ConfigurationError, StorageError
from agentflows.tasks.normalize import normalize
from agentflows.tasks.storage.config import StoreSettings
from agentflows.tasks.storage.migrate import upgrade
from agentflows.tasks.storage.records import open_engine
from tests.conftest import REPO
from tests.offline_steps import offline_run
from tests.servers import OutageProxy, PostgresCluster, S3Server, free_port
from tests.test_storage import run_info


@pytest.fixture
def database_behind_proxy(
    postgres: PostgresCluster, postgres_s3: StoreSettings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OutageProxy]:
    """The test's PostgreSQL database, reached through an `OutageProxy` (with a password in its URL)."""
    proxy = OutageProxy(postgres.port)
    database = postgres_s3.database_url.get_secret_value().rsplit("/", 1)[1]
    monkeypatch.setenv(
        "AGENTFLOWS_DATABASE_URL", f"postgresql+psycopg://postgres:pw-xyz@127.0.0.1:{proxy.port}/{database}"
    )
    yield proxy
    proxy.close()


def test_a_database_outage_shorter_than_the_retries_loses_no_save(database_behind_proxy: OutageProxy) -> None:
    store = open_store()
    assert store.list() == []  # the pool now holds a live connection
    database_behind_proxy.cut(then_refuse=2)  # it dies, and so do the next two attempts
    run = offline_run("quiz")
    built = run.build()

    saved = store.save(built, run_info(run, built))

    assert database_behind_proxy.refused == 2
    assert [c.id for c in store.list()] == [saved.content_id]


def test_a_database_outage_longer_than_the_retries_names_the_database_without_its_password(
    database_behind_proxy: OutageProxy,
) -> None:
    store = open_store()
    database_behind_proxy.cut(then_refuse=100)
    run = offline_run("ebook")
    built = run.build()

    with pytest.raises(StorageError) as caught:
        store.save(built, run_info(run, built))

    assert str(caught.value).startswith(
        f"database postgresql+psycopg://postgres:***@127.0.0.1:{database_behind_proxy.port}/"
    )
    assert "pw-xyz" not in str(caught.value) and database_behind_proxy.refused == 4  # the first try and 3 retries
    database_behind_proxy.refuse(0)
    assert store.list() == []


def test_an_s3_outage_shorter_than_the_retries_loses_no_save(
    postgres_s3: StoreSettings, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = OutageProxy(s3.port)
    proxy.refuse(2)
    store = open_store(postgres_s3.model_copy(update={"s3_endpoint_url": f"http://127.0.0.1:{proxy.port}"}))
    run = offline_run("quiz")
    built = run.build()
    try:
        saved = store.save(built, run_info(run, built))
        content = store.get(saved.content_id)

        assert proxy.refused == 2
        assert store.read(content, "quiz.json") == built.file("quiz.json").text.encode()
    finally:
        proxy.close()


def test_a_missing_bucket_is_named_and_leaves_no_row(postgres_s3: StoreSettings) -> None:
    store = open_store(postgres_s3.model_copy(update={"storage_url": "s3://no-such-bucket/outputs"}))
    run = offline_run("quiz")
    built = run.build()

    with pytest.raises(StorageError) as caught:
        store.save(built, run_info(run, built))

    assert str(caught.value) == (
        f"cannot write 'interactive/{normalize(built).content_id}/index.html' and 1 more object to "
        "s3://no-such-bucket/outputs "
        f"at {postgres_s3.s3_endpoint_url}: The specified bucket does not exist"
    )
    assert store.list() == []
    with pytest.raises(StorageError, match=r"^cannot list s3://no-such-bucket/outputs at .*does not exist$"):
        store.sweep(timedelta(0))


def test_embedded_storage_that_cannot_be_written_leaves_no_row(agentflows_home: Path) -> None:
    store = open_store()
    outputs = agentflows_home / "outputs"
    outputs.rmdir()
    outputs.write_text("a file where the folder was")  # as a full or unmounted disk would, every write fails
    run = offline_run("ebook")
    built = run.build()

    with pytest.raises(StorageError) as caught:
        store.save(built, run_info(run, built))

    assert str(caught.value) == (
        f"cannot write 'text/{normalize(built).content_id}/index.html' and 1 more object to {outputs}: Not a directory"
    )
    assert store.list() == []


def test_a_storage_folder_that_cannot_be_made_is_named(agentflows_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = agentflows_home / "a-file"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a folder")
    monkeypatch.setenv("AGENTFLOWS_STORAGE_URL", str(blocker / "outputs"))

    with pytest.raises(StorageError) as caught:
        open_store()

    assert str(caught.value) == f"cannot create {blocker / 'outputs'}: Not a directory"


# -- schema policy ------------------------------------------------------------------------------


def test_processes_opening_a_new_embedded_store_at_once_all_succeed(agentflows_home: Path) -> None:
    code = "from agentflows import open_store; print(len(open_store().list()))"
    env = {**os.environ, "AGENTFLOWS_HOME": str(agentflows_home)}

    started = [
        subprocess.Popen(
            [sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    results = [(p.wait(), *(stream.read().decode() for stream in (p.stdout, p.stderr) if stream)) for p in started]
    for process in started:
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()

    assert [r[0] for r in results] == [0, 0, 0, 0], [r[2][-600:] for r in results]
    assert [r[1].strip() for r in results] == ["0"] * 4


def test_a_database_migrated_by_a_newer_agentflows_is_refused(
    agentflows_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = open_engine(f"sqlite:///{agentflows_home / 'agentflows.db'}")
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()

    with pytest.raises(StorageError, match=r"schema revision '9999', which this agentflows does not know"):
        open_store()
    assert main(["db", "upgrade"]) == 1
    assert "schema revision '9999', which this agentflows does not know" in capsys.readouterr().err


def test_db_commands_name_an_unreachable_database_without_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGENTFLOWS_DATABASE_URL", f"postgresql+psycopg://agent:hunter2@127.0.0.1:{free_port()}/x")

    assert main(["db", "current"]) == 1

    err = capsys.readouterr().err
    assert err.startswith("error: database postgresql+psycopg://agent:***@127.0.0.1:") and "OperationalError" in err
    assert "hunter2" not in err and "Traceback" not in err


# -- configuration by a Block -------------------------------------------------------------------


@pytest.mark.usefixtures("prefect_server")
def test_a_saved_content_store_block_points_runs_at_postgres_and_s3(
    postgres_s3: StoreSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"store-{uuid.uuid4().hex[:8]}"
    ContentStoreBlock(
        database_url=postgres_s3.database_url,
        storage_url=postgres_s3.storage_url,
        s3_endpoint_url=postgres_s3.s3_endpoint_url,
        aws_access_key_id=SecretStr("testing"),
        aws_secret_access_key=SecretStr("testing"),
        aws_region="us-east-1",
    ).save(name)
    for variable in ("AGENTFLOWS_DATABASE_URL", "AGENTFLOWS_STORAGE_URL", "AGENTFLOWS_S3_ENDPOINT_URL"):
        monkeypatch.delenv(variable)
    monkeypatch.setenv("AGENTFLOWS_CONTENT_STORE", name)
    run = offline_run("quiz")
    built = run.build()

    saved = open_store().save(built, run_info(run, built))

    assert saved.location.startswith(f"{postgres_s3.storage_url}/interactive/{saved.content_id}/")
    assert open_store(postgres_s3).get(saved.content_id).title == built.title
    monkeypatch.setenv("AGENTFLOWS_CONTENT_STORE", "no-such-store")
    with pytest.raises(ConfigurationError, match=r"names 'no-such-store', but no agentflows content store block"):
        open_store()


# -- sweeping and listing -----------------------------------------------------------------------


def test_a_sweep_removes_old_orphans_only_and_never_touches_foreign_objects(agentflows_home: Path) -> None:
    store = open_store()
    run = offline_run("quiz")
    built = run.build()
    kept = store.save(built, run_info(run, built))
    orphan, young, foreign = "text/0123456789abcdef0123/index.md", "text/fedcba9876543210fedc/index.md", "notes/a.txt"
    for key in (orphan, young, foreign):
        store.objects.put(key, b"x")
    two_hours_ago = time.time() - 7200
    for key in (orphan, foreign, *store.get(kept.content_id).keys.values()):
        os.utime(store.objects.path(key), (two_hours_ago, two_hours_ago))

    assert store.sweep(timedelta(hours=1), dry_run=True).removed == [orphan]
    report = store.sweep(timedelta(hours=1))

    assert report.removed == [orphan] and (report.kept_recent, report.foreign, report.referenced) == (1, 1, 2)
    assert not store.objects.exists(orphan) and store.objects.exists(young) and store.objects.exists(foreign)
    assert store.read(store.get(kept.content_id), "quiz.json")


def test_listing_by_an_unknown_type_says_which_types_exist(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match=r"^content type 'video' is not one of text, code, chart, file, interactive"):
        open_store().list("video")
    with pytest.raises(SystemExit):
        main(["contents", "--type", "video"])
    assert "invalid choice: 'video'" in capsys.readouterr().err


def test_the_bucket_holds_nothing_but_the_layout(postgres_s3: StoreSettings, s3: S3Server) -> None:
    store = open_store()
    for agent in ("ebook", "api_scaffold", "data_report"):
        run = offline_run(agent)
        built = run.build()
        store.save(built, run_info(run, built))

    fs = s3fs.S3FileSystem(endpoint_url=s3.endpoint, key="testing", secret="testing")
    prefix = postgres_s3.storage_url.removeprefix("s3://")
    folders = {path.removeprefix(f"{prefix}/").split("/")[0] for path in fs.find(prefix, refresh=True)}

    assert folders == {"text", "code", "charts"}
    assert store.sweep(timedelta(0)).removed == []
