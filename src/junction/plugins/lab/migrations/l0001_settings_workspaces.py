"""The lab's first tables: user settings, workspaces, one-time imports."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "l0001"
down_revision = None


def upgrade() -> None:
    """Create lab_settings, lab_workspaces and lab_imports."""
    op.create_table(
        "lab_settings",
        sa.Column("plugin_id", sa.String(255), primary_key=True),
        sa.Column("raw", sa.Text, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "lab_workspaces",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("workspace", sa.Text, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "lab_imports",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("done", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Drop the lab's tables."""
    op.drop_table("lab_imports")
    op.drop_table("lab_workspaces")
    op.drop_table("lab_settings")
