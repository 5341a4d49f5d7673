"""The content store: built content in, normalized records and objects out, and back.

Write once, never half:

1. normalize the content (`agentflows.tasks.normalize`): content-addressed keys, format, metadata;
2. write every object (repeats are harmless: same key, same bytes);
3. one database transaction: the generation, the content (upserted on its
   content hash) and the lineage of its artifacts.

A failure in 2 or 3 leaves no row pointing at a missing object; objects written
before a failed commit are orphans that `sweep` removes once they are older than
a cutoff. `agentflows.open_store()` gives the configured store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, computed_field

from agentflows.tasks.artifacts import BuiltContent, ContentType, Provenance, SavedContent
from agentflows.tasks.errors import ContentNotFound, StorageError
from agentflows.tasks.handoff import builds_on
from agentflows.tasks.normalize import NormalizedContent, normalize
from agentflows.tasks.storage.objects import ObjectStore
from agentflows.tasks.storage.records import MIN_PREFIX, ContentRepository, now
from agentflows.tasks.storage.rows import (
    RunInfo,
    dataframe_row,
    generation_row,
    lineage_rows,
    lineage_view,
)
from agentflows.tasks.storage.schema import ArtifactVersion, GeneratedContent, Generation
from agentflows.tasks.storage.sweep import SweepReport, sweep

DATAFRAME_COLUMNS = (
    "id",
    "agent",
    "agent_version",
    "content_type",
    "format",
    "title",
    "created_at",
    "size",
    "generation_id",
    "flow_run_id",
    "model_calls",
    "prompt_tokens",
    "completion_tokens",
    "tokens",
    "cost",
    "latency_seconds",
    "cached_steps",
    "seconds",
)
"""Columns of `ContentStore.to_dataframe()`, one row per run that saved content."""


class StoredContent(BaseModel):
    """A content as read back from the store, with the lineage of the run that made it."""

    model_config = ConfigDict(frozen=True)

    id: str
    content_type: ContentType
    format: str
    title: str
    agent: str
    agent_version: str
    location: str
    files: dict[str, str]
    """URI of every file, by its path inside the content."""
    keys: dict[str, str]
    """Object key of every file, by its path inside the content."""
    size: int
    content_hash: str
    metadata: dict[str, Any]
    render: dict[str, Any]
    generation_id: str
    flow_run_id: str | None
    parameters: dict[str, Any] = {}
    """The inputs of the run that made it."""
    created_at: datetime
    lineage: list[dict[str, Any]] = []
    """The step artifacts of the generation that made it: step, checksum, parent, templates, knowledge passages
    (source, heading, hash), model, usage; first, one `uses` entry per upstream content it was made from;
    an editor's decision (`review`) where one was made."""
    reworked_from: str | None = None
    """The content this one was reworked from (`agentflows rerun`), if it was."""
    reviews: list[dict[str, Any]] = []
    """The decisions people made in every run that made this content, oldest first: an editor's review of the
    plan (decision, notes, reviewer, when, edits) or a rework's request. A run that makes the same content
    again adds its decisions here, though `lineage` stays that of the first run."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def builds_on(self) -> dict[str, str]:
        """Content id of each upstream content this one was made from, by agent (from the lineage)."""
        return builds_on(self.lineage)


class ContentPage(BaseModel):
    """One page of a search of the store: its contents (without lineage) and how many matched in all."""

    model_config = ConfigDict(frozen=True)

    items: list[StoredContent]
    total: int
    limit: int
    offset: int


class ContentStore:
    """Content files in an `ObjectStore`, their records in a `ContentRepository`."""

    def __init__(self, objects: ObjectStore, records: ContentRepository) -> None:
        self.objects = objects
        self.records = records

    def close(self) -> None:
        """Close the database connections (a later use opens new ones)."""
        self.records.engine.dispose()

    def save(self, built: BuiltContent, run: RunInfo) -> SavedContent:
        """Store `built`: objects first, then one transaction for its rows."""
        return self.save_many([(built, run)])[0]

    def save_many(self, items: Sequence[tuple[BuiltContent, RunInfo]]) -> list[SavedContent]:
        """Store a batch of contents: every object first, then one transaction for all their rows.

        The batch is whole or absent in the database: a failure writes no row of it
        (objects already written are orphans for `sweep`). Results follow `items`.
        """
        normalized = [normalize(built) for built, _ in items]
        self.objects.put_many({f.key: f.data for content in normalized for f in content.files})
        generations, contents, lineage = [], [], []
        for content, (built, run) in zip(normalized, items, strict=True):
            generation = generation_row(built, run, content.content_id)
            generations.append(generation)
            contents.append(self._content_row(content, built, generation["id"]))
            lineage.extend(lineage_rows(run, generation["id"]))
        self.records.record_many(generations, contents, lineage)
        return [self._saved(content, built) for content, (built, _) in zip(normalized, items, strict=True)]

    def _saved(self, content: NormalizedContent, built: BuiltContent) -> SavedContent:
        files = {f.path: self.objects.url(f.key) for f in content.files}
        return SavedContent(
            content_id=content.content_id,
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

    def _content_row(self, content: NormalizedContent, built: BuiltContent, generation_id: str) -> dict[str, Any]:
        return {
            "id": content.content_id,
            "generation_id": generation_id,
            "content_type": content.content_type.value,
            "format": content.format,
            "title": content.title[:500],
            "agent": built.provenance.agent,
            "agent_version": built.provenance.agent_version,
            "metadata_": content.metadata,
            "render": content.render,
            "content_ref": self.objects.url(content.key_of(content.primary)),
            "files": {f.path: f.key for f in content.files},
            "size": content.size,
            "content_hash": content.content_hash,
            "created_at": now(),
        }

    def get(self, content_id: str) -> StoredContent:
        """The content with `content_id` (or a unique prefix of it), with its lineage."""
        record = self.records.get(content_id)
        if record is None:
            raise ContentNotFound(self._not_found(content_id))
        generation = self.records.generation(record.generation_id)
        stored = self._stored(record, generation, self.records.lineage(record.generation_id))
        reviews = [a.review for a in self.records.reviews(record.id, record.generation_id) if a.review]
        return stored.model_copy(update={"reviews": reviews})

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

    def search(
        self,
        content_type: ContentType | str | None = None,
        agent: str | None = None,
        text: str | None = None,
        *,
        limit: int = 25,
        offset: int = 0,
    ) -> ContentPage:
        """One page of the newest contents of a type, by an agent, with `text` in the title (each filter optional)."""
        kind = _content_type(content_type).value if content_type else None
        found, total = self.records.search(kind, agent or None, text or None, limit, offset)
        items = [self._stored(c, g, []) for c, g in found]
        return ContentPage(items=items, total=total, limit=limit, offset=offset)

    def agents(self) -> list[str]:
        """The agents that made stored contents."""
        return self.records.agents()

    def versions(self, content: StoredContent, limit: int = 200) -> list[StoredContent]:
        """Contents the same agent made from the same inputs (`content` among them), newest first."""
        found = self.records.made_by(content.agent, limit)
        return [self._stored(c, g, []) for c, g in found if g.parameters == content.parameters]

    def list(self, content_type: ContentType | str | None = None, limit: int = 50) -> list[StoredContent]:
        """The newest contents, optionally of one type (without lineage; `get` has it)."""
        kind = _content_type(content_type).value if content_type else None
        return [self._stored(r, None, []) for r in self.records.newest(kind, limit)]

    def read(self, content: StoredContent, path: str) -> bytes:
        """The bytes of one file of `content`."""
        if path not in content.keys:
            raise StorageError(
                f"content {content.id!r} has no file {path!r}; it has: {', '.join(sorted(content.keys))}"
            )
        return self.objects.get(content.keys[path])

    def to_dataframe(self) -> pd.DataFrame:
        """One row per run that saved content: the content, and the calls, tokens, cost and latency the run spent.

        A content saved by several runs has a row for each, so sums over the frame are
        what was really spent (`DATAFRAME_COLUMNS`).
        """
        rows = [dataframe_row(c, g) for c, g in self.records.generations_with_contents()]
        return pd.DataFrame(rows, columns=list(DATAFRAME_COLUMNS))

    def sweep(self, older_than: timedelta, *, dry_run: bool = False) -> SweepReport:
        """Remove objects no content row refers to, once older than `older_than` (`agentflows.tasks.storage.sweep`)."""
        return sweep(self.objects, self.records, older_than, dry_run)

    def _stored(
        self, record: GeneratedContent, generation: Generation | None, lineage: Iterable[ArtifactVersion]
    ) -> StoredContent:
        return StoredContent(
            id=record.id,
            content_type=ContentType(record.content_type),
            format=record.format,
            title=record.title,
            agent=record.agent,
            agent_version=record.agent_version,
            location=record.content_ref,
            files={path: self.objects.url(key) for path, key in record.files.items()},
            keys=dict(record.files),
            size=record.size,
            content_hash=record.content_hash,
            metadata=record.metadata_,
            render=record.render,
            generation_id=record.generation_id,
            flow_run_id=generation.flow_run_id if generation else None,
            parameters=generation.parameters if generation else {},
            created_at=record.created_at,
            lineage=[lineage_view(a) for a in lineage],
            reworked_from=generation.reworked_from if generation else None,
        )


def _content_type(value: ContentType | str) -> ContentType:
    try:
        return ContentType(value)
    except ValueError:
        valid = ", ".join(t.value for t in ContentType)
        raise ValueError(f"content type {value!r} is not one of {valid}") from None
