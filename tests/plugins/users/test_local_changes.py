"""Changes made through one server racing what it reads of the database: a share reload that
overlaps a local share change, a lookup that overlaps a local revocation."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from junction.database import Database
from junction.plugins.users.directory import UserDirectory
from junction.plugins.users.homes import HOMES, Homes
from junction.plugins.users.service import USERS
from junction.services import AUTH
from junction.testing import app_client

pytestmark = pytest.mark.anyio

NO_POLL = {"users": {"revocation_poll_seconds": 0}}


class _Gated:
    """A database whose sessions, once committed, wait at the gate named by ``current``."""

    def __init__(self, real: Database, *names: str) -> None:
        self.real = real
        self.current = ""
        self.gates = {name: anyio.Event() for name in names}
        self.reached = {name: anyio.Event() for name in names}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """The real database's session, then a wait at the gate it was opened under."""
        name = self.current
        async with self.real.session() as db:
            yield db
        if name in self.gates and not self.gates[name].is_set():
            self.reached[name].set()
            with anyio.fail_after(30):
                await self.gates[name].wait()


async def test_a_reload_overlapping_a_local_share_change_still_applies_a_remote_withdrawal(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'junction.db'}"
    for folder in ("data", "other"):
        (tmp_path / folder).mkdir()
    options: dict[str, Any] = {
        "enable": ["users", "contents"],
        "database_url": url,
        "root_dir": tmp_path,
        "plugin_settings": NO_POLL,
    }
    async with app_client(**options) as a, app_client(**options) as b:
        users_b: UserDirectory = b.app.state.services.get(USERS)
        homes_b: Homes = b.app.state.services.get(HOMES)
        made = await a.put("/api/users/shares", json={"path": "data", "user": "ivy"})
        assert made.status_code == 200, made.text
        withdrawn = made.json()["id"]  # not the newest id, which SQLite may hand out again
        kept = await a.put("/api/users/shares", json={"path": "data", "user": "kim"})
        assert kept.status_code == 200, kept.text
        await users_b.check_generation()
        assert sorted(s.target for s in homes_b.shares.values()) == ["ivy", "kim"]
        gone = await a.delete(f"/api/users/shares/{withdrawn}")
        assert gone.status_code in (200, 204), gone.text

        real = homes_b.database
        gated = _Gated(real, "share", "load")
        homes_b.database = gated  # type: ignore[assignment]
        admin = b.app.state.services.get(AUTH).user
        shared = anyio.Event()
        try:
            with anyio.fail_after(60):
                async with anyio.create_task_group() as group:

                    async def share_locally() -> None:
                        gated.current = "share"
                        await homes_b.share(admin, "other", "user", "zed", "read")
                        shared.set()

                    group.start_soon(share_locally)
                    await gated.reached["share"].wait()  # committed, not yet in memory
                    gated.current = "load"
                    group.start_soon(users_b.check_generation)  # B's poll tick
                    await gated.reached["load"].wait()  # the withdrawal read, not yet swapped
                    gated.gates["share"].set()
                    await shared.wait()  # the local change lands meanwhile
                    gated.gates["load"].set()
        finally:
            homes_b.database = real
        await users_b.check_generation()  # the next tick, if the last one left work
        assert sorted(s.target for s in homes_b.shares.values()) == ["kim", "zed"]
        assert await users_b.check_generation() is False  # and then the poll is at rest


async def test_a_reload_that_could_not_catch_up_leaves_the_generation_unread(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'junction.db'}"
    async with app_client(
        enable=["users"], database_url=url, root_dir=tmp_path, plugin_settings=NO_POLL
    ) as client:
        users: UserDirectory = client.app.state.services.get(USERS)
        await users.check_generation()
        answers = [False, True]
        calls: list[bool] = []

        async def reload() -> bool:
            calls.append(answers[len(calls)])
            return calls[-1]

        users.on_generation(reload)
        made = await client.post("/api/users", json={"name": "ana"})
        assert made.status_code == 201, made.text
        disabled = await client.patch("/api/users/ana", json={"enabled": False})
        assert disabled.status_code == 200, disabled.text
        assert await users.check_generation() is True
        assert await users.check_generation() is True  # read again: the reload said False
        assert await users.check_generation() is False
        assert calls == [False, True]


@pytest.mark.parametrize("revocation", ["logout", "disable"])
async def test_a_lookup_overlapping_a_local_revocation_caches_nothing(
    tmp_path: Path, revocation: str
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'junction.db'}"
    async with app_client(
        enable=["users"], database_url=url, root_dir=tmp_path, plugin_settings=NO_POLL
    ) as client:
        users: UserDirectory = client.app.state.services.get(USERS)
        account = await users.add_user("ana")
        cookie = await users.open_session(account.user(), agent="test", address="127.0.0.1")
        real = users.database
        gated = _Gated(real, "lookup")
        users.database = gated  # type: ignore[assignment]
        found: list[object] = []
        try:
            with anyio.fail_after(60):
                async with anyio.create_task_group() as group:

                    async def look_up() -> None:
                        found.append(await users.user_for_session(cookie))

                    gated.current = "lookup"
                    group.start_soon(look_up)
                    await gated.reached["lookup"].wait()  # the row read, not yet cached
                    gated.current = ""
                    if revocation == "logout":
                        await users.close_session(cookie)
                    else:
                        await users.set_enabled("ana", False)
                    gated.gates["lookup"].set()
        finally:
            users.database = real
        assert len(found) == 1
        assert found[0] is not None  # the overlapping request was answered
        assert await users.user_for_session(cookie) is None


async def test_a_lookup_without_touch_leaves_last_seen_alone(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'junction.db'}"
    async with app_client(
        enable=["users"], database_url=url, root_dir=tmp_path, plugin_settings=NO_POLL
    ) as client:
        users: UserDirectory = client.app.state.services.get(USERS)
        account = await users.add_user("ana")
        cookie = await users.open_session(account.user(), agent="test", address="127.0.0.1")
        before = (await users.sessions("ana"))[0].last_seen
        assert await users.user_for_session(cookie, touch=False) is not None
        await users.flush()
        assert (await users.sessions("ana"))[0].last_seen == before
        assert await users.user_for_session(cookie) is not None
        await users.flush()
        assert (await users.sessions("ana"))[0].last_seen > before
