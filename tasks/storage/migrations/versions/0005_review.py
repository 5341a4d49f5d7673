"""Editors in the lineage: each artifact's own JSON, a person's decision beside it, and reworks.

`artifact_versions.artifact` keeps the plan and each draft a content was built
from (what `agentflows rerun` starts from); `artifact_versions.review` holds an
editor's decision (approve, revise, reject) or a rework's request on its lineage
row; `generations.reworked_from` names the content a rework started from.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("artifact_versions", sa.Column("artifact", JSON, nullable=True))
    op.add_column("artifact_versions", sa.Column("review", JSON, nullable=True))
    op.add_column("generations", sa.Column("reworked_from", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("generations") as batch:
        batch.drop_column("reworked_from")
    with op.batch_alter_table("artifact_versions") as batch:
        batch.drop_column("review")
        batch.drop_column("artifact")
