"""A test plugin's first table; waits at a gate file when JUNCTION_TEST_MIGRATION_GATE is set."""

from __future__ import annotations

import os
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "t0001"
down_revision = None


def _wait_at_gate() -> None:
    gate = os.environ.get("JUNCTION_TEST_MIGRATION_GATE")
    if not gate:
        return
    Path(gate + ".entered").write_text(str(os.getpid()))
    deadline = time.monotonic() + 60
    while not Path(gate + ".release").exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the test never opened the migration gate")
        time.sleep(0.01)


def upgrade() -> None:
    """Create sample_notes."""
    _wait_at_gate()
    op.create_table(
        "sample_notes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("text", sa.Text, nullable=False),
    )


def downgrade() -> None:
    """Drop sample_notes."""
    op.drop_table("sample_notes")
