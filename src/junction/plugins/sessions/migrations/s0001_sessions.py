"""The sessions table."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0001"
down_revision = None


def upgrade() -> None:
    """Create sessions_sessions."""
    op.create_table(
        "sessions_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("type", sa.String(255), nullable=False),
        sa.Column("kernel_id", sa.String(64), nullable=False),
    )
    op.create_index("ix_sessions_sessions_seq", "sessions_sessions", ["seq"])
    op.create_index("ix_sessions_sessions_path", "sessions_sessions", ["path"])
    op.create_index("ix_sessions_sessions_kernel_id", "sessions_sessions", ["kernel_id"])


def downgrade() -> None:
    """Drop sessions_sessions."""
    op.drop_table("sessions_sessions")
