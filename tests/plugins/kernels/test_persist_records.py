"""Kernel records: the table and its migration, sealing, claims; the reaper's orphan grace."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from tests.database.test_migrations import known_to_alembic, schema

from junction.database import Database, upgrade
from junction.plugins.kernels.records import (
    KernelRecord,
    KernelRecords,
    Sealer,
    pid_alive,
    server_gone,
)
from junction.plugins.kernels.tables import TABLES
from junction.reaper import Reaper

pytestmark = pytest.mark.anyio


async def test_a_new_database_gets_the_schema_the_revisions_make(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    if database_url.startswith("sqlite"):
        other_url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('other')}/other.db"
    else:
        cluster = request.getfixturevalue("postgres_cluster")
        other_url = cluster.url(cluster.create_database())
    await known_to_alembic(other_url, "kernels")
    shortcut, replayed = Database(database_url), Database(other_url)
    try:
        assert await upgrade(shortcut, [("kernels", TABLES)]) == ["kernels"]
        assert await upgrade(replayed, [("kernels", TABLES)]) == ["kernels"]
        async with shortcut.engine.connect() as conn:
            made = await conn.run_sync(schema)
        async with replayed.engine.connect() as conn:
            migrated = await conn.run_sync(schema)
    finally:
        await shortcut.close()
        await replayed.close()
    assert made == migrated
    assert made


def record(kernel_id: str, key: str) -> KernelRecord:
    """A record with a recognisable key."""
    return KernelRecord(
        id=kernel_id,
        name="python3",
        cwd="/srv",
        connection={"ip": "127.0.0.1", "shell_port": 5000, "key": key.encode()},
        provisioner={"kind": "local", "pid": 1234, "pgid": 1234},
    )


async def test_the_key_is_sealed_and_one_claim_wins(database_url: str) -> None:
    database = Database(database_url)
    key = "f0e1d2c3-secret-connection-key"
    try:
        await upgrade(database, [("kernels", TABLES)])
        records = KernelRecords(database, Sealer(b"cookie secret"))
        await records.save(record("k1", key))
        async with database.session() as session:
            row = (await session.execute(text("SELECT * FROM kernels_kernels"))).one()
        assert all(key not in str(value) for value in row)

        [found] = await records.all()
        assert found.connection["key"] == key
        assert found.server == records.server

        # Another cookie secret cannot read it, and says so rather than failing.
        assert await KernelRecords(database, Sealer(b"another secret")).all() == []

        # The record of a gone server: of two claims with what they read, one wins.
        gone = KernelRecords(database, Sealer(b"cookie secret"))
        gone.server = "elsewhere:1:x"
        await gone.save(record("k1", key))
        async with database.session() as session:
            await session.execute(text("UPDATE kernels_kernels SET heartbeat = 1.0"))
        [stale] = await records.all()
        assert server_gone(stale.server, stale.heartbeat, now=time.time(), stale=30)
        rival = KernelRecords(database, Sealer(b"cookie secret"))
        rival.server = "rival:2:y"
        [seen_by_rival] = await rival.all()
        assert await records.claim(stale)
        assert not await rival.claim(seen_by_rival)
        taken, missing, stop = await rival.beat({"k1": ("idle", 0.0, None)})
        assert (taken, missing, stop) == ({"k1"}, set(), set())
        [claimed] = await rival.all()  # the claim sealed the row again, naming its winner
        assert claimed.server == records.server
        await rival.request_stop("k1")
        assert await records.stop_requested("k1")
    finally:
        await database.close()


TAMPERINGS = {
    "owner": "UPDATE kernels_kernels SET owner = 'mallory' WHERE id = 'alice'",
    "no owner": "UPDATE kernels_kernels SET owner = NULL WHERE id = 'alice'",
    "pid": "UPDATE kernels_kernels SET provisioner = replace(provisioner, '1234', '1') "
    "WHERE id = 'alice'",
    "connection file": "UPDATE kernels_kernels SET provisioner = replace(provisioner, "
    "'/run/kernel-alice.json', '/tmp/victim.txt') WHERE id = 'alice'",
    "port": "UPDATE kernels_kernels SET connection = replace(connection, '5000', '5001') "
    "WHERE id = 'alice'",
    "server": "UPDATE kernels_kernels SET server = 'elsewhere:999999:deadbeef' WHERE id = 'alice'",
    "cwd": "UPDATE kernels_kernels SET cwd = '/' WHERE id = 'alice'",
    "key copied": "UPDATE kernels_kernels SET sealed_key = "
    "(SELECT sealed_key FROM kernels_kernels WHERE id = 'alice') WHERE id = 'bob'",
    "row copied": "INSERT INTO kernels_kernels SELECT 'carol', seq + 1, name, owner, cwd, "
    "connection, sealed_key, provisioner, server, heartbeat, last_activity, "
    "execution_state, stop, restart_requested, restarted, clients_until, restart_refused, "
    "restart_refused_after "
    "FROM kernels_kernels WHERE id = 'alice'",
}


@pytest.mark.parametrize("tampering", list(TAMPERINGS))
async def test_a_row_changed_outside_the_server_is_ignored(
    database_url: str, tampering: str
) -> None:
    database = Database(database_url)
    try:
        await upgrade(database, [("kernels", TABLES)])
        records = KernelRecords(database, Sealer(b"cookie secret"))
        alice, bob = record("alice", "alice-key"), record("bob", "bob-key")
        alice.owner, bob.owner = "alice", "bob"
        alice.provisioner["connection_file"] = "/run/kernel-alice.json"
        await records.save(alice)
        await records.save(bob)
        async with database.session() as session:
            await session.execute(text(TAMPERINGS[tampering]))
            ids = (await session.execute(text("SELECT id FROM kernels_kernels"))).scalars()
            changed = {"key copied": "bob", "row copied": "carol"}.get(tampering, "alice")
            untouched = sorted(set(ids) - {changed})

        assert [found.id for found in await records.all()] == untouched
        assert await records.get(changed) is None
        for kernel_id in untouched:  # the others read as saved
            found = await records.get(kernel_id)
            assert found is not None
            assert found.connection["key"] == f"{kernel_id}-key"
            assert found.owner == kernel_id
    finally:
        await database.close()


async def test_the_renewed_columns_stay_outside_the_seal_and_owner_changes_seal_again(
    database_url: str,
) -> None:
    database = Database(database_url)
    try:
        await upgrade(database, [("kernels", TABLES)])
        records = KernelRecords(database, Sealer(b"cookie secret"))
        await records.save(record("k1", "k1-key"))
        async with database.session() as session:  # what every replica writes
            await session.execute(
                text(
                    "UPDATE kernels_kernels SET heartbeat = 5.0, last_activity = 6.0, "
                    "execution_state = 'busy', stop = :stop, seq = 7, "
                    "restart_requested = 3, restarted = 2"
                ),
                {"stop": True},
            )
        [found] = await records.all()
        assert (found.heartbeat, found.execution_state, found.stop) == (5.0, "busy", True)

        # The owner changes through the heartbeat: sealed again, so still read.
        assert await records.beat({"k1": ("idle", 8.0, "alice")}) == (set(), set(), {"k1"})
        [found] = await records.all()
        assert (found.owner, found.connection["key"]) == ("alice", "k1-key")
    finally:
        await database.close()


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True
    )


def _wait(condition: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_the_reaper_spares_claimed_groups_and_kills_the_others_after_the_grace(
    tmp_path: Path,
) -> None:
    claimed, unclaimed, plain = _sleeper(), _sleeper(), _sleeper()
    marker_a, marker_b = tmp_path / "a.json", tmp_path / "b.json"
    marker_a.write_text("{}")
    marker_b.write_text("{}")
    reaper = Reaper()
    reaper.set_orphan_grace(3)
    try:
        reaper.track(claimed.pid, marker=str(marker_a))
        reaper.track(unclaimed.pid, marker=str(marker_b))
        reaper.track(plain.pid)
        process = reaper._process
        assert process is not None
        reaper.close()  # as if the server died
        _wait(lambda: plain.poll() is not None)  # no marker: killed at once
        assert claimed.poll() is None
        assert unclaimed.poll() is None
        os.utime(marker_a, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))  # a claim
        _wait(lambda: unclaimed.poll() is not None)  # after the grace
        _wait(lambda: process.poll() is not None)
        assert claimed.poll() is None
        assert pid_alive(claimed.pid)
    finally:
        for child in (claimed, unclaimed, plain):
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
