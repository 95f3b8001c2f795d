"""One user's directory listings wait in their own queue past ``LISTINGS_PER_USER``."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from junction.auth.identity import User
from junction.plugins.contents.fairness import PerUserSlots
from junction.plugins.contents.service import CONTENTS, Reach
from junction.plugins.users.homes import HOMES
from junction.testing import app_client, user_headers

pytestmark = pytest.mark.anyio


async def test_a_user_past_their_slots_waits_while_others_go_on() -> None:
    slots = PerUserSlots(per_user=2)
    release = anyio.Event()
    third_in = anyio.Event()

    async def hold(user: str, entered: anyio.Event | None = None) -> None:
        async with slots.hold(user):
            if entered is not None:
                entered.set()
            await release.wait()

    async with anyio.create_task_group() as group:
        for _ in range(2):
            group.start_soon(hold, "ana")
        await anyio.wait_all_tasks_blocked()
        group.start_soon(hold, "ana", third_in)
        await anyio.wait_all_tasks_blocked()
        assert slots.busy("ana") == 2
        assert not third_in.is_set()  # Ana's third waits for one of hers
        async with slots.hold("bob"):  # Bob does not wait behind her
            assert slots.busy("bob") == 1
        async with slots.hold(None):  # not capped
            pass
        release.set()
    assert third_in.is_set()
    assert slots.busy("ana") == 0
    assert not slots._limiters  # nothing kept for users with nothing running


async def test_a_listing_that_judges_links_holds_one_of_its_users_slots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    async with app_client(
        enable=["users", "contents"],
        root_dir=root,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'junction.db'}",
    ) as admin:
        ana = await user_headers(admin, "ana")
        assert (await admin.get("/api/contents/home", headers=ana)).status_code == 200
        home = root / "home" / "ana"
        (home / "target.txt").write_text("x")
        (home / "link.txt").symlink_to("target.txt")
        slots = admin.app.state.services.get(CONTENTS)._listings
        homes = admin.app.state.services.get(HOMES)
        original = homes.check
        seen: list[int] = []

        async def check(user: User, path: str, action: str, *, entry: bool = False) -> Reach:
            if path == "home/ana/target.txt":  # the listing judging its link's target
                seen.append(slots.busy("ana"))
            reach: Reach = await original(user, path, action, entry=entry)
            return reach

        monkeypatch.setattr(homes, "check", check)
        for url in ("/api/contents/home/ana", "/api/contents/home/ana?limit=10"):
            listed = await admin.get(url, headers=ana)
            assert listed.status_code == 200, listed.text
            names = [entry["name"] for entry in listed.json()["content"]]
            assert "link.txt" in names
        assert seen == [1, 1]
        assert slots.busy("ana") == 0
