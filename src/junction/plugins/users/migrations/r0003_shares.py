"""Folders shared with users or groups.

Revision ID: users_0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "users_0003"
down_revision = "users_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``users_shares``."""
    op.create_table(
        "users_shares",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("access", sa.String(8), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("path", "kind", "target", name="uq_users_shares_target"),
    )


def downgrade() -> None:
    """Drop ``users_shares``."""
    op.drop_table("users_shares")
