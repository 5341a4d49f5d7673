"""Usage as really spent: how many steps of a run came from the cache, and which content it saved.

Revision ID: 0003
Revises: 0002

`generations.cached_steps` counts the steps a run took from the cache (they cost it
nothing); `generations.content_id` names the content a run saved, also when an earlier
run made it first, so usage can be summed per run; `artifact_versions.cached` marks
the artifacts a run took from the cache. Existing generations get the content that
links to them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("generations") as table:
        table.add_column(sa.Column("cached_steps", sa.Integer(), nullable=False, server_default="0"))
        table.add_column(sa.Column("content_id", sa.String(32), nullable=True))
        table.create_index("ix_generations_content_id", ["content_id"])
    with op.batch_alter_table("artifact_versions") as table:
        table.add_column(sa.Column("cached", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute(
        "UPDATE generations SET content_id = "
        "(SELECT MIN(c.id) FROM generated_contents c WHERE c.generation_id = generations.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("artifact_versions") as table:
        table.drop_column("cached")
    with op.batch_alter_table("generations") as table:
        table.drop_index("ix_generations_content_id")
        table.drop_column("content_id")
        table.drop_column("cached_steps")
