"""The reach guard: what the contents service opens is judged where it really is.

A route checks a path string (``check_path``), then the service resolves and opens it
again. A user who re-points a link in their own home between the two must not reach
another user's files. These tests make that race certain instead of likely: the users
plugin's ``check`` is wrapped so that, right after it judged the path, the link is
re-pointed at Bob's home before the service opens anything.

In process, on SQLite (the guard does not touch the database).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.plugins.users.linkswaps import Swaps, point

from junction.auth.identity import User
from junction.plugins.contents.service import CONTENTS, REACH_GUARD, Reach
from junction.plugins.users.homes import HOMES
from junction.testing import app_client, user_headers

pytestmark = pytest.mark.anyio

SECRET = "BOB-SECRET"


@dataclass
class World:
    """Ana and Bob with homes under ``root``; Bob has a secret."""

    client: httpx.AsyncClient
    root: Path
    ana: dict[str, str]
    bob: dict[str, str]
    swaps: Swaps

    @property
    def ana_home(self) -> Path:
        return self.root / "home" / "ana"

    @property
    def bob_home(self) -> Path:
        return self.root / "home" / "bob"

    def bob_files(self) -> dict[str, bytes]:
        """Every file under Bob's home (checkpoints included) and its bytes."""
        found = {}
        for folder, _, files in os.walk(self.bob_home):
            for name in files:
                path = Path(folder, name)
                found[str(path.relative_to(self.bob_home))] = path.read_bytes()
        return found

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send as Ana; the swap set up for this request must have happened."""
        headers = {**self.ana, **kwargs.pop("headers", {})}
        response = await self.client.request(method, url, headers=headers, **kwargs)
        assert not self.swaps.pending, f"{method} {url} never checked the swapped path"
        return response


@pytest.fixture
async def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    root = tmp_path / "root"
    root.mkdir()
    async with app_client(
        enable=["users", "contents", "uploads"],
        root_dir=root,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'junction.db'}",
        plugin_settings={"contents": {"delete_to_trash": False}},
    ) as admin:
        ana = await user_headers(admin, "ana")
        bob = await user_headers(admin, "bob")
        for who in (ana, bob):  # first use makes the home
            assert (await admin.get("/api/contents/home", headers=who)).status_code == 200
        swaps = Swaps()
        swaps.install(admin.app.state.services.get(HOMES), monkeypatch)
        made = World(admin, root, ana, bob, swaps)
        (made.bob_home / "secret.txt").write_text(SECRET)
        (made.bob_home / "secret.ipynb").write_text(
            json.dumps({"cells": [], "metadata": {"s": SECRET}, "nbformat": 4, "nbformat_minor": 5})
        )
        (made.ana_home / "real.txt").write_text("ANA")
        (made.ana_home / "real.ipynb").write_text(
            '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
        )
        (made.ana_home / "realdir").mkdir()
        (made.ana_home / "realdir" / "mine.txt").write_text("ANA")
        (made.ana_home / "a.txt").write_text("ANA")
        yield made


READS = [
    # (method, url, the link: its name in Ana's home and its own target)
    ("GET", "/api/contents/home/ana/x", "x", "real.txt"),
    ("GET", "/api/contents/home/ana/x?type=file&format=base64", "x", "real.txt"),
    ("GET", "/api/contents/home/ana/x?type=file&offset=0&length=64", "x", "real.txt"),
    ("GET", "/api/contents/home/ana/x?content=0&hash=1", "x", "real.txt"),
    ("GET", "/api/contents/home/ana/n.ipynb", "n.ipynb", "real.ipynb"),
    ("GET", "/files/home/ana/x", "x", "real.txt"),
    ("GET", "/view/home/ana/x", "x", "real.txt"),
    ("POST", "/api/contents/home/ana/x/checkpoints", "x", "real.txt"),
]


@pytest.mark.parametrize(("method", "url", "name", "own"), READS)
async def test_a_link_swapped_after_the_check_reads_nothing_of_another_home(
    world: World, method: str, url: str, name: str, own: str
) -> None:
    link = world.ana_home / name
    target = "../bob/" + ("secret.ipynb" if name.endswith(".ipynb") else "secret.txt")
    point(link, own)
    fair = await world.request(method, url)  # unswapped, the link is Ana's own business
    assert fair.status_code in (200, 201), fair.text
    before = world.bob_files()
    world.swaps.after_check(f"home/ana/{name}", link, target)
    raced = await world.request(method, url)
    assert raced.status_code == 404, raced.text
    assert SECRET not in raced.text
    assert raced.json()["message"] == f"No such file or directory: home/ana/{name}"
    assert world.bob_files() == before


@pytest.mark.parametrize("absolute", [False, True])
async def test_resolve_path_finds_nothing_of_anothers_through_a_link_re_pointed_meanwhile(
    world: World, monkeypatch: pytest.MonkeyPatch, absolute: bool
) -> None:
    # The link leads into Ana's own folder whenever a path is checked, and into Bob's home
    # while the path is looked up: the lookup itself must be judged. (An API path is checked
    # by name before the lookup too; an absolute one only once found.)
    (world.bob_home / "only-bob.txt").write_text(SECRET)
    link = world.ana_home / "x"
    point(link, "../bob")
    homes = world.client.app.state.services.get(HOMES)  # type: ignore[attr-defined]
    original = homes.check

    async def check(user: User, path: str, action: str, *, entry: bool = False) -> Reach:
        point(link, "realdir")
        reach: Reach = await original(user, path, action, entry=entry)
        point(link, "../bob")  # for a lookup that may follow
        return reach

    monkeypatch.setattr(homes, "check", check)
    prefix = f"{world.root}/" if absolute else ""
    REACH_GUARD.set(None)  # in process, requests run in this task: no guard left from before
    response = await world.request(
        "GET", "/api/resolvePath", params={"path": f"{prefix}home/ana/x/only-bob.txt"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["resolved"] == []
    monkeypatch.setattr(homes, "check", original)
    point(link, "realdir")
    REACH_GUARD.set(None)
    mine = await world.request(
        "GET", "/api/resolvePath", params={"path": f"{prefix}home/ana/x/mine.txt"}
    )
    assert mine.json()["resolved"] == [{"scope": "server", "path": "home/ana/x/mine.txt"}]


async def test_a_copy_from_a_swapped_link_copies_nothing_of_another_home(world: World) -> None:
    point(world.ana_home / "x", "real.txt")
    world.swaps.after_check("home/ana/x", world.ana_home / "x", "../bob/secret.txt")
    raced = await world.request("POST", "/api/contents/home/ana", json={"copy_from": "home/ana/x"})
    assert raced.status_code == 404, raced.text
    for path in world.ana_home.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert SECRET not in path.read_text(errors="replace")


def _file(content: str) -> dict[str, Any]:
    return {"json": {"type": "file", "format": "text", "content": content}}


CHUNK = {"type": "file", "format": "text", "content": "X", "chunk": 1}
WRITES = [
    # (method, URL under /api/contents/home/ana/, the path whose check is followed by the
    #  swap, under home/ana/, request arguments). ``y.txt`` is a link to Ana's ``real.txt``
    # swapped to Bob's secret; ``d`` is a link to her folder ``realdir`` swapped to his home.
    ("PUT", "y.txt", "y.txt", _file("X")),
    ("PUT", "d/new.txt", "d/new.txt", _file("X")),
    ("PUT", "d/secret.txt", "d/secret.txt", _file("X")),
    ("PUT", "d/sub", "d/sub", {"json": {"type": "directory"}}),
    ("PUT", "d/up.txt", "d/up.txt", {"json": CHUNK}),
    ("POST", "d", "d", {"json": {}}),
    ("POST", "d", "d", {"json": {"copy_from": "home/ana/a.txt"}}),
    ("PATCH", "a.txt", "d/a.txt", {"json": {"path": "home/ana/d/a.txt"}}),
    ("DELETE", "d/secret.txt", "d/secret.txt", {}),
    ("POST", "d/secret.txt/checkpoints", "d/secret.txt", {}),
    ("POST", "d/secret.txt/checkpoints/checkpoint", "d/secret.txt", {}),
]


async def test_renaming_ones_link_into_another_home_tells_nothing_of_its_target(
    world: World,
) -> None:
    os.utime(world.bob_home / "secret.txt", (1_000_000_000, 1_000_000_000))
    (world.ana_home / "peek").symlink_to("../bob/secret.txt")
    renamed = await world.request(
        "PATCH", "/api/contents/home/ana/peek", json={"path": "home/ana/peek2"}
    )
    assert renamed.status_code == 200, renamed.text
    model = renamed.json()
    assert model["size"] == len("../bob/secret.txt")  # the link's own text, not Bob's file
    assert not model["last_modified"].startswith("2001-")  # nor his file's time
    assert (world.ana_home / "peek2").is_symlink()
    own = await world.request("PATCH", "/api/contents/home/ana/a.txt", json={"path": "home/ana/b"})
    assert own.json()["size"] == len("ANA")
    (world.ana_home / "mine").symlink_to("b")
    through = await world.request(
        "PATCH", "/api/contents/home/ana/mine", json={"path": "home/ana/mine2"}
    )
    assert through.json()["size"] == len("ANA")  # a link she may read through shows its target


@pytest.mark.parametrize(("method", "url", "checked", "kwargs"), WRITES)
async def test_a_link_swapped_after_the_check_writes_nothing_in_another_home(
    world: World, method: str, url: str, checked: str, kwargs: dict[str, Any]
) -> None:
    through_file = checked == "y.txt"
    link = world.ana_home / ("y.txt" if through_file else "d")
    point(link, "real.txt" if through_file else "realdir")
    (world.ana_home / "realdir" / "secret.txt").write_text("ANA")  # Ana's look-alike
    before = world.bob_files()
    target = "../bob/secret.txt" if through_file else "../bob"
    world.swaps.after_check(f"home/ana/{checked}", link, target)
    raced = await world.request(method, f"/api/contents/home/ana/{url}", **kwargs)
    assert raced.status_code == 404, raced.text
    assert raced.json()["message"].startswith("No such file or directory: home/ana/")
    assert world.bob_files() == before
    assert (world.ana_home / "a.txt").read_text() == "ANA"


@pytest.mark.parametrize("target", ["../bob", ".."])
@pytest.mark.parametrize("query", ["", "?limit=10", "?limit=10&order=directory"])
async def test_a_folder_link_swapped_after_the_check_lists_nothing_of_another_home(
    world: World, target: str, query: str
) -> None:
    link = world.ana_home / "d"
    point(link, "realdir")
    url = "/api/contents/home/ana/d" + query
    fair = await world.request("GET", url)
    assert [e["name"] for e in fair.json()["content"]] == ["mine.txt"]
    world.swaps.after_check("home/ana/d", link, target)
    raced = await world.request("GET", url)
    assert raced.status_code == 404, raced.text
    assert "secret" not in raced.text
    assert "bob" not in raced.text


async def test_a_folder_above_ones_reach_is_listed_but_not_copied(world: World) -> None:
    client = world.client
    (world.root / "projects" / "p").mkdir(parents=True)
    shared = await client.put(
        "/api/users/shares", json={"path": "projects/p", "user": "ana", "access": "write"}
    )
    assert shared.status_code == 200, shared.text
    listed = await world.request("GET", "/api/contents/home")
    assert [e["name"] for e in listed.json()["content"]] == ["ana"]
    copied = await world.request("POST", "/api/contents/projects/p", json={"copy_from": "home"})
    assert copied.status_code == 404, copied.text
    assert list((world.root / "projects" / "p").iterdir()) == []


async def test_a_read_only_share_still_reads_through_the_guard(world: World) -> None:
    client = world.client
    data = world.ana_home / "data"
    data.mkdir()
    (data / "d.txt").write_text("shared")
    (data / "ln").symlink_to("d.txt")
    shared = await client.put(
        "/api/users/shares", headers=world.ana, json={"path": "home/ana/data", "user": "bob"}
    )
    assert shared.status_code == 200, shared.text
    bob = world.bob
    got = await client.get("/api/contents/home/ana/data/ln", headers=bob)
    assert got.status_code == 200, got.text
    assert got.json()["content"] == "shared"
    listing = await client.get("/api/contents/home/ana/data", headers=bob)
    assert sorted(e["name"] for e in listing.json()["content"]) == ["d.txt", "ln"]
    checkpoints = await client.get("/api/contents/home/ana/data/d.txt/checkpoints", headers=bob)
    assert checkpoints.status_code == 200, checkpoints.text
    assert checkpoints.json() == []
    refused = await client.put(
        "/api/contents/home/ana/data/d.txt", headers=bob, json=_file("bob")["json"]
    )
    assert refused.status_code == 403
    assert (data / "d.txt").read_text() == "shared"


def _tus(length: int, **metadata: str) -> dict[str, str]:
    encoded = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in metadata.items())
    return {"Tus-Resumable": "1.0.0", "Upload-Length": str(length), "Upload-Metadata": encoded}


@pytest.mark.parametrize("step", ["create", "finish"])
async def test_an_upload_into_a_folder_swapped_after_the_check_lands_nowhere(
    world: World, step: str
) -> None:
    link = world.ana_home / "d"
    point(link, "realdir")
    before = world.bob_files()
    if step == "create":
        world.swaps.after_check("home/ana/d/up.txt", link, "../bob")
    created = await world.request(
        "POST", "/api/uploads", headers=_tus(4, filename="up.txt", path="home/ana/d")
    )
    if step == "create":
        assert created.status_code == 404, created.text
    else:
        assert created.status_code == 201, created.text
        world.swaps.after_check("home/ana/d/up.txt", link, "../bob")
        octets = {
            "Tus-Resumable": "1.0.0",
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": "0",
        }
        finished = await world.request(
            "PATCH", created.headers["location"], headers=octets, content=b"PWND"
        )
        assert finished.status_code == 404, finished.text
    assert world.bob_files() == before
    assert not (world.ana_home / "realdir" / "up.txt").exists()


async def test_a_nul_byte_in_a_path_is_a_400_in_multi_user_mode(world: World) -> None:
    for url in ("/api/contents/home/ana/a%00b", "/files/home/ana/a%00b"):
        response = await world.client.get(url, headers=world.ana)
        assert response.status_code == 400, (url, response.text)
        assert "NUL" in response.json()["message"]


async def test_resolve_path_does_not_look_up_another_users_names(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    contents = world.client.app.state.services.get(CONTENTS)  # type: ignore[attr-defined]
    looked_up: list[str] = []
    original = contents.resolve_path

    async def resolve_path(path: str) -> str | None:
        looked_up.append(path)
        found: str | None = await original(path)
        return found

    monkeypatch.setattr(contents, "resolve_path", resolve_path)
    for path in ("home/bob/secret.txt", "home/bob/missing.txt", "home"):
        response = await world.request("GET", f"/api/resolvePath?path={path}")
        assert response.json()["resolved"] == [], path
    assert looked_up == []  # the same work whether Bob's file exists or not
    mine = await world.request("GET", "/api/resolvePath?path=home/ana/a.txt")
    assert mine.json()["resolved"] == [{"scope": "server", "path": "home/ana/a.txt"}]
    assert looked_up == ["home/ana/a.txt"]
