"""OpenID sessions keep the refresh token, to renew an expired access token at a re-check.

Revision ID: users_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "users_0002"
down_revision = "users_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``users_sessions.refresh_token``."""
    op.add_column("users_sessions", sa.Column("refresh_token", sa.Text))


def downgrade() -> None:
    """Drop ``users_sessions.refresh_token``."""
    with op.batch_alter_table("users_sessions") as batch:
        batch.drop_column("refresh_token")
