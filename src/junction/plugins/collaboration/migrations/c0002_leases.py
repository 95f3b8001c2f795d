"""The room leases: which server process owns each open room."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0002"
down_revision = "c0001"


def upgrade() -> None:
    """Create collaboration_leases."""
    op.create_table(
        "collaboration_leases",
        sa.Column("room_id", sa.String(255), primary_key=True),
        sa.Column("owner", sa.String(36), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("host", sa.String(255), nullable=False, server_default=""),
        sa.Column("pid", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    """Drop collaboration_leases."""
    op.drop_table("collaboration_leases")
