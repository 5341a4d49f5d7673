"""Eval results: one row per case of every `agentflows eval` (`agentflows.tasks.storage.eval_results`).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "eval_results",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("eval_id", sa.String(32), nullable=False, index=True),
        sa.Column("flow_run_id", sa.String(64), nullable=True),
        sa.Column("agent", sa.String(64), nullable=False, index=True),
        sa.Column("agent_version", sa.String(64), nullable=False),
        sa.Column("case", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("passed_runs", sa.Integer(), nullable=False),
        sa.Column("pass_rate", sa.Float(), nullable=False),
        sa.Column("baseline", sa.Float(), nullable=True),
        sa.Column("regression", sa.Boolean(), nullable=False),
        sa.Column("model_calls", sa.Integer(), nullable=False),
        sa.Column("failures", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("eval_results")
