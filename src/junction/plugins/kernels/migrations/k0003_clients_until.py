"""Add clients_until to kernels_kernels."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "k0003"
down_revision = "k0002"


def upgrade() -> None:
    """Add ``clients_until`` (0 for existing rows)."""
    op.add_column(
        "kernels_kernels", sa.Column("clients_until", sa.Float, nullable=False, server_default="0")
    )


def downgrade() -> None:
    """Drop ``clients_until``."""
    with op.batch_alter_table("kernels_kernels") as batch:
        batch.drop_column("clients_until")
