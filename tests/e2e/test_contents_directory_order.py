"""Directory-order pages on the real server: a client following the ``Link`` headers sees
every entry once, in the order the filesystem returns them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest

from junction.testing import TEST_TOKEN, ServerProcess

pytestmark = pytest.mark.e2e


def test_following_links_in_directory_order_lists_each_entry_once(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "many").mkdir(parents=True)
    for index in range(300):
        os.mknod(root / "many" / f"entry {index:03d}.txt", 0o644 | stat.S_IFREG)
    (root / "many" / ".hidden").touch()
    expected = [name for name in os.listdir(root / "many") if not name.startswith(".")]
    args = ["--profile", "contents", "--port", "0", "--root-dir", str(root)]
    with (
        ServerProcess([*args, "--base-url", "/jx/"], log_path=tmp_path / "server.log") as server,
        httpx.Client(headers={"Authorization": f"token {TEST_TOKEN}"}, timeout=30) as client,
    ):
        base = server.url + "jx/"  # the banner's URL is the host alone
        url: str | None = base + "api/contents/many?limit=64&order=directory"
        names: list[str] = []
        totals = []
        for _ in range(10):
            assert url is not None
            response = client.get(url)
            assert response.status_code == 200, response.text
            names += [entry["name"] for entry in response.json()["content"]]
            totals.append(response.json()["pagination"]["total"])
            url = response.links.get("next", {}).get("url")
            if url is None:
                break
            assert url.startswith(base + "api/contents/many?")
        assert names == expected
        assert totals[0] is None
        assert totals[-1] == 300

        refused = client.get(base + "api/contents/many?limit=64&order=random")
        assert refused.status_code == 400
        assert refused.json() == {
            "message": "order must be 'name' or 'directory', got 'random'",
            "reason": "Bad Request",
        }
