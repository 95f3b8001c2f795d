"""Listings that judge links in multi-user mode run on a limiter of their own; file reads
never wait for it, so a burst of one user's listings cannot hold up other users' reads."""

from __future__ import annotations

from pathlib import Path

import anyio
import anyio.abc
import pytest

from junction.plugins.contents.filesystem import LocalContents
from junction.plugins.contents.settings import ContentsSettings

pytestmark = pytest.mark.anyio


def allow_all(_api_path: str) -> bool:
    """A link check that lets every link be listed."""
    return True


async def test_a_file_read_does_not_wait_for_the_listings_limiter(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("x" * (256 * 1024))  # past the inline read
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "link").symlink_to("../big.txt")
    contents = LocalContents(tmp_path, ContentsSettings())
    await contents.get("folder", links=allow_all)  # makes the judging limiter
    assert contents._judging is not None
    busy = anyio.CapacityLimiter(1)
    contents._judging = busy
    release = anyio.Event()

    async def hold(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        async with busy:  # every listing token is taken, as by a burst of listings
            task_status.started()
            await release.wait()

    async with anyio.create_task_group() as group:
        await group.start(hold)
        with anyio.fail_after(10):
            model = await contents.get("big.txt", links=allow_all)
        assert len(model["content"]) == 256 * 1024
        with anyio.move_on_after(0.5) as waited:
            await contents.get("folder", links=allow_all)
        assert waited.cancelled_caught  # a listing does wait for a token
        release.set()
    with anyio.fail_after(10):
        listing = await contents.get("folder", links=allow_all)
    assert [entry["name"] for entry in listing["content"]] == ["link"]
