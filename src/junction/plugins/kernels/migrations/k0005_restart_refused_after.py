"""Add restart_refused_after to kernels_kernels."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "k0005"
down_revision = "k0004"


def upgrade() -> None:
    """Add ``restart_refused_after`` (NULL for existing rows: no restart refused)."""
    op.add_column("kernels_kernels", sa.Column("restart_refused_after", sa.Integer, nullable=True))


def downgrade() -> None:
    """Drop ``restart_refused_after``."""
    with op.batch_alter_table("kernels_kernels") as batch:
        batch.drop_column("restart_refused_after")
