"""Reading and writing the content database (SQLAlchemy 2 on PostgreSQL or SQLite).

`ContentRepository.record` writes one generation, its content and its lineage
in a single transaction (`record_many` a whole batch of them, a statement per
table): the generation and the lineage upsert on their keys, the content
upserts on its content hash, so repeating a save adds nothing.
Database outages are retried with backoff (`retries.retrying`); the final error names the database
with its password masked.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, func, make_url, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from agentflows.tasks.errors import StorageError, one_line
from agentflows.tasks.storage.migrate import revision_of
from agentflows.tasks.storage.retries import retrying
from agentflows.tasks.storage.schema import ArtifactVersion, GeneratedContent, Generation

MIN_PREFIX = 6
"""Fewest characters of an id that `get` accepts as a prefix."""
T = TypeVar("T")


def open_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL mode and a busy timeout for concurrent runs."""
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=15)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        # WAL is a property of the file: when another connection holds the lock while
        # switching it, this one works in WAL mode too once that is done.
        with suppress(sqlite3.OperationalError):
            cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


class ContentRepository:
    """Reads and writes generations, contents and their lineage."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.name = engine.url.render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction; SQL errors become `StorageError` naming the database."""
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                yield session
        except SQLAlchemyError as exc:
            raise StorageError(f"database {self.name} failed: {error_reason(exc)}") from None

    def record(self, generation: dict[str, Any], content: dict[str, Any], lineage: list[dict[str, Any]]) -> None:
        """Write the generation, the content and the lineage in one transaction (each only once)."""
        self.record_many([generation], [content], lineage)

    def record_many(
        self, generations: list[dict[str, Any]], contents: list[dict[str, Any]], lineage: list[dict[str, Any]]
    ) -> None:
        """Write many generations, contents and lineage rows in one transaction, a statement per table.

        Rows that exist already (same generation id, content hash, or generation and
        checksum) are left as they are, so repeating a batch adds nothing.
        """

        def write(session: Session) -> None:
            for table, rows, keys in (
                (Generation, _unique(generations, ("id",)), ["id"]),
                (GeneratedContent, _unique(contents, ("content_hash",)), ["content_hash"]),
                (ArtifactVersion, _unique(lineage, ("generation_id", "checksum")), ["generation_id", "checksum"]),
            ):
                if rows:
                    session.execute(self._insert(table, keys), rows)

        self._in_session(write)

    def _insert(self, table: Any, keys: list[str]) -> Any:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table).on_conflict_do_nothing(index_elements=keys)

    def _in_session(self, work: Callable[[Session], T]) -> T:
        """Run `work` in one transaction, again after a pause when the database could not be reached."""

        def attempt() -> T:
            with self.session() as session:
                return work(session)

        return retrying(attempt, lambda exc: isinstance(exc, StorageError) and _transient(exc.__context__))

    def schema_revision(self) -> str | None:
        """The schema revision the database is at (None before the first migration)."""
        return self._in_session(lambda session: revision_of(session.connection()))

    def get(self, content_id: str) -> GeneratedContent | None:
        """The content with `content_id`, or with that unique id prefix."""

        def find(session: Session) -> GeneratedContent | None:
            record = session.get(GeneratedContent, content_id)
            if record is None and len(content_id) >= MIN_PREFIX:
                matches = self._starting(session, content_id, 2)
                record = matches[0] if len(matches) == 1 else None
            return record

        return self._in_session(find)

    def ids_starting(self, prefix: str, limit: int) -> list[str]:
        """Up to `limit` content ids that start with `prefix`."""
        return self._in_session(lambda session: [r.id for r in self._starting(session, prefix, limit)])

    def _starting(self, session: Session, prefix: str, limit: int) -> list[GeneratedContent]:
        query = select(GeneratedContent).where(GeneratedContent.id.startswith(prefix, autoescape=True))
        return list(session.scalars(query.order_by(GeneratedContent.id).limit(limit)).all())

    def generation(self, generation_id: str) -> Generation | None:
        return self._in_session(lambda session: session.get(Generation, generation_id))

    def lineage(self, generation_id: str) -> list[ArtifactVersion]:
        """The step artifacts of a generation, in pipeline order."""
        query = select(ArtifactVersion).where(ArtifactVersion.generation_id == generation_id)
        return self._in_session(lambda session: list(session.scalars(query.order_by(ArtifactVersion.position))))

    def reviews(self, content_id: str, generation_id: str) -> list[ArtifactVersion]:
        """The lineage rows with a person's decision, of every generation that saved content `content_id`
        (`generation_id`, the one its row names, included), oldest first."""
        made = select(Generation.id).where(Generation.content_id == content_id)
        query = (
            select(ArtifactVersion)
            .join(Generation, ArtifactVersion.generation_id == Generation.id)
            .where(ArtifactVersion.review.is_not(None))
            .where(ArtifactVersion.generation_id.in_(made) | (ArtifactVersion.generation_id == generation_id))
            .order_by(Generation.finished_at, ArtifactVersion.position)
        )
        return self._in_session(lambda session: list(session.scalars(query)))

    def newest(self, content_type: str | None = None, limit: int | None = 50) -> list[GeneratedContent]:
        """The newest contents, optionally of one type."""
        query = select(GeneratedContent).order_by(GeneratedContent.created_at.desc(), GeneratedContent.id)
        if content_type:
            query = query.where(GeneratedContent.content_type == content_type)
        if limit is not None:
            query = query.limit(limit)
        return self._in_session(lambda session: list(session.scalars(query)))

    def search(
        self, content_type: str | None, agent: str | None, text: str | None, limit: int, offset: int
    ) -> tuple[list[tuple[GeneratedContent, Generation]], int]:
        """One page of the newest contents that match every filter given (each with the generation
        that made it), and how many match in all."""
        query = select(GeneratedContent)
        if content_type:
            query = query.where(GeneratedContent.content_type == content_type)
        if agent:
            query = query.where(GeneratedContent.agent == agent)
        if text:
            query = query.where(GeneratedContent.title.icontains(text, autoescape=True))
        counted = select(func.count()).select_from(query.subquery())
        joined = query.add_columns(Generation).join(Generation, GeneratedContent.generation_id == Generation.id)
        ordered = joined.order_by(GeneratedContent.created_at.desc(), GeneratedContent.id).limit(limit).offset(offset)

        def page(session: Session) -> tuple[list[tuple[GeneratedContent, Generation]], int]:
            return [(c, g) for c, g in session.execute(ordered).all()], int(session.scalar(counted) or 0)

        return self._in_session(page)

    def agents(self) -> list[str]:
        """The agents that made stored contents, by name."""
        query = select(GeneratedContent.agent).distinct().order_by(GeneratedContent.agent)
        return self._in_session(lambda session: list(session.scalars(query)))

    def made_by(self, agent: str, limit: int) -> list[tuple[GeneratedContent, Generation]]:
        """The newest contents of `agent`, each with the generation that made it."""
        query = select(GeneratedContent, Generation).join(Generation, GeneratedContent.generation_id == Generation.id)
        query = query.where(GeneratedContent.agent == agent)
        query = query.order_by(GeneratedContent.created_at.desc(), GeneratedContent.id).limit(limit)
        return self._in_session(lambda session: [(c, g) for c, g in session.execute(query).all()])

    def generations_with_contents(self) -> list[tuple[GeneratedContent, Generation]]:
        """Every generation with the content it saved, oldest first."""
        query = select(GeneratedContent, Generation).join(Generation, GeneratedContent.id == Generation.content_id)
        query = query.order_by(Generation.finished_at, Generation.id)
        return self._in_session(lambda session: [(c, g) for c, g in session.execute(query).all()])

    def content_ids(self, among: Iterable[str] | None = None) -> set[str]:
        """The id of every stored content (what the storage sweep keeps), or of those `among` these ids."""
        query = select(GeneratedContent.id)
        if among is not None:
            query = query.where(GeneratedContent.id.in_(list(among)))
        return self._in_session(lambda session: set(session.scalars(query)))


def _unique(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """`rows` without later repeats of the same key (one statement may not insert a row twice)."""
    seen: set[tuple[Any, ...]] = set()
    kept = []
    for row in rows:
        key = tuple(row[k] for k in keys)
        if key not in seen:
            seen.add(key)
            kept.append(row)
    return kept


def _transient(error: BaseException | None) -> bool:
    """Whether a database error may pass on another attempt: the server or the connection, not the SQL."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, OperationalError | InterfaceError)


def now() -> datetime:
    return datetime.now(UTC)


def error_reason(exc: BaseException) -> str:
    """The first line of what the database driver said, with its type (no SQL, no parameters)."""
    return one_line(getattr(exc, "orig", None) or exc)
