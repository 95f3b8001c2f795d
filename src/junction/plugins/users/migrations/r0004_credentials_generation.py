"""A counter bumped by every change that revokes a credential, so servers sharing the
database drop their caches of checked tokens and sessions when it moves.

Revision ID: users_0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "users_0004"
down_revision = "users_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``users_generation`` (its row is written by the first bump)."""
    op.create_table(
        "users_generation",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("generation", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    """Drop ``users_generation``."""
    op.drop_table("users_generation")
