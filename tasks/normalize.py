"""Built content → normalized content: what gets stored, where, and how to show it.

One function per content type decides the content's storage format, the
metadata kept inline in its database row and the hints a viewer needs; the
files and their object keys follow one layout for every type:

    <type folder>/<content id>/<path inside the content>

    text/3f9c…/index.md, text/3f9c…/index.html
    code/a41b…/app/main.py, code/a41b…/agentflows-preview.html
    charts/77d0…/index.html, charts/77d0…/charts/01-overview.vl.json
    interactive/c2e8…/index.html, interactive/c2e8…/quiz.json

The content id is the start of a hash of the type and every file's path and
bytes, so the same content always lands on the same keys. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

from pydantic import JsonValue

from agentflows.tasks.artifacts import BuiltContent, ContentType, Frozen
from agentflows.tasks.errors import StorageError

TYPE_FOLDERS: dict[ContentType, str] = {
    ContentType.text: "text",
    ContentType.code: "code",
    ContentType.chart: "charts",
    ContentType.file: "files",
    ContentType.interactive: "interactive",
    ContentType.mixed: "mixed",
}
ID_LENGTH = 20
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class StoredFile(Frozen):
    """One file of normalized content and the object key it is stored under."""

    path: str
    key: str
    media_type: str
    data: bytes
    sha256: str

    @property
    def size(self) -> int:
        return len(self.data)


class NormalizedContent(Frozen):
    """Content ready for storage: its row's values and its objects."""

    content_id: str
    content_hash: str
    content_type: ContentType
    format: str
    """How the content is stored: `markdown+html`, `file-tree`, `vega-lite+html`, `html`, …"""
    title: str
    metadata: dict[str, JsonValue]
    """Kept inline in the database row (JSONB on PostgreSQL)."""
    render: dict[str, JsonValue]
    """What a viewer needs: which file to open and how to show it."""
    files: tuple[StoredFile, ...]
    primary: str
    """Path of the file to open first."""

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def key_of(self, path: str) -> str:
        return next(f.key for f in self.files if f.path == path)


def safe_key(key: str) -> str:
    """`key` when it is a relative path of plain names; raise `StorageError` otherwise."""
    parts = key.split("/")
    if not key or len(key) > 900 or not all(_SEGMENT.match(p) for p in parts):
        raise StorageError(
            f"object key {key!r} is not a relative path of plain names (letters, digits, '_', '-', '.'); "
            "'..', absolute paths, backslashes and control characters could escape the store"
        )
    return key


def content_hash_of(built: BuiltContent) -> str:
    """sha256 over the content type and every file's path and bytes."""
    digest = hashlib.sha256(built.content_type.value.encode())
    for file in sorted(built.files, key=lambda f: f.path):
        digest.update(b"\0" + file.path.encode() + b"\0" + hashlib.sha256(file.text.encode()).digest())
    return digest.hexdigest()


def normalize(built: BuiltContent) -> NormalizedContent:
    """The normalized form of `built`: files under their keys, format, metadata and render hints."""
    content_hash = content_hash_of(built)
    content_id = content_hash[:ID_LENGTH]
    prefix = f"{TYPE_FOLDERS[built.content_type]}/{content_id}"
    files = tuple(
        StoredFile(
            path=f.path,
            key=safe_key(f"{prefix}/{f.path}"),
            media_type=f.media_type,
            data=(data := f.text.encode()),
            sha256=hashlib.sha256(data).hexdigest(),
        )
        for f in built.files
    )
    fmt, metadata, render = NORMALIZERS[built.content_type](built)
    return NormalizedContent(
        content_id=content_id,
        content_hash=content_hash,
        content_type=built.content_type,
        format=fmt,
        title=built.title,
        metadata={**_common_metadata(built), **metadata},
        render={"open": built.primary, "media_type": built.file(built.primary).media_type, **render},
        files=files,
        primary=built.primary,
    )


Normalizer = Callable[[BuiltContent], tuple[str, dict[str, Any], dict[str, Any]]]


def normalize_text(built: BuiltContent) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Prose: Markdown source plus its HTML rendering."""
    markdown = _first(built, "text/markdown")
    return (
        "markdown+html",
        {"words": len(markdown.split()) if markdown else 0},
        {"viewer": "html", "source": _path_of(built, "text/markdown")},
    )


def normalize_code(built: BuiltContent) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A source tree: the files, their languages, and an HTML preview."""
    sources = [f.path for f in built.files if f.path != built.primary]
    return (
        "file-tree",
        {"source_files": sources, "lines": sum(f.text.count("\n") + 1 for f in built.files if f.path in sources)},
        {"viewer": "code-tree"},
    )


def normalize_chart(built: BuiltContent) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A data report: tables as CSV, charts as Vega-Lite specs, an HTML report."""
    specs = [f.path for f in built.files if f.path.endswith(".vl.json")]
    tables = [f.path for f in built.files if f.media_type == "text/csv"]
    return "vega-lite+html", {"chart_specs": specs, "tables": tables}, {"viewer": "html", "charts": specs}


def normalize_file(built: BuiltContent) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Downloadable files."""
    return "files", {"file_count": len(built.files)}, {"viewer": "download"}


def normalize_interactive(built: BuiltContent) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A self-contained interactive page (and its data)."""
    data = [f.path for f in built.files if f.media_type == "application/json"]
    return "html", {"data_files": data, "self_contained": True}, {"viewer": "sandboxed-iframe"}


def normalize_mixed(built: BuiltContent) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Several kinds of parts (a router manifest, a mixed document)."""
    kinds = sorted({f.media_type for f in built.files})
    return "bundle", {"media_types": kinds}, {"viewer": "html" if built.primary.endswith(".html") else "markdown"}


NORMALIZERS: dict[ContentType, Normalizer] = {
    ContentType.text: normalize_text,
    ContentType.code: normalize_code,
    ContentType.chart: normalize_chart,
    ContentType.file: normalize_file,
    ContentType.interactive: normalize_interactive,
    ContentType.mixed: normalize_mixed,
}


def _common_metadata(built: BuiltContent) -> dict[str, JsonValue]:
    p = built.provenance
    return {
        **built.metadata,
        "primary": built.primary,
        "files": {f.path: f.media_type for f in built.files},
        "offline": p.offline,
        "build_checksum": built.checksum,
        "template_hashes": dict(p.template_hashes),
    }


def _first(built: BuiltContent, media_type: str) -> str:
    return next((f.text for f in built.files if f.media_type == media_type), "")


def _path_of(built: BuiltContent, media_type: str) -> Any:
    return next((f.path for f in built.files if f.media_type == media_type), None)
