"""Create jobs_jobs."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "j0001"
down_revision = None


def upgrade() -> None:
    """Create jobs_jobs."""
    op.create_table(
        "jobs_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("destination", sa.Text, nullable=True),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
        sa.Column("done", sa.BigInteger, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("server", sa.Text, nullable=False),
        sa.Column("heartbeat", sa.Float, nullable=False),
        sa.Column("cancel", sa.Boolean, nullable=False),
    )
    op.create_index("ix_jobs_jobs_seq", "jobs_jobs", ["seq"])
    op.create_index("ix_jobs_jobs_owner", "jobs_jobs", ["owner"])
    op.create_index("ix_jobs_jobs_status", "jobs_jobs", ["status"])


def downgrade() -> None:
    """Drop jobs_jobs."""
    op.drop_table("jobs_jobs")
