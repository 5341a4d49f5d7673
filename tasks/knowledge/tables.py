"""The knowledge index's tables, in the content database beside the content tables.

    knowledge_documents    one per indexed file: its URI (identity), display name, content hash
    knowledge_passages     its passages: heading, text, first line, hash; searched by
                           - SQLite: the FTS5 table `knowledge_fts` (BM25), kept in step by triggers
                           - PostgreSQL: the generated tsvector column `search` and its GIN index
    knowledge_embeddings   one vector per passage hash and embeddings model (float32 bytes)

The full-text parts differ per database and are created by migration 0002
(`tasks/storage/migrations/versions/0002_knowledge.py`), not by these classes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from agentflows.tasks.storage.schema import Base

FTS_TABLE = "knowledge_fts"
"""SQLite's FTS5 table over `knowledge_passages` (heading, text)."""
TEXT_SEARCH_CONFIG = "english"
"""PostgreSQL's text search configuration (English stemming, as SQLite's porter tokenizer)."""


class KnowledgeDocument(Base):
    """One indexed knowledge file."""

    __tablename__ = "knowledge_documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uri: Mapped[str] = mapped_column(String(1000), unique=True)
    """Where the file is: `file:///…/knowledge/style.md` or `s3://bucket/prefix/style.md`."""
    name: Mapped[str] = mapped_column(String(1000))
    """What provenance calls it: its path in the definitions folder, or its URI."""
    content_hash: Mapped[str] = mapped_column(String(64))
    passages: Mapped[int] = mapped_column(Integer)
    indexed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class KnowledgePassage(Base):
    """One passage of an indexed file."""

    __tablename__ = "knowledge_passages"
    __table_args__ = (UniqueConstraint("document_id", "position", name="uq_knowledge_passages_document_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("knowledge_documents.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    heading: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    line: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64), index=True)


class KnowledgeEmbedding(Base):
    """The vector of one passage text under one embeddings model."""

    __tablename__ = "knowledge_embeddings"

    passage_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    dimensions: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
