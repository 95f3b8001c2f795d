"""Create kernels_kernels."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "k0001"
down_revision = None


def upgrade() -> None:
    """Create kernels_kernels."""
    op.create_table(
        "kernels_kernels",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("owner", sa.Text, nullable=True),
        sa.Column("cwd", sa.Text, nullable=False),
        sa.Column("connection", sa.Text, nullable=False),
        sa.Column("sealed_key", sa.Text, nullable=False),
        sa.Column("provisioner", sa.Text, nullable=False),
        sa.Column("server", sa.Text, nullable=False),
        sa.Column("heartbeat", sa.Float, nullable=False),
        sa.Column("last_activity", sa.Float, nullable=False),
        sa.Column("execution_state", sa.String(16), nullable=False),
        sa.Column("stop", sa.Boolean, nullable=False),
    )
    op.create_index("ix_kernels_kernels_seq", "kernels_kernels", ["seq"])
    op.create_index("ix_kernels_kernels_server", "kernels_kernels", ["server"])


def downgrade() -> None:
    """Drop kernels_kernels."""
    op.drop_table("kernels_kernels")
