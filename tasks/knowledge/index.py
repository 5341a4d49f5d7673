"""The knowledge index: passages of knowledge files in the content database, kept current, searchable.

    KnowledgeIndex.for_engine(engine)   SqliteIndex (FTS5, BM25) or PostgresIndex (tsvector, ts_rank_cd)
    sync(documents, prefixes)           split and index files whose content changed, drop files that are
                                        gone from a source folder; the document ids to search
    keyword(terms, scope, limit)        passage ids by full-text rank, best first (per database)
    passages(ids)                       the passages behind ids
    embeddings: missing / store / matrix   vectors per passage hash and model (`vectors.py` uses them)

A file is indexed again only when its content hash (or the passage size cap)
changed, so syncing unchanged sources costs one query. Concurrent syncs of the same
files (two runs starting at once) are safe: a sync that collides with another is
tried again and then finds the files current.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, bindparam, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from agentflows.tasks.errors import StorageError, one_line
from agentflows.tasks.knowledge.passages import Document, content_hash, split_text
from agentflows.tasks.knowledge.ranking import fts5_query, tsquery
from agentflows.tasks.knowledge.retrieved import Passage
from agentflows.tasks.knowledge.tables import (
    FTS_TABLE,
    TEXT_SEARCH_CONFIG,
    KnowledgeDocument,
    KnowledgeEmbedding,
    KnowledgePassage,
)

SYNC_ATTEMPTS = 4
T = TypeVar("T")


@dataclass(frozen=True)
class Hit:
    """One passage found for a query."""

    passage: Passage
    line: int
    score: float


@dataclass(frozen=True)
class SyncReport:
    """What a sync found and did."""

    documents: int
    passages: int
    indexed: int
    """Files split and indexed (new or changed)."""
    removed: int
    """Files dropped from the index because they are gone from their source folder."""
    seconds: float


class KnowledgeIndex:
    """Passages in the content database behind `engine`; subclasses search them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.name = engine.url.render_as_string(hide_password=True)

    @staticmethod
    def for_engine(engine: Engine) -> KnowledgeIndex:
        """The index implementation for `engine`'s database."""
        return PostgresIndex(engine) if engine.dialect.name == "postgresql" else SqliteIndex(engine)

    # -- keeping it current ------------------------------------------------------------------

    def sync(
        self, documents: Sequence[Document], prefixes: Sequence[str], max_chars: int, *, rebuild: bool = False
    ) -> tuple[SyncReport, tuple[int, ...]]:
        """Index `documents` (those changed, or all when `rebuild`); drop indexed files under `prefixes`
        that are not among them. Returns what was done and the ids of the documents, to search them."""
        started = time.perf_counter()

        def attempt(session: Session) -> tuple[SyncReport, tuple[int, ...]]:
            known = self._known(session, [d.uri for d in documents])
            ids, indexed, passages = [], 0, 0
            for document in documents:
                wanted = content_hash(f"{max_chars}\0{document.text}")
                found = known.get(document.uri)
                if found is not None and found[1] == wanted and not rebuild:
                    ids.append(found[0])
                    passages += found[2]
                    continue
                doc_id, count = self._index(session, document, wanted, max_chars, found)
                ids.append(doc_id)
                indexed += 1
                passages += count
            removed = self._prune(session, prefixes, {d.uri for d in documents})
            seconds = time.perf_counter() - started
            return SyncReport(len(documents), passages, indexed, removed, seconds), tuple(ids)

        return self._retrying(attempt)

    def _known(self, session: Session, uris: list[str]) -> dict[str, tuple[int, str, int]]:
        d = KnowledgeDocument
        query = select(d.uri, d.id, d.content_hash, d.passages).where(d.uri.in_(bindparam("uris", expanding=True)))
        found: dict[str, tuple[int, str, int]] = {}
        for start in range(0, len(uris), 500):
            for uri, doc_id, digest, count in session.execute(query, {"uris": uris[start : start + 500]}):
                found[uri] = (doc_id, digest, count)
        return found

    def _index(
        self, session: Session, document: Document, digest: str, max_chars: int, found: tuple[int, str, int] | None
    ) -> tuple[int, int]:
        chunks = split_text(document.text, markdown=document.markdown, max_chars=max_chars)
        values = {"name": document.name, "content_hash": digest, "passages": len(chunks), "indexed_at": _now()}
        if found is None:
            statement = insert(KnowledgeDocument).values(uri=document.uri, **values).returning(KnowledgeDocument.id)
            doc_id = int(session.execute(statement).scalar_one())
        else:
            doc_id = found[0]
            session.execute(delete(KnowledgePassage).where(KnowledgePassage.document_id == doc_id))
            session.execute(update(KnowledgeDocument).where(KnowledgeDocument.id == doc_id).values(**values))
        if chunks:
            session.execute(
                insert(KnowledgePassage),
                [
                    {"document_id": doc_id, "position": n, "heading": c.heading, "text": c.text, "line": c.line}
                    | {"hash": c.hash}
                    for n, c in enumerate(chunks)
                ],
            )
        return doc_id, len(chunks)

    def _prune(self, session: Session, prefixes: Sequence[str], current: set[str]) -> int:
        d = KnowledgeDocument
        stale: list[int] = []
        for prefix in prefixes:
            query = select(d.id, d.uri).where(d.uri.startswith(prefix, autoescape=True))
            stale += [doc_id for doc_id, uri in session.execute(query) if uri not in current]
        if stale:
            session.execute(delete(KnowledgePassage).where(KnowledgePassage.document_id.in_(stale)))
            session.execute(delete(KnowledgeDocument).where(KnowledgeDocument.id.in_(stale)))
        return len(stale)

    # -- searching ---------------------------------------------------------------------------

    def keyword(self, terms: Sequence[str], scope: Sequence[int], limit: int) -> list[tuple[int, float]]:
        """(passage id, score) of the passages of `scope` that match any of `terms`, best first."""
        raise NotImplementedError

    def passages(self, ids: Sequence[int]) -> dict[int, tuple[Passage, int]]:
        """The passage and first line behind each id."""
        p, d = KnowledgePassage, KnowledgeDocument
        query = (
            select(p.id, d.name, p.heading, p.text, p.hash, p.line)
            .join(d, d.id == p.document_id)
            .where(p.id.in_(bindparam("ids", expanding=True)))
        )
        rows = self._read(lambda session: list(session.execute(query, {"ids": list(ids)})))
        return {
            row.id: (Passage(source=row.name, heading=row.heading, text=row.text, hash=row.hash), row.line)
            for row in rows
        }

    def scope_of(self, prefixes: Sequence[str]) -> tuple[int, ...]:
        """Ids of the indexed documents under `prefixes` (what `sync` returned for them last)."""
        d = KnowledgeDocument

        def read(session: Session) -> tuple[int, ...]:
            found: list[int] = []
            for prefix in prefixes:
                found += session.scalars(select(d.id).where(d.uri.startswith(prefix, autoescape=True)))
            return tuple(sorted(set(found)))

        return self._read(read)

    # -- embeddings --------------------------------------------------------------------------

    def missing_embeddings(self, scope: Sequence[int], model: str) -> list[tuple[str, str]]:
        """(hash, heading and text) of the passages of `scope` that have no vector under `model` yet."""
        p, e = KnowledgePassage, KnowledgeEmbedding
        query = (
            select(p.hash, p.heading, p.text)
            .outerjoin(e, (e.passage_hash == p.hash) & (e.model == model))
            .where(e.passage_hash.is_(None), p.document_id.in_(bindparam("scope", expanding=True)))
        )
        rows = self._read(lambda session: list(session.execute(query, {"scope": list(scope)})))
        unique = {row.hash: f"{row.heading}\n\n{row.text}".strip() for row in rows}
        return list(unique.items())

    def store_embeddings(self, model: str, vectors: dict[str, bytes], dimensions: int) -> None:
        """Keep `vectors` (float32 bytes by passage hash) under `model`; vectors kept already stay."""
        if not vectors:
            return
        rows = [{"passage_hash": h, "model": model, "dimensions": dimensions, "vector": v} for h, v in vectors.items()]

        def write(session: Session) -> None:
            existing = set(
                session.scalars(
                    select(KnowledgeEmbedding.passage_hash).where(
                        KnowledgeEmbedding.model == model,
                        KnowledgeEmbedding.passage_hash.in_(bindparam("hashes", expanding=True)),
                    ),
                    {"hashes": list(vectors)},
                )
            )
            fresh = [row for row in rows if row["passage_hash"] not in existing]
            if fresh:
                session.execute(insert(KnowledgeEmbedding), fresh)

        self._retrying(write)

    def vectors(self, scope: Sequence[int], model: str) -> list[tuple[int, bytes]]:
        """(passage id, float32 bytes) of every passage of `scope` that has a vector under `model`."""
        p, e = KnowledgePassage, KnowledgeEmbedding
        query = (
            select(p.id, e.vector)
            .join(e, (e.passage_hash == p.hash) & (e.model == model))
            .where(p.document_id.in_(bindparam("scope", expanding=True)))
            .order_by(p.id)
        )
        return self._read(
            lambda session: [(row.id, row.vector) for row in session.execute(query, {"scope": list(scope)})]
        )

    # -- sessions ----------------------------------------------------------------------------

    @contextmanager
    def _session(self) -> Iterator[Session]:
        try:
            with Session(self.engine) as session, session.begin():
                yield session
        except SQLAlchemyError as exc:
            raise StorageError(
                f"knowledge index in database {self.name} failed: {one_line(getattr(exc, 'orig', None) or exc)}"
            ) from exc

    def _read(self, work: Callable[[Session], T]) -> T:
        with self._session() as session:
            return work(session)

    def _retrying(self, work: Callable[[Session], T]) -> T:
        """Run `work` in one transaction, again when it collided with a concurrent writer."""
        for attempt in range(SYNC_ATTEMPTS):
            try:
                with self._session() as session:
                    return work(session)
            except StorageError as exc:
                if attempt + 1 == SYNC_ATTEMPTS or not isinstance(exc.__cause__, IntegrityError | OperationalError):
                    raise
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")


class SqliteIndex(KnowledgeIndex):
    """SQLite: FTS5 with the porter tokenizer, ranked by BM25 (heading weighs twice the text)."""

    def keyword(self, terms: Sequence[str], scope: Sequence[int], limit: int) -> list[tuple[int, float]]:
        if not terms or not scope:
            return []
        query = text(
            f"SELECT p.id AS id, bm25({FTS_TABLE}, 2.0, 1.0) AS rank FROM {FTS_TABLE} "
            f"JOIN knowledge_passages p ON p.id = {FTS_TABLE}.rowid "
            f"WHERE {FTS_TABLE} MATCH :match AND p.document_id IN :scope ORDER BY rank, p.id LIMIT :limit"
        ).bindparams(bindparam("scope", expanding=True))
        values: dict[str, Any] = {"match": fts5_query(terms), "scope": list(scope), "limit": limit}
        return self._read(lambda session: [(row.id, -float(row.rank)) for row in session.execute(query, values)])


class PostgresIndex(KnowledgeIndex):
    """PostgreSQL: the generated tsvector column (heading weight A, text B), ranked by `ts_rank_cd`."""

    def keyword(self, terms: Sequence[str], scope: Sequence[int], limit: int) -> list[tuple[int, float]]:
        if not terms or not scope:
            return []
        query = text(
            "SELECT p.id AS id, ts_rank_cd(p.search, q, 1) AS rank "
            f"FROM knowledge_passages p, to_tsquery('{TEXT_SEARCH_CONFIG}', :match) q "
            "WHERE p.search @@ q AND p.document_id IN :scope ORDER BY rank DESC, p.id LIMIT :limit"
        ).bindparams(bindparam("scope", expanding=True))
        values: dict[str, Any] = {"match": tsquery(terms), "scope": list(scope), "limit": limit}
        return self._read(lambda session: [(row.id, float(row.rank)) for row in session.execute(query, values)])


def _now() -> datetime:
    return datetime.now(UTC)
