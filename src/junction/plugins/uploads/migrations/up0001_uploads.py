"""Create uploads_uploads."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "up0001"
down_revision = None


def upgrade() -> None:
    """Create uploads_uploads."""
    op.create_table(
        "uploads_uploads",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("destination", sa.Text, nullable=False),
        sa.Column("length", sa.BigInteger, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("overwrite", sa.Boolean, nullable=False),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("expires", sa.Float, nullable=False),
        sa.Column("completed", sa.Float, nullable=True),
    )
    op.create_index("ix_uploads_uploads_owner", "uploads_uploads", ["owner"])
    op.create_index("ix_uploads_uploads_expires", "uploads_uploads", ["expires"])


def downgrade() -> None:
    """Drop uploads_uploads."""
    op.drop_table("uploads_uploads")
