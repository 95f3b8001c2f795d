"""Settings and workspaces per user: a ``user`` column ("" for the single user of
single-user mode, whose rows keep their keys).

Revision ID: l0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "l0002"
down_revision = "l0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``lab_settings.user`` and ``lab_workspaces.user``, indexed."""
    for table in ("lab_settings", "lab_workspaces"):
        op.add_column(table, sa.Column("user", sa.String(255), nullable=False, server_default=""))
        op.create_index(f"ix_{table}_user", table, ["user"])


def downgrade() -> None:
    """Drop the ``user`` columns (every user's rows but the single user's first)."""
    for table in ("lab_settings", "lab_workspaces"):
        rows = sa.table(table, sa.column("user"))
        op.execute(sa.delete(rows).where(rows.c.user != ""))
        op.drop_index(f"ix_{table}_user", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("user")
