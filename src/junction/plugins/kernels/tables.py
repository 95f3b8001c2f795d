"""The kernels plugin's table: one row per client kernel (``kernels_kernels``).

A row says how to reach a running kernel (its connection info, the key sealed; see
:mod:`~junction.plugins.kernels.records`), how its provisioner finds the process again
(``provisioner``: jupyter_client's ``get_provisioner_info`` without the connection info),
and which server process runs it: ``server`` is ``host:pid:nonce``, ``heartbeat`` when that
process last said so (the lease), ``stop`` asks it, from any other process, to shut the
kernel down; ``restart_requested`` counts the restarts other processes asked of it, and
``restarted`` is the count it has answered (a restart is pending while it is lower), and
``restart_refused`` why it refused the last of them (NULL when it restarted the kernel), and
``restart_refused_after`` the count answered before that refusal (the requests numbered above
it, up to ``restarted``, were refused);
``clients_until`` says, until when, that WebSocket clients are attached to the kernel
through other processes (renewed by those processes, for the running one's culler).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import BigInteger, Boolean, Column, Float, Integer, MetaData, String, Table, Text

from junction.database import PluginTables

__all__ = ["KERNELS_TABLE", "TABLES"]

metadata = MetaData()

KERNELS_TABLE = Table(
    "kernels_kernels",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("owner", Text, nullable=True),
    Column("cwd", Text, nullable=False),
    Column("connection", Text, nullable=False),
    Column("sealed_key", Text, nullable=False),
    Column("provisioner", Text, nullable=False),
    Column("server", Text, nullable=False, index=True),
    Column("heartbeat", Float, nullable=False),
    Column("last_activity", Float, nullable=False),
    Column("execution_state", String(16), nullable=False),
    Column("stop", Boolean, nullable=False),
    Column("restart_requested", Integer, nullable=False, server_default="0"),
    Column("restarted", Integer, nullable=False, server_default="0"),
    Column("clients_until", Float, nullable=False, server_default="0"),
    Column("restart_refused", Text, nullable=True),
    Column("restart_refused_after", Integer, nullable=True),
)

TABLES = PluginTables(metadata=metadata, migrations=Path(__file__).parent / "migrations")
"""The kernels table."""
