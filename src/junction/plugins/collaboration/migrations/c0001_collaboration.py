"""The collaboration tables: file ids and room updates."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0001"
down_revision = None


def upgrade() -> None:
    """Create collaboration_files and collaboration_updates."""
    op.create_table(
        "collaboration_files",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("path", sa.Text, nullable=False, unique=True),
        sa.Column("synced_hash", sa.String(128), nullable=True),
        sa.Column("dirty", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "collaboration_updates",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("room", sa.String(255), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
    )
    op.create_index("ix_collaboration_updates_room", "collaboration_updates", ["room"])


def downgrade() -> None:
    """Drop the collaboration tables."""
    op.drop_table("collaboration_updates")
    op.drop_table("collaboration_files")
