"""Content records in a SQL database, through SQLAlchemy 2.

One row per distinct piece of content, keyed by its content hash: saving the
same content again inserts nothing. The JSON metadata column is JSONB on
PostgreSQL and JSON text on SQLite, from the same model.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, Integer, String, create_engine, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from tasks.errors import StorageError

JsonColumn = JSON().with_variant(postgresql.JSONB(), "postgresql")
MIN_PREFIX = 6
"""Fewest characters of an id that look it up by prefix."""


class Base(DeclarativeBase):
    """Declarative base of agentflows' tables."""


class ContentRecord(Base):
    """A stored piece of content."""

    __tablename__ = "generated_contents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    content_type: Mapped[str] = mapped_column(String(16), index=True)
    title: Mapped[str] = mapped_column(String(500))
    agent: Mapped[str] = mapped_column(String(64), index=True)
    agent_version: Mapped[str] = mapped_column(String(64))
    content_ref: Mapped[str] = mapped_column(String(2000))
    """URI of the primary file."""
    files: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    """URI of every file, by its path inside the content."""
    size: Mapped[int] = mapped_column(Integer)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JsonColumn)
    flow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def open_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL mode and a busy timeout for concurrent runs."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    Base.metadata.create_all(engine)
    return engine


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class ContentRepository:
    """Reads and writes content records."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        try:
            with Session(self.engine) as session, session.begin():
                yield session
        except SQLAlchemyError as exc:
            target = self.engine.url.render_as_string(hide_password=True)
            raise StorageError(
                f"database {target} failed: {type(exc).__name__}: {exc.args[0] if exc.args else exc}"
            ) from None

    def add(self, values: dict[str, Any]) -> None:
        """Insert one record unless its content hash is already stored."""
        dialect = self.engine.dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(ContentRecord).values(**values).on_conflict_do_nothing(index_elements=["content_hash"])
        with self.session() as session:
            session.execute(statement)

    def get(self, content_id: str) -> ContentRecord | None:
        """The record with `content_id`, or with that unique id prefix."""
        with self.session() as session:
            record = session.get(ContentRecord, content_id)
            if record is None and len(content_id) >= MIN_PREFIX:
                matches = session.scalars(select(ContentRecord).where(_starts_with(content_id)).limit(2)).all()
                record = matches[0] if len(matches) == 1 else None
            if record is not None:
                session.expunge(record)
            return record

    def ids_starting(self, prefix: str, limit: int = 5) -> list[str]:
        """Ids that start with `prefix` (at most `limit`, in id order)."""
        with self.session() as session:
            query = select(ContentRecord.id).where(_starts_with(prefix)).order_by(ContentRecord.id).limit(limit)
            return list(session.scalars(query).all())

    def list(self, content_type: str | None = None, limit: int = 50) -> list[ContentRecord]:
        """The newest records, optionally of one type."""
        query = select(ContentRecord).order_by(ContentRecord.created_at.desc()).limit(limit)
        if content_type:
            query = query.where(ContentRecord.content_type == content_type)
        with self.session() as session:
            records = list(session.scalars(query).all())
            session.expunge_all()
            return records


def _starts_with(prefix: str) -> ColumnElement[bool]:
    """Ids that start with `prefix`, taken literally (`%` and `_` are not wildcards)."""
    return ContentRecord.id.startswith(prefix, autoescape=True)


def now() -> datetime:
    return datetime.now(UTC)
