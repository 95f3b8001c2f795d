"""``UserDirectory`` against the database: activity flushes and revocations of several
servers at once never deadlock on PostgreSQL, a flush that fails keeps its batch, and an
issuer's groups in another order change nothing (no bump of the credentials generation)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import anyio
import pytest

from junction.database import Database, upgrade
from junction.database.engine import ShieldedSession
from junction.errors import DatabaseUnavailable
from junction.plugins.hub.service import HubOAuthService
from junction.plugins.users import credentials, plugin, store
from junction.plugins.users.directory import UserDirectory
from junction.plugins.users.hublogin import HubServiceLogin
from junction.plugins.users.settings import UsersSettings

pytestmark = pytest.mark.anyio

ROUNDS = 8
SESSIONS = 40
TOKENS = 10


async def _database(url: str) -> Database:
    database = Database(url)
    assert plugin.tables is not None
    await upgrade(database, [("users", plugin.tables)])
    return database


async def _generation(database: Database) -> int:
    async with database.session() as db:
        return await store.read_generation(db)


async def test_flushes_and_revocations_of_several_servers_never_deadlock(
    postgres_url: str,
) -> None:
    """Two servers flush the same sessions and tokens in opposite orders while a third
    revokes them all, round after round; every flush and every revocation succeeds."""
    databases = [await _database(postgres_url) for _ in range(3)]
    a, b, admin = (UserDirectory(d, UsersSettings()) for d in databases)
    try:
        await admin.add_user("dee")
        errors: list[BaseException] = []

        async def run(step: Any) -> None:
            try:
                await step
            except Exception as exc:
                errors.append(exc)

        for _ in range(ROUNDS):
            now = datetime.now(UTC)
            async with admin.database.session() as db:
                account = await store.account_named(db, "dee")
                assert account is not None
                sessions = [
                    credentials.digest(credentials.new_session_id()) for _ in range(SESSIONS)
                ]
                for digest in sessions:
                    await store.insert_session(
                        db,
                        digest=digest,
                        account_id=account.id,
                        created=now,
                        last_seen=now,
                        expires=now + timedelta(days=1),
                        agent="test",
                        address="127.0.0.1",
                    )
            tokens = [(await admin.issue_token("dee"))[1].digest for _ in range(TOKENS)]
            moment = now.timestamp()
            a._seen = dict.fromkeys(sessions, moment)
            b._seen = dict.fromkeys(reversed(sessions), moment)
            a._used = dict.fromkeys(tokens, moment)
            b._used = dict.fromkeys(reversed(tokens), moment)
            with anyio.fail_after(60):
                async with anyio.create_task_group() as group:
                    group.start_soon(run, a.flush())
                    group.start_soon(run, b.flush())
                    group.start_soon(run, admin.revoke("dee"))
            assert errors == []
            assert await admin.sessions("dee") == []
            assert await admin.tokens("dee") == []
    finally:
        for database in databases:
            await database.close()


class _FailingDatabase(Database):
    """A database whose transactions fail, after a request was recorded meanwhile."""

    def __init__(self, url: str, directory: UserDirectory) -> None:
        super().__init__(url)
        self.directory = directory

    @asynccontextmanager
    async def session(self) -> AsyncIterator[ShieldedSession]:
        """Record newer and older activity, then fail as an unreachable database does."""
        self.directory._seen["s1"] = 300.0
        self.directory._seen["s3"] = 50.0
        raise DatabaseUnavailable("the database is unavailable; try again shortly")
        yield  # an async generator all the same


async def test_a_failed_flush_puts_its_batch_back_keeping_the_newest_times(
    tmp_path: Path,
) -> None:
    directory = UserDirectory(Database(f"sqlite+aiosqlite:///{tmp_path / 'j.db'}"), UsersSettings())
    failing = _FailingDatabase(f"sqlite+aiosqlite:///{tmp_path / 'j.db'}", directory)
    directory.database = failing
    directory._seen = {"s1": 100.0, "s2": 100.0, "s3": 100.0}
    directory._used = {"t1": 100.0}
    try:
        with pytest.raises(DatabaseUnavailable):
            await directory.flush()
    finally:
        await failing.close()
    assert directory._seen == {"s1": 300.0, "s2": 100.0, "s3": 100.0}
    assert directory._used == {"t1": 100.0}


async def test_groups_in_another_order_leave_the_generation_alone(tmp_path: Path) -> None:
    database = await _database(f"sqlite+aiosqlite:///{tmp_path / 'j.db'}")
    users = UserDirectory(database, UsersSettings())
    try:

        async def login(groups: list[str]) -> None:
            await users.sync_external(
                "eli", display_name=None, avatar_url=None, groups=groups, admin=False, source="x"
            )

        await login(["lab", "staff", "admin-team"])
        before = await _generation(database)
        await login(["staff", "admin-team", "lab"])
        await login(["admin-team", "lab", "staff", "lab"])
        assert await _generation(database) == before
        await login(["staff", "lab"])
        assert await _generation(database) == before + 1
        assert (await users.get("eli")).groups == ("staff", "lab")
    finally:
        await database.close()


class _Access:
    """The parts of the Hub's OAuth client that mapping accounts and rechecks ask: access
    scopes, and the Hub's model of a token's owner (``model``, set by the test)."""

    def __init__(self) -> None:
        self.model: dict[str, Any] = {}

    def has_access(self, scopes: Iterable[str]) -> bool:
        """Whether ``scopes`` hold the Hub's access to services."""
        return "access:services" in scopes

    async def user_model(self, token: str) -> dict[str, Any] | None:
        """What the Hub says of the token's owner now."""
        return self.model


async def test_hub_groups_in_another_order_leave_the_generation_alone(tmp_path: Path) -> None:
    database = await _database(f"sqlite+aiosqlite:///{tmp_path / 'j.db'}")
    settings = UsersSettings(hub_group_roles={"lab": ["viewer"], "staff": ["editor"]})
    users = UserDirectory(database, settings)
    hub = HubServiceLogin(settings, users, cast(HubOAuthService, _Access()))
    try:

        async def login(groups: list[str]) -> None:
            model = {"name": "fin", "kind": "user", "groups": groups, "scopes": ["access:services"]}
            await hub.account_for(model)

        await login(["lab", "staff"])
        before = await _generation(database)
        await login(["staff", "lab"])
        assert await _generation(database) == before
        roles = (await users.get("fin")).roles
        assert sorted(roles) == sorted({*settings.default_roles, "viewer", "editor"})
    finally:
        await database.close()


async def test_a_hub_recheck_applies_a_demotion_and_new_roles(tmp_path: Path) -> None:
    database = await _database(f"sqlite+aiosqlite:///{tmp_path / 'j.db'}")
    settings = UsersSettings(
        hub_group_roles={"lab": ["viewer"]},
        hub_admin_groups=["hub-admins"],
        default_roles=[],
        oidc_recheck_seconds=0,
    )
    users = UserDirectory(database, settings)
    access = _Access()
    hub = HubServiceLogin(settings, users, cast(HubOAuthService, access))
    users.attach_source(hub, label=hub.label, path=hub.path)
    try:
        access.model = {
            "name": "gil",
            "kind": "user",
            "groups": ["hub-admins"],
            "scopes": ["access:services"],
        }
        user = await hub.account_for(access.model)
        assert user.admin
        session = await users.open_session(
            user, agent="test", address="127.0.0.1", access_token="hub-token"
        )
        assert (await users.user_for_session(session) or user).admin
        users.forget_all()  # as the cache's lifetime would
        access.model = {**access.model, "groups": ["lab"]}
        found = await users.user_for_session(session)
        assert found is not None
        assert (found.admin, found.groups, found.roles) == (False, ("lab",), ("viewer",))
        account = await users.get("gil")
        assert (account.admin, account.groups, account.roles) == (False, ("lab",), ("viewer",))
    finally:
        await database.close()
