"""Another test plugin's table."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "o0001"
down_revision = None


def upgrade() -> None:
    """Create other_things."""
    op.create_table("other_things", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    """Drop other_things."""
    op.drop_table("other_things")
