"""The apps table."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a0001"
down_revision = None


def upgrade() -> None:
    """Create apps_apps."""
    op.create_table(
        "apps_apps",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("created", sa.String(40), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("sharing", sa.JSON, nullable=False),
    )
    op.create_index("ix_apps_apps_owner", "apps_apps", ["owner"])


def downgrade() -> None:
    """Drop apps_apps."""
    op.drop_table("apps_apps")
