"""A revocation made by one process reaches every server sharing the database within about
``users.revocation_poll_seconds``, although each trusts a checked credential for
``users.cache_seconds`` (left at its 60 s here). So does a share made or withdrawn: the poll
that sees the generation move reloads the shares too.

Real ``junction`` servers: two on one PostgreSQL database, and one on SQLite with
``junction users revoke`` run beside it; in-process apps for the generation itself.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import event

from junction.database import Database, upgrade
from junction.errors import DatabaseUnavailable
from junction.plugins.users import plugin, store
from junction.plugins.users.directory import UserDirectory
from junction.plugins.users.homes import HOMES, Homes
from junction.plugins.users.service import USERS
from junction.plugins.users.settings import UsersSettings
from junction.services import DATABASE
from junction.testing import TEST_TOKEN, PostgresCluster, ServerProcess, app_client

ADMIN = {"Authorization": f"token {TEST_TOKEN}"}
REFUSED = (401, 403)
WITHIN = 10.0
"""Seconds a revocation may take to reach another server: ten poll intervals, and far less
than the 60 s a checked credential is otherwise trusted."""


def start_server(root: Path, name: str, database_url: str) -> ServerProcess:
    """A server with the users and contents plugins alone on ``database_url``, default cache
    settings."""
    args = ["--port", "0", "--ip", "127.0.0.1", "--profile", "none", "--enable", "users"]
    args += ["--enable", "contents"]
    args += ["--root-dir", str(root), "--set", f"database_url={database_url}"]
    args += ["--set", "cookie_secret=servers-share-this-cookie-secret"]
    return ServerProcess(args, log_path=root / f"{name}.log").start()


def wait_refused(server: ServerProcess, **credentials: Any) -> float:
    """Ask ``server`` who the credentials are until it refuses them; returns how long it took.
    Fails after :data:`WITHIN` seconds."""
    started = time.monotonic()
    while True:
        status = httpx.get(f"{server.url}api/me", timeout=30, **credentials).status_code
        elapsed = time.monotonic() - started
        if status in REFUSED:
            return elapsed
        assert status == 200, status
        assert elapsed < WITHIN, f"{server.url} still accepts them after {elapsed:.1f} s"
        time.sleep(0.05)


def username(server: ServerProcess, **credentials: Any) -> str:
    """Whom ``server`` takes the credentials for (asserts it accepts them)."""
    me = httpx.get(f"{server.url}api/me", timeout=30, **credentials)
    assert me.status_code == 200, me.text
    name: str = me.json()["identity"]["username"]
    return name


def new_user(server: ServerProcess, name: str, password: str | None = None) -> None:
    """Create a local account through the server's API."""
    body = {"name": name} if password is None else {"name": name, "password": password}
    created = httpx.post(f"{server.url}api/users", json=body, headers=ADMIN, timeout=30)
    assert created.status_code == 201, created.text


def new_token(server: ServerProcess, name: str) -> tuple[int, dict[str, str]]:
    """A new API token of ``name``: its id and the headers that carry it."""
    issued = httpx.post(f"{server.url}api/users/{name}/tokens", headers=ADMIN, timeout=30)
    assert issued.status_code == 201, issued.text
    return issued.json()["id"], {"Authorization": f"token {issued.json()['token']}"}


@pytest.fixture(scope="module")
def replicas_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """The PostgreSQL database of :func:`two_servers` (and of any server a test adds)."""
    name = postgres_cluster.create_database()
    try:
        yield postgres_cluster.url(name)
    finally:
        postgres_cluster.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def replicas_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The root folder of :func:`two_servers` (and of any server a test adds)."""
    return tmp_path_factory.mktemp("replicas")


@pytest.fixture(scope="module")
def two_servers(
    replicas_url: str, replicas_root: Path
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two servers on one PostgreSQL database, as replicas behind a proxy are."""
    first = start_server(replicas_root, "a", replicas_url)
    try:
        second = start_server(replicas_root, "b", replicas_url)
        try:
            yield first, second
        finally:
            second.stop()
    finally:
        first.stop()


def test_a_token_revoked_on_one_server_is_refused_by_the_other(
    two_servers: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = two_servers
    new_user(a, "ana")
    token_id, as_ana = new_token(a, "ana")
    assert username(a, headers=as_ana) == "ana"
    assert username(b, headers=as_ana) == "ana"  # now in b's cache for 60 s

    revoked = httpx.delete(f"{a.url}api/users/ana/tokens/{token_id}", headers=ADMIN)
    assert revoked.status_code == 204
    assert httpx.get(f"{a.url}api/me", headers=as_ana).status_code in REFUSED
    delay = wait_refused(b, headers=as_ana)
    print(f"revoked token refused by the other server after {delay:.2f} s")


def test_disabling_an_account_on_one_server_logs_its_session_out_on_the_other(
    two_servers: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = two_servers
    new_user(a, "bob", "bob's long passphrase")
    form = httpx.get(f"{b.url}login", timeout=30)
    xsrf = form.cookies["_xsrf"]
    login = httpx.post(
        f"{a.url}login",
        data={"username": "bob", "password": "bob's long passphrase", "_xsrf": xsrf},
        cookies={"_xsrf": xsrf},
        timeout=30,
    )
    assert login.status_code in (302, 303), login.text
    session = dict(login.cookies)
    assert username(b, cookies=session) == "bob"  # now in b's cache for 60 s
    _, as_bob = new_token(a, "bob")
    assert username(b, headers=as_bob) == "bob"

    disabled = httpx.patch(f"{a.url}api/users/bob", json={"enabled": False}, headers=ADMIN)
    assert disabled.status_code == 200, disabled.text
    assert httpx.get(f"{a.url}api/me", cookies=session).status_code in REFUSED
    delay = wait_refused(b, cookies=session)
    print(f"disabled account's session refused by the other server after {delay:.2f} s")
    wait_refused(b, headers=as_bob)


def _users_command(database_url: str, *words: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "junction.cli", "--set", f"database_url={database_url}"]
    return subprocess.run(
        [*command, "users", *words],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_junction_users_revoke_reaches_a_running_server_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'junction.db'}"
    server = start_server(tmp_path, "server", url)
    try:
        new_user(server, "cleo")
        _, as_cleo = new_token(server, "cleo")
        assert username(server, headers=as_cleo) == "cleo"

        revoked = _users_command(url, "revoke", "cleo")
        assert revoked.returncode == 0, revoked.stderr
        assert revoked.stdout.strip() == "revoked 0 sessions and 1 tokens of cleo"
        delay = wait_refused(server, headers=as_cleo)
        print(f"token revoked from the command line refused after {delay:.2f} s")
    finally:
        server.stop()


# -- shares ------------------------------------------------------------------------------------


DENIED = (403, 404)


def wait_until(condition: Callable[[], bool], what: str) -> float:
    """Poll ``condition`` until it holds; returns how long it took. Fails after
    :data:`WITHIN` seconds."""
    started = time.monotonic()
    while not condition():
        elapsed = time.monotonic() - started
        assert elapsed < WITHIN, f"{what} after {elapsed:.1f} s"
        time.sleep(0.05)
    return time.monotonic() - started


def read_status(server: ServerProcess, headers: dict[str, str], path: str) -> int:
    """The status of reading the file ``path`` through ``server``."""
    return httpx.get(f"{server.url}api/contents/{path}", headers=headers, timeout=30).status_code


def write_status(server: ServerProcess, headers: dict[str, str], path: str, text: str) -> int:
    """The status of overwriting the file ``path`` through ``server``."""
    body = {"type": "file", "format": "text", "content": text}
    url = f"{server.url}api/contents/{path}"
    return httpx.put(url, json=body, headers=headers, timeout=30).status_code


def listed(server: ServerProcess, share_id: int) -> bool:
    """Whether ``server`` lists the share ``share_id`` to an administrator."""
    answer = httpx.get(f"{server.url}api/users/shares", headers=ADMIN, timeout=30)
    assert answer.status_code == 200, answer.text
    return share_id in [share["id"] for share in answer.json()]


def make_share(server: ServerProcess, folder: str, user: str) -> int:
    """Share ``folder`` read-write with ``user`` through ``server``; returns its id."""
    body = {"path": folder, "user": user, "access": "write"}
    made = httpx.put(f"{server.url}api/users/shares", json=body, headers=ADMIN, timeout=30)
    assert made.status_code == 200, made.text
    share_id: int = made.json()["id"]
    return share_id


def unshare(server: ServerProcess, share_id: int) -> None:
    """Withdraw a share through ``server``."""
    gone = httpx.delete(f"{server.url}api/users/shares/{share_id}", headers=ADMIN, timeout=30)
    assert gone.status_code == 204, gone.text


def test_shares_made_and_withdrawn_on_one_server_apply_on_the_other(
    two_servers: tuple[ServerProcess, ServerProcess], replicas_root: Path
) -> None:
    a, b = two_servers
    (replicas_root / "datasets").mkdir()
    (replicas_root / "datasets" / "notes.txt").write_text("first")
    path = "datasets/notes.txt"
    new_user(a, "sh")
    _, as_sh = new_token(a, "sh")
    assert read_status(b, as_sh, path) in DENIED

    share_id = make_share(a, "datasets", "sh")
    delay = wait_until(lambda: read_status(b, as_sh, path) == 200, "b still refuses the share")
    print(f"share made on a usable through b after {delay:.2f} s")
    assert write_status(b, as_sh, path, "written through b") == 200
    assert listed(b, share_id)

    unshare(a, share_id)
    delay = wait_until(lambda: read_status(b, as_sh, path) != 200, "b still grants the share")
    print(f"share withdrawn on a refused by b after {delay:.2f} s")
    assert read_status(b, as_sh, path) in DENIED
    assert write_status(b, as_sh, path, "after the share") in DENIED
    assert not listed(b, share_id)
    assert (replicas_root / path).read_text() == "written through b"


def test_a_share_withdrawn_on_one_server_is_refused_by_one_that_loaded_it(
    two_servers: tuple[ServerProcess, ServerProcess], replicas_url: str, replicas_root: Path
) -> None:
    """The third server reads the share from the database when it starts, as after a
    restart; the withdrawal on the first must still reach it."""
    a, _ = two_servers
    (replicas_root / "results").mkdir()
    (replicas_root / "results" / "r.txt").write_text("first")
    path = "results/r.txt"
    new_user(a, "sh2")
    _, as_sh2 = new_token(a, "sh2")
    share_id = make_share(a, "results", "sh2")
    c = start_server(replicas_root, "c", replicas_url)
    try:
        assert write_status(c, as_sh2, path, "written through c") == 200
        unshare(a, share_id)
        delay = wait_until(lambda: write_status(c, as_sh2, path, "late") != 200, "c still grants")
        print(f"share withdrawn on a refused by c after {delay:.2f} s")
        assert read_status(c, as_sh2, path) in DENIED
        assert write_status(c, as_sh2, path, "after the share") in DENIED
        assert not listed(c, share_id)
        assert (replicas_root / path).read_text() != "after the share"
    finally:
        c.stop()


# -- in process --------------------------------------------------------------------------------


async def _generation(client: httpx.AsyncClient) -> int:
    async with client.app.state.services.get(DATABASE).session() as db:  # type: ignore[attr-defined]
        return await store.read_generation(db)


@pytest.mark.anyio
async def test_writes_that_take_credentials_away_bump_the_generation(
    database_url: str,
) -> None:
    no_poll = {"users": {"revocation_poll_seconds": 0}}
    async with app_client(
        enable=["users"], database_url=database_url, plugin_settings=no_poll
    ) as client:
        users: UserDirectory = client.app.state.services.get(USERS)
        start = await _generation(client)

        async def bumps(change: Callable[[], Any]) -> bool:
            before = await _generation(client)
            await change()
            return await _generation(client) > before

        assert not await bumps(lambda: users.add_user("dan", password="pw-dan-123"))
        _, row = await users.issue_token("dan")
        assert not await bumps(lambda: users.set_password("dan", "another-pw-456"))
        assert not await bumps(lambda: users.revoke("dan", tokens=False))  # nothing to end
        assert await bumps(lambda: users.set_roles("dan", roles=["viewer"]))
        assert await bumps(lambda: users.set_enabled("dan", False))
        assert await bumps(lambda: users.set_enabled("dan", True))
        assert await bumps(lambda: users.revoke_token("dan", row.id))
        await users.issue_token("dan")
        assert await bumps(lambda: users.revoke("dan"))

        def login(groups: list[str]) -> Any:
            return users.sync_external(
                "eve", display_name=None, avatar_url=None, groups=groups, admin=False, source="x"
            )

        assert not await bumps(lambda: login(["lab"]))  # a new account
        assert not await bumps(lambda: login(["lab"]))  # the same again: caches stay
        assert await bumps(lambda: login(["other"]))
        assert await _generation(client) == start + 6


@pytest.mark.anyio
async def test_a_moved_generation_drops_a_cache_filled_before(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'j.db'}"
    no_poll = {"users": {"revocation_poll_seconds": 0}}
    async with (
        app_client(enable=["users"], database_url=url) as a,
        app_client(enable=["users"], database_url=url, plugin_settings=no_poll) as b,
    ):
        await a.post("/api/users", json={"name": "fay"})
        issued = (await a.post("/api/users/fay/tokens")).json()
        as_fay = {"Authorization": f"token {issued['token']}"}
        b_users: UserDirectory = b.app.state.services.get(USERS)
        await b_users.check_generation()
        assert (await b.get("/api/me", headers=as_fay)).status_code == 200

        assert (await a.delete(f"/api/users/fay/tokens/{issued['id']}")).status_code == 204
        assert (await b.get("/api/me", headers=as_fay)).status_code == 200  # b's cache
        assert await b_users.check_generation()
        assert (await b.get("/api/me", headers=as_fay)).status_code in REFUSED
        assert not await b_users.check_generation()


@pytest.mark.anyio
async def test_a_lookup_overlapping_a_drop_caches_nothing(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'j.db'}"
    no_poll = {"users": {"revocation_poll_seconds": 0}}
    async with app_client(enable=["users"], database_url=url, plugin_settings=no_poll) as client:
        users: UserDirectory = client.app.state.services.get(USERS)
        await users.add_user("gus")
        token, _ = await users.issue_token("gus")
        engine = client.app.state.services.get(DATABASE).engine.sync_engine

        def drop_meanwhile(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if "users_tokens" in statement:
                users.forget_all()  # as if the poll saw a revocation while the row was read

        event.listen(engine, "before_cursor_execute", drop_meanwhile)
        try:
            found = await users.user_for_token(token)
        finally:
            event.remove(engine, "before_cursor_execute", drop_meanwhile)
        assert found is not None
        assert found.username == "gus"
        assert users._tokens == {}
        found = await users.user_for_token(token)
        assert found is not None
        assert len(users._tokens) == 1


@pytest.mark.anyio
async def test_the_poll_outlives_an_unreachable_database(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    broken = Database(f"sqlite+aiosqlite:///{tmp_path / 'a-file' / 'j.db'}")
    working = Database(f"sqlite+aiosqlite:///{tmp_path / 'j.db'}")
    assert plugin.tables is not None
    await upgrade(working, [("users", plugin.tables)])
    async with working.session() as db:
        await store.bump_generation(db)
    directory = UserDirectory(broken, UsersSettings(revocation_poll_seconds=0.01))
    caplog.set_level(logging.INFO, logger="junction.users")
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(directory.watch_revocations)
            with anyio.fail_after(10):
                while "cannot read the credentials generation" not in caplog.text:
                    await anyio.sleep(0.01)
            directory.database = working
            with anyio.fail_after(10):
                while directory._generation != 1:
                    await anyio.sleep(0.01)
            group.cancel_scope.cancel()
    finally:
        await broken.close()
        await working.close()
    assert caplog.text.count("cannot read the credentials generation") == 1
    assert "the credentials generation can be read again" in caplog.text


@pytest.mark.anyio
async def test_a_failed_reload_of_the_shares_keeps_them_and_is_tried_again(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'j.db'}"
    (tmp_path / "a-file").write_text("not a directory")
    broken = Database(f"sqlite+aiosqlite:///{tmp_path / 'a-file' / 'j.db'}")
    no_poll = {"users": {"revocation_poll_seconds": 0}}
    (tmp_path / "data").mkdir()
    async with app_client(
        enable=["users", "contents"], database_url=url, root_dir=tmp_path, plugin_settings=no_poll
    ) as client:
        users: UserDirectory = client.app.state.services.get(USERS)
        homes: Homes = client.app.state.services.get(HOMES)
        database = client.app.state.services.get(DATABASE)
        await users.check_generation()
        made = await client.put("/api/users/shares", json={"path": "data", "user": "ivy"})
        assert made.status_code == 200, made.text
        before = homes.shares
        assert list(before) == [made.json()["id"]]
        async with database.session() as db:  # as another server would
            await store.replace_share(
                db,
                path="data",
                kind="group",
                target="lab",
                access="read",
                created_by="admin",
                created=datetime.now(UTC),
            )
        homes.database = broken
        try:
            with pytest.raises(DatabaseUnavailable):
                await users.check_generation()
            assert homes.shares is before  # the old shares, whole
        finally:
            homes.database = database
            await broken.close()
        assert await users.check_generation()  # the generation still counts as moved
        assert sorted(s.target for s in homes.shares.values()) == ["ivy", "lab"]
        assert not await users.check_generation()
