"""The content store (SQLite records plus a local folder of files, in the isolated
AGENTFLOWS_HOME): round trips, byte-identical files, one row per distinct content,
id prefixes, helpful not-found errors, and object keys that cannot escape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentflows import open_store
from agentflows.tasks.artifacts import BuiltContent, BuiltFile
from agentflows.tasks.errors import ContentNotFound, StorageError
from agentflows.tasks.storage import ContentStore, LineageEntry, RunInfo
from agentflows.tasks.storage.objects import ObjectStore, safe_key
from agentflows.tasks.storage.records import now
from tests.offline_steps import OfflineRun, offline_run, with_fields


def built_quiz(**inputs: Any) -> tuple[OfflineRun, BuiltContent]:
    run = offline_run("quiz", **inputs)
    return run, run.build()


def run_info(run: OfflineRun, built: BuiltContent, flow_run_id: str = "run-1") -> RunInfo:
    lineage = [
        LineageEntry(checksum=run.plan.checksum, label="decide", provenance=run.plan.provenance),
        *(
            LineageEntry(checksum=d.checksum, label=f"generate {d.item_key}", provenance=d.provenance)
            for d in run.drafts
        ),
        LineageEntry(checksum=built.checksum, label="build", provenance=built.provenance),
    ]
    return RunInfo(flow_run_id=flow_run_id, inputs=run.inputs, lineage=lineage)


def add_record(store: ContentStore, content_id: str) -> None:
    """A bare content record with a chosen id (ids are normally content hashes)."""
    generation: dict[str, Any] = {
        "id": f"gen-{content_id}",
        "agent": "ebook",
        "agent_version": "1",
        "parameters": {},
        "flow_run_id": None,
        "status": "completed",
        "finished_at": now(),
        "model_calls": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cost": 0.0,
        "latency_seconds": 0.0,
    }
    content = {
        "id": content_id,
        "generation_id": f"gen-{content_id}",
        "content_type": "text",
        "format": "markdown+html",
        "title": content_id,
        "agent": "ebook",
        "agent_version": "1",
        "metadata_": {},
        "render": {},
        "content_ref": "file:///nowhere",
        "files": {},
        "size": 0,
        "content_hash": content_id * 4,
        "created_at": now(),
    }
    store.records.record(generation, content, [])


def test_saved_content_reads_back_with_its_record(agentflows_home: Path) -> None:
    run, built = built_quiz()
    store = open_store()

    saved = store.save(built, run_info(run, built))
    stored = store.get(saved.content_id)

    assert (stored.id, stored.title, stored.content_type) == (saved.content_id, built.title, built.content_type)
    assert (stored.agent, stored.agent_version, stored.flow_run_id) == ("quiz", "1.0.0", "run-1")
    assert stored.location == saved.location == saved.files["index.html"]
    assert stored.files == saved.files and set(stored.files) == {"index.html", "quiz.json"}
    assert stored.size == sum(len(f.text.encode()) for f in built.files)
    assert stored.metadata["questions"] == 3 and stored.metadata["primary"] == "index.html"
    assert stored.parameters == run.inputs
    assert [p["step"] for p in stored.lineage] == ["decide", "generate", "generate", "generate", "build"]
    assert Path(agentflows_home / "agentflows.db").is_file()
    assert saved.provenance.parent_checksum == built.checksum and saved.provenance.offline is True


def test_list_returns_saved_contents_newest_first_and_filters_by_type() -> None:
    store = open_store()
    quiz_run, quiz = built_quiz()
    book_run = offline_run("ebook")
    book = book_run.build()

    first = store.save(quiz, run_info(quiz_run, quiz))
    second = store.save(book, run_info(book_run, book))

    assert [c.id for c in store.list()] == [second.content_id, first.content_id]
    assert [c.id for c in store.list("interactive")] == [first.content_id]
    assert [c.id for c in store.list("text")] == [second.content_id]
    assert store.list("chart") == []
    assert [c.id for c in store.list(limit=1)] == [second.content_id]


def test_files_read_back_byte_identical(agentflows_home: Path) -> None:
    run = offline_run("ebook")
    body = "Ünïcödé “quotes” — emoji 🌊, CRLF\r\nand a trailing newline\n"
    built = run.build((with_fields(run.drafts[0], body=body), *run.drafts[1:]))
    store = open_store()

    stored = store.get(store.save(built, run_info(run, built)).content_id)

    for file in built.files:
        assert store.read(stored, file.path) == file.text.encode("utf-8")
        on_disk = Path(stored.files[file.path].removeprefix("file://"))
        assert on_disk.is_relative_to(agentflows_home / "outputs")
        assert on_disk.read_bytes() == file.text.encode("utf-8")
    assert body.encode() in store.read(stored, "index.md")


def test_a_second_store_reads_what_the_first_saved() -> None:
    run, built = built_quiz()
    saved = open_store().save(built, run_info(run, built))

    again = open_store()

    assert again.read(again.get(saved.content_id), "quiz.json") == built.file("quiz.json").text.encode()


def test_saving_the_same_content_twice_keeps_one_row_and_one_id() -> None:
    run, built = built_quiz()
    store = open_store()

    first = store.save(built, run_info(run, built, "run-1"))
    second = store.save(run.build(), run_info(run, built, "run-2"))

    assert second.content_id == first.content_id and second.files == first.files
    assert len(store.list()) == 1
    assert store.get(first.content_id).flow_run_id == "run-1"


def test_different_content_gets_a_different_id() -> None:
    store = open_store()
    run, built = built_quiz()
    other_run, other = built_quiz(topic="Volcanoes")

    ids = {store.save(built, run_info(run, built)).content_id, store.save(other, run_info(other_run, other)).content_id}

    assert len(ids) == 2 and len(store.list()) == 2


def test_content_is_found_by_a_unique_prefix_of_its_id() -> None:
    run, built = built_quiz()
    store = open_store()
    content_id = store.save(built, run_info(run, built)).content_id

    assert store.get(content_id[:6]).id == content_id
    assert store.get(content_id[:12]).id == content_id


def test_unknown_id_raises_content_not_found_with_a_hint() -> None:
    store = open_store()

    with pytest.raises(ContentNotFound) as caught:
        store.get("0000000000")

    assert isinstance(caught.value, StorageError)
    assert str(caught.value) == "no stored content has id '0000000000'; `agentflows contents` lists them"


def test_too_short_prefix_says_how_long_a_prefix_must_be() -> None:
    run, built = built_quiz()
    store = open_store()
    content_id = store.save(built, run_info(run, built)).content_id

    with pytest.raises(ContentNotFound, match=rf"no stored content has id '{content_id[:4]}'.*at least 6 characters"):
        store.get(content_id[:4])


def test_ambiguous_prefix_names_the_matching_ids() -> None:
    store = open_store()
    for content_id in ("abcdef0001", "abcdef0002"):
        add_record(store, content_id)

    with pytest.raises(ContentNotFound) as caught:
        store.get("abcdef")

    assert str(caught.value) == (
        "id prefix 'abcdef' matches more than one stored content ('abcdef0001', 'abcdef0002'); "
        "give more characters of the id"
    )
    assert store.get("abcdef0002").id == "abcdef0002"


def test_prefix_with_sql_wildcards_matches_literally() -> None:
    store = open_store()
    add_record(store, "abcdef0001")

    with pytest.raises(ContentNotFound):
        store.get("abc%ef")
    with pytest.raises(ContentNotFound):
        store.get("abcde_")


# -- object keys --------------------------------------------------------------------


ESCAPING_KEYS = ["../x", "/abs", "a//b", "a/../../b", "./a", "", "a/", "a\\..\\b", "~/x", "a/.hidden"]


@pytest.mark.parametrize("key", ESCAPING_KEYS)
def test_keys_that_could_escape_the_store_are_refused(key: str) -> None:
    with pytest.raises(StorageError) as caught:
        safe_key(key)

    assert str(caught.value).startswith(f"object key {key!r} is not a relative path of plain names")
    assert str(caught.value).endswith("could escape the store")


@pytest.mark.parametrize("key", ESCAPING_KEYS)
def test_put_refuses_an_escaping_key_and_writes_nothing(key: str, tmp_path: Path) -> None:
    objects = ObjectStore(tmp_path / "outputs")

    with pytest.raises(StorageError, match="could escape the store"):
        objects.put(key, b"data")

    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_plain_keys_round_trip_and_missing_keys_say_so(tmp_path: Path) -> None:
    objects = ObjectStore(tmp_path / "outputs")

    objects.put("text/abc/charts/01-sales.vl.json", b"{}\n")

    assert objects.get("text/abc/charts/01-sales.vl.json") == b"{}\n"
    assert objects.exists("text/abc/charts/01-sales.vl.json")
    assert objects.url("text/abc/charts/01-sales.vl.json").startswith("file://")
    with pytest.raises(StorageError, match=r"object 'text/abc/missing\.md' does not exist in "):
        objects.get("text/abc/missing.md")


def test_content_with_an_escaping_file_path_is_refused_and_leaves_no_row(tmp_path: Path) -> None:
    run, built = built_quiz()
    evil = BuiltFile(path="../../evil.html", media_type="text/html", text="<p>x</p>")
    bad = built.model_copy(update={"files": (*built.files, evil)})
    store = open_store()

    with pytest.raises(StorageError, match=r"'interactive/[0-9a-f]{20}/\.\./\.\./evil\.html'"):
        store.save(bad, run_info(run, bad))

    assert store.list() == []
    assert not any(p.name == "evil.html" for p in tmp_path.rglob("*"))
