"""Add restart_refused to kernels_kernels."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "k0004"
down_revision = "k0003"


def upgrade() -> None:
    """Add ``restart_refused`` (NULL for existing rows: no restart refused)."""
    op.add_column("kernels_kernels", sa.Column("restart_refused", sa.Text, nullable=True))


def downgrade() -> None:
    """Drop ``restart_refused``."""
    with op.batch_alter_table("kernels_kernels") as batch:
        batch.drop_column("restart_refused")
