"""The database schema (SQLAlchemy 2), the same on PostgreSQL and SQLite.

    generations          one per agent run that saved content: agent, version, parameters,
                         flow run, status, timings, the content it saved, and what it
                         really spent: model calls, tokens, cost (steps served from the
                         cache count 0; `cached_steps` says how many there were)
    generated_contents   one per distinct content (unique content hash): type, format, title,
                         metadata (JSONB on PostgreSQL), content reference URI, files, size
    artifact_versions    the lineage: every step artifact of a generation (step, checksum,
                         parent checksum, template hashes, knowledge passages, provider, model,
                         tokens, attempts; the plan and drafts themselves; an editor's decisions)

The knowledge index's tables are in `agentflows.tasks.knowledge.tables`; the eval results
(`eval_results`, one row per case of every eval) in `agentflows.tasks.storage.eval_results`.

A content links to the generation that first made it; that generation's
artifact versions trace it back to the prompts and the model. Migrations live in
`tasks/storage/migrations` (Alembic); keep them in step with this module.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from agentflows.tasks.artifacts import ContentType

JsonColumn = JSON().with_variant(postgresql.JSONB(), "postgresql")
ContentTypeColumn = Enum(*(t.value for t in ContentType), name="content_type", native_enum=True, create_constraint=True)


class Base(DeclarativeBase):
    """Declarative base of agentflows' tables."""


class Generation(Base):
    """One agent run that saved content."""

    __tablename__ = "generations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """The flow run id when there is one, so a retried save adds no second generation."""
    agent: Mapped[str] = mapped_column(String(64), index=True)
    agent_version: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    flow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    model_calls: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    latency_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    """Time spent waiting for the model, summed over the calls."""
    reworked_from: Mapped[str | None] = mapped_column(String(32), nullable=True)
    """The content a rework started from (`agentflows rerun`); None for a run from the request."""
    cached_steps: Mapped[int] = mapped_column(Integer, default=0)
    """Steps of the run served from the cache: they cost it nothing, so the usage columns leave them out."""
    content_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    """The content the run saved, made by it or by an earlier run (no foreign key: each table names the other)."""


class GeneratedContent(Base):
    """One distinct piece of content."""

    __tablename__ = "generated_contents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    generation_id: Mapped[str] = mapped_column(ForeignKey("generations.id"), index=True)
    content_type: Mapped[str] = mapped_column(ContentTypeColumn, index=True)
    format: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(500))
    agent: Mapped[str] = mapped_column(String(64), index=True)
    agent_version: Mapped[str] = mapped_column(String(64))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JsonColumn)
    render: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    content_ref: Mapped[str] = mapped_column(Text)
    """URI of the primary file."""
    files: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    """Object key of every file, by its path inside the content."""
    size: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ArtifactVersion(Base):
    """One step artifact of a generation: the lineage of what it saved."""

    __tablename__ = "artifact_versions"
    __table_args__ = (UniqueConstraint("generation_id", "checksum", name="uq_artifact_versions_generation_checksum"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    generation_id: Mapped[str] = mapped_column(ForeignKey("generations.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(200))
    """The step and its item, e.g. `generate 02-how-it-works`."""
    checksum: Mapped[str] = mapped_column(String(64), index=True)
    parent_checksum: Mapped[str | None] = mapped_column(String(64), nullable=True)
    template_hashes: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    provider: Mapped[str | None] = mapped_column(String(128), nullable=True)
    model: Mapped[str | None] = mapped_column(String(256), nullable=True)
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    """Whether the generation took this artifact from the cache; its calls, tokens and cost are then 0."""
    calls: Mapped[int] = mapped_column(Integer, default=0)
    """Model calls the generation made for this artifact (re-asks included)."""
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[list[Any]] = mapped_column(JsonColumn)
    """Every answer the model gave for this artifact and how it was read."""
    warnings: Mapped[list[Any]] = mapped_column(JsonColumn)
    knowledge: Mapped[list[Any]] = mapped_column(JsonColumn, default=list)
    """The knowledge passages (source, heading, hash) the step's prompt was given."""
    artifact: Mapped[dict[str, Any] | None] = mapped_column(JsonColumn, nullable=True)
    """The plan or draft itself (what a rework starts from); None for other steps."""
    review: Mapped[dict[str, Any] | None] = mapped_column(JsonColumn, nullable=True)
    """A person's decision at this point: an editor's review of the plan, or a rework's request."""
