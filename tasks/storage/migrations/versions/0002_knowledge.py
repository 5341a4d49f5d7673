"""Knowledge index: documents, passages (full-text searchable), embeddings; the passages each step used.

SQLite gets an FTS5 table over the passages, kept in step by triggers; PostgreSQL
a generated tsvector column with a GIN index. `artifact_versions.knowledge` lists
the passages (file, heading, hash) each step artifact's prompt was given.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE knowledge_fts USING fts5(heading, text, content='knowledge_passages', "
    "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER knowledge_passages_ai AFTER INSERT ON knowledge_passages BEGIN "
    "INSERT INTO knowledge_fts(rowid, heading, text) VALUES (new.id, new.heading, new.text); END",
    "CREATE TRIGGER knowledge_passages_ad AFTER DELETE ON knowledge_passages BEGIN "
    "INSERT INTO knowledge_fts(knowledge_fts, rowid, heading, text) VALUES ('delete', old.id, old.heading, old.text); "
    "END",
    "CREATE TRIGGER knowledge_passages_au AFTER UPDATE ON knowledge_passages BEGIN "
    "INSERT INTO knowledge_fts(knowledge_fts, rowid, heading, text) VALUES ('delete', old.id, old.heading, old.text); "
    "INSERT INTO knowledge_fts(rowid, heading, text) VALUES (new.id, new.heading, new.text); END",
]
POSTGRES_FTS = [
    "ALTER TABLE knowledge_passages ADD COLUMN search tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('english', heading), 'A') || setweight(to_tsvector('english', text), 'B')) STORED",
    "CREATE INDEX ix_knowledge_passages_search ON knowledge_passages USING gin (search)",
]


def upgrade() -> None:
    op.create_table(
        "knowledge_documents",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("uri", sa.String(1000), nullable=False, unique=True),
        sa.Column("name", sa.String(1000), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("passages", sa.Integer(), nullable=False),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "knowledge_passages",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("document_id", sa.Integer(), sa.ForeignKey("knowledge_documents.id"), nullable=False, index=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("heading", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, index=True),
        sa.UniqueConstraint("document_id", "position", name="uq_knowledge_passages_document_position"),
    )
    op.create_table(
        "knowledge_embeddings",
        sa.Column("passage_hash", sa.String(64), primary_key=True),
        sa.Column("model", sa.String(200), primary_key=True),
        sa.Column("dimensions", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
    )
    for statement in SQLITE_FTS if _dialect() == "sqlite" else POSTGRES_FTS:
        op.execute(statement)
    op.add_column("artifact_versions", sa.Column("knowledge", JSON, nullable=False, server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table("artifact_versions") as batch:
        batch.drop_column("knowledge")
    if _dialect() == "sqlite":
        op.execute("DROP TABLE knowledge_fts")
    op.drop_table("knowledge_embeddings")
    op.drop_table("knowledge_passages")
    op.drop_table("knowledge_documents")


def _dialect() -> str:
    return str(op.get_bind().dialect.name)
