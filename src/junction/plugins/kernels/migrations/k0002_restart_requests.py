"""Add the restart request counters to kernels_kernels."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "k0002"
down_revision = "k0001"


def upgrade() -> None:
    """Add ``restart_requested`` and ``restarted`` (0 for existing rows)."""
    for column in ("restart_requested", "restarted"):
        op.add_column(
            "kernels_kernels", sa.Column(column, sa.Integer, nullable=False, server_default="0")
        )


def downgrade() -> None:
    """Drop the restart request counters."""
    with op.batch_alter_table("kernels_kernels") as batch:
        batch.drop_column("restarted")
        batch.drop_column("restart_requested")
