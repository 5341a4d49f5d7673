"""Initial schema: generations, generated_contents, artifact_versions.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
CONTENT_TYPES = ("text", "code", "chart", "file", "interactive", "mixed")


def upgrade() -> None:
    op.create_table(
        "generations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("agent", sa.String(64), nullable=False, index=True),
        sa.Column("agent_version", sa.String(64), nullable=False),
        sa.Column("parameters", JSON, nullable=False),
        sa.Column("flow_run_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("model_calls", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("latency_seconds", sa.Float(), nullable=False),
    )
    op.create_table(
        "generated_contents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("generation_id", sa.String(64), sa.ForeignKey("generations.id"), nullable=False, index=True),
        sa.Column(
            "content_type",
            sa.Enum(*CONTENT_TYPES, name="content_type", native_enum=True, create_constraint=True),
            nullable=False,
            index=True,
        ),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False, index=True),
        sa.Column("agent_version", sa.String(64), nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("render", JSON, nullable=False),
        sa.Column("content_ref", sa.Text(), nullable=False),
        sa.Column("files", JSON, nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    op.create_table(
        "artifact_versions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("generation_id", sa.String(64), sa.ForeignKey("generations.id"), nullable=False, index=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(16), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False, index=True),
        sa.Column("parent_checksum", sa.String(64), nullable=True),
        sa.Column("template_hashes", JSON, nullable=False),
        sa.Column("provider", sa.String(128), nullable=True),
        sa.Column("model", sa.String(256), nullable=True),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("attempts", JSON, nullable=False),
        sa.Column("warnings", JSON, nullable=False),
        sa.UniqueConstraint("generation_id", "checksum", name="uq_artifact_versions_generation_checksum"),
    )


def downgrade() -> None:
    op.drop_table("artifact_versions")
    op.drop_table("generated_contents")
    op.drop_table("generations")
    sa.Enum(name="content_type").drop(op.get_bind(), checkfirst=True)
