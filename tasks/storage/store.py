"""The content store: built content in, stored content out.

`ContentStore.save` writes the files first, under content-addressed keys
(`<type>/<id>/<path>`, so writing them again is harmless), then one database
row keyed by the content hash. A failure before the row is committed leaves no
row pointing at a missing object; saving the same content twice writes no
second row.

`open_store()` gives the embedded default: SQLite at
`$AGENTFLOWS_HOME/agentflows.db` and files under `$AGENTFLOWS_HOME/outputs`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, JsonValue

from tasks.artifacts import BuiltContent, ContentType, Provenance, SavedContent
from tasks.errors import ContentNotFound
from tasks.settings import Settings, current_settings
from tasks.storage.objects import ObjectStore
from tasks.storage.records import MIN_PREFIX, ContentRecord, ContentRepository, now, open_engine


class RunInfo(BaseModel):
    """Facts about the run that produced the content, stored beside it."""

    model_config = ConfigDict(frozen=True)

    flow_run_id: str | None = None
    inputs: dict[str, JsonValue] = {}
    lineage: list[Provenance] = []
    """Provenance of the plan, every draft and the built content."""


class StoredContent(BaseModel):
    """A content record as read back from the store."""

    model_config = ConfigDict(frozen=True)

    id: str
    content_type: ContentType
    title: str
    agent: str
    agent_version: str
    location: str
    files: dict[str, str]
    size: int
    content_hash: str
    metadata: dict[str, Any]
    flow_run_id: str | None
    created_at: datetime


class ContentStore:
    """Content files in an `ObjectStore`, their records in a `ContentRepository`."""

    def __init__(self, objects: ObjectStore, records: ContentRepository) -> None:
        self.objects = objects
        self.records = records

    def save(self, built: BuiltContent, run: RunInfo) -> SavedContent:
        """Store `built` (objects first, then the row) and say where it lives."""
        content_hash = content_hash_of(built)
        content_id = content_hash[:20]
        prefix = f"{built.content_type.value}/{content_id}"
        files = {}
        for file in built.files:
            key = f"{prefix}/{file.path}"
            self.objects.put(key, file.text.encode())
            files[file.path] = self.objects.url(key)
        self.records.add(
            {
                "id": content_id,
                "content_hash": content_hash,
                "content_type": built.content_type.value,
                "title": built.title[:500],
                "agent": built.provenance.agent,
                "agent_version": built.provenance.agent_version,
                "content_ref": files[built.primary],
                "files": files,
                "size": sum(len(f.text.encode()) for f in built.files),
                "metadata_": _metadata(built, run),
                "flow_run_id": run.flow_run_id,
                "created_at": now(),
            }
        )
        return SavedContent(
            content_id=content_id,
            content_type=built.content_type,
            title=built.title,
            location=files[built.primary],
            files=files,
            provenance=Provenance(
                agent=built.provenance.agent,
                agent_version=built.provenance.agent_version,
                step="save",
                offline=built.provenance.offline,
                parent_checksum=built.checksum,
            ),
        ).sealed()

    def get(self, content_id: str) -> StoredContent:
        """The content with `content_id` (or a unique prefix of it)."""
        record = self.records.get(content_id)
        if record is None:
            raise ContentNotFound(self._not_found(content_id))
        return _stored(record)

    def _not_found(self, content_id: str) -> str:
        """Why `content_id` names no content: unknown, too short, or an ambiguous prefix."""
        if len(content_id) >= MIN_PREFIX and len(matches := self.records.ids_starting(content_id, 3)) > 1:
            more = ", …" if len(matches) > 2 else ""
            listed = ", ".join(repr(m) for m in matches[:2]) + more
            return (
                f"id prefix {content_id!r} matches more than one stored content ({listed}); "
                "give more characters of the id"
            )
        short = f" (a prefix needs at least {MIN_PREFIX} characters)" if len(content_id) < MIN_PREFIX else ""
        return f"no stored content has id {content_id!r}{short}; `agentflows contents` lists them"

    def list(self, content_type: str | None = None, limit: int = 50) -> list[StoredContent]:
        """The newest contents, optionally of one type."""
        return [_stored(r) for r in self.records.list(content_type, limit)]

    def read(self, content: StoredContent, path: str) -> bytes:
        """The bytes of one file of `content`."""
        return self.objects.get(f"{content.content_type.value}/{content.id}/{path}")


def open_store(settings: Settings | None = None) -> ContentStore:
    """The content store the settings point at (the embedded default)."""
    settings = settings or current_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = open_engine(f"sqlite:///{settings.database_path}")
    return ContentStore(ObjectStore(settings.outputs_dir), ContentRepository(engine))


def content_hash_of(built: BuiltContent) -> str:
    """sha256 over the content type and every file's path and bytes."""
    digest = hashlib.sha256(built.content_type.value.encode())
    for file in sorted(built.files, key=lambda f: f.path):
        digest.update(b"\0" + file.path.encode() + b"\0" + hashlib.sha256(file.text.encode()).digest())
    return digest.hexdigest()


def _metadata(built: BuiltContent, run: RunInfo) -> dict[str, Any]:
    return {
        **built.metadata,
        "primary": built.primary,
        "inputs": run.inputs,
        "lineage": [p.model_dump(mode="json") for p in run.lineage],
    }


def _stored(record: ContentRecord) -> StoredContent:
    return StoredContent(
        id=record.id,
        content_type=ContentType(record.content_type),
        title=record.title,
        agent=record.agent,
        agent_version=record.agent_version,
        location=record.content_ref,
        files=record.files,
        size=record.size,
        content_hash=record.content_hash,
        metadata=record.metadata_,
        flow_run_id=record.flow_run_id,
        created_at=record.created_at,
    )
