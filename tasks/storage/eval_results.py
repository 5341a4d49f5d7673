"""Eval results in the content database: one row per case of every `agentflows eval`.

    eval_results   eval id, flow run, agent, version, case, mode, runs, passed runs, pass rate,
                   baseline pass rate, regression, model calls, what failed (JSON), when

A team sees how a prompt edit moved each case over time by reading this table
(`EvalResultStore.history`); the rows of one eval share its id. The table is
created by migration 0004 (`tasks/storage/migrations/versions/0004_eval_results.py`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, String, insert, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column

from agentflows.tasks.storage.records import ContentRepository, now
from agentflows.tasks.storage.schema import Base

JsonColumn = JSON().with_variant(postgresql.JSONB(), "postgresql")
COLUMNS = (
    "eval_id",
    "flow_run_id",
    "agent",
    "agent_version",
    "case",
    "mode",
    "runs",
    "passed_runs",
    "pass_rate",
    "baseline",
    "regression",
    "model_calls",
    "failures",
)
"""What a caller gives for each row (`created_at` is added)."""


class EvalResult(Base):
    """How one case fared in one eval."""

    __tablename__ = "eval_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    eval_id: Mapped[str] = mapped_column(String(32), index=True)
    """Shared by the rows of one eval."""
    flow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The eval's flow run, when it ran as a flow."""
    agent: Mapped[str] = mapped_column(String(64), index=True)
    agent_version: Mapped[str] = mapped_column(String(64))
    case: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(16))
    """`live`, `offline`, `record` or `replay`."""
    runs: Mapped[int] = mapped_column(Integer)
    passed_runs: Mapped[int] = mapped_column(Integer)
    pass_rate: Mapped[float] = mapped_column(Float)
    baseline: Mapped[float | None] = mapped_column(Float, nullable=True)
    """The baseline's pass rate of the case, when one was compared with."""
    regression: Mapped[bool] = mapped_column(Boolean, default=False)
    model_calls: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[list[Any]] = mapped_column(JsonColumn)
    """What failed: per assertion its name and distinct failures, and why runs made no content."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class EvalResultStore:
    """Writes and reads eval results in the content database of `records` (SQL errors: `StorageError`)."""

    def __init__(self, records: ContentRepository) -> None:
        self.records = records

    def record(self, rows: list[dict[str, Any]]) -> None:
        """Write one eval's rows (keys: `COLUMNS`) in one transaction."""
        if not rows:
            return
        stamped = [{**{key: row[key] for key in COLUMNS}, "created_at": now()} for row in rows]
        with self.records.session() as session:
            session.execute(insert(EvalResult), stamped)

    def history(self, agent: str, case: str | None = None, limit: int = 20) -> list[EvalResult]:
        """The newest results of `agent` (of one `case`), newest first."""
        query = select(EvalResult).where(EvalResult.agent == agent)
        if case is not None:
            query = query.where(EvalResult.case == case)
        query = query.order_by(EvalResult.created_at.desc(), EvalResult.id.desc()).limit(limit)
        with self.records.session() as session:
            return list(session.scalars(query))

    def of_eval(self, eval_id: str) -> list[EvalResult]:
        """The rows of one eval, in the order they were written."""
        with self.records.session() as session:
            return list(
                session.scalars(select(EvalResult).where(EvalResult.eval_id == eval_id).order_by(EvalResult.id))
            )
