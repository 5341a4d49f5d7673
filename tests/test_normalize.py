"""The normalizer: one pure function per content type, content-addressed keys under one layout."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agentflows.tasks.artifacts import BuiltContent, BuiltFile, ContentType, Provenance
from agentflows.tasks.errors import StorageError
from agentflows.tasks.normalize import ID_LENGTH, NORMALIZERS, TYPE_FOLDERS, normalize
from tests.conftest import REPO, SHIPPED_AGENTS
from tests.offline_steps import offline_run

EXPECTED_FORMATS = {
    "ebook": "markdown+html",
    "lesson_plan": "markdown+html",
    "quiz": "html",
    "api_scaffold": "file-tree",
    "data_report": "vega-lite+html",
}


def built(content_type: ContentType, *files: tuple[str, str, str], primary: str | None = None) -> BuiltContent:
    """Content made by hand: (path, media type, text) per file."""
    return BuiltContent(
        content_type=content_type,
        title="By hand",
        primary=primary or files[0][0],
        files=tuple(BuiltFile(path=p, media_type=m, text=t) for p, m, t in files),
        provenance=Provenance(agent="handmade", agent_version="1", step="build"),
    ).sealed()


def test_every_content_type_has_a_normalizer_and_a_folder() -> None:
    assert set(NORMALIZERS) == set(ContentType) == set(TYPE_FOLDERS)
    assert len(set(TYPE_FOLDERS.values())) == len(ContentType)


@pytest.mark.parametrize("agent", SHIPPED_AGENTS)
def test_shipped_agents_normalize_to_their_format_under_their_type_folder(agent: str) -> None:
    content = offline_run(agent).build()

    normal = normalize(content)

    assert normal.format == EXPECTED_FORMATS[agent] and normal.content_type == content.content_type
    assert len(normal.content_id) == ID_LENGTH and normal.content_hash.startswith(normal.content_id)
    folder = TYPE_FOLDERS[content.content_type]
    assert [f.key for f in normal.files] == [f"{folder}/{normal.content_id}/{f.path}" for f in content.files]
    assert [f.data for f in normal.files] == [f.text.encode() for f in content.files]
    assert normal.render["open"] == content.primary == normal.metadata["primary"]
    assert normal.metadata["build_checksum"] == content.checksum
    assert normal.size == sum(len(f.text.encode()) for f in content.files)


def test_text_keeps_a_word_count_and_points_the_viewer_at_the_markdown_source() -> None:
    normal = normalize(
        built(
            ContentType.text,
            ("index.html", "text/html", "<p>three little words</p>"),
            ("index.md", "text/markdown", "three little words"),
        )
    )

    assert (normal.format, normal.metadata["words"]) == ("markdown+html", 3)
    assert normal.render == {"open": "index.html", "media_type": "text/html", "viewer": "html", "source": "index.md"}


def test_file_and_mixed_content_have_their_own_folders_and_viewers() -> None:
    files = normalize(built(ContentType.file, ("data.csv", "text/csv", "a,b\n1,2\n"), ("notes.txt", "text/plain", "x")))
    mixed = normalize(
        built(ContentType.mixed, ("manifest.json", "application/json", "{}"), ("index.md", "text/markdown", "# M"))
    )

    assert files.files[0].key == f"files/{files.content_id}/data.csv"
    assert (files.format, files.metadata["file_count"], files.render["viewer"]) == ("files", 2, "download")
    assert mixed.files[0].key == f"mixed/{mixed.content_id}/manifest.json"
    assert mixed.format == "bundle" and mixed.metadata["media_types"] == ["application/json", "text/markdown"]


def test_the_id_follows_the_bytes_not_the_order_of_files_or_the_title() -> None:
    a = ("a.txt", "text/plain", "alpha")
    b = ("b.txt", "text/plain", "beta")
    first = normalize(built(ContentType.file, a, b))

    assert normalize(built(ContentType.file, b, a, primary="a.txt")).content_id == first.content_id
    assert normalize(built(ContentType.file, a, b).model_copy(update={"title": "Other"})).content_id == first.content_id
    assert normalize(built(ContentType.file, a, ("b.txt", "text/plain", "betA"))).content_id != first.content_id
    assert normalize(built(ContentType.mixed, a, b)).content_id != first.content_id


@pytest.mark.parametrize("path", ["../up.txt", "/etc/passwd", "dir\\file.txt", "nul\x00.txt", "a/./b.txt", "C:/x"])
def test_a_file_path_that_would_escape_its_prefix_is_refused(path: str) -> None:
    with pytest.raises(StorageError) as caught:
        normalize(built(ContentType.file, ("ok.txt", "text/plain", "x"), (path, "text/plain", "x")))

    assert repr(path)[1:-1] in str(caught.value) and str(caught.value).endswith("could escape the store")


def test_the_normalizer_imports_no_database_storage_or_network_library() -> None:
    heavy = ["sqlalchemy", "alembic", "psycopg", "fsspec", "s3fs", "botocore", "httpx", "prefect", "pandas"]
    code = (
        "import sys, agentflows.tasks.normalize; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))"
    )

    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)

    assert done.stdout.strip() == "[]"
