"""``/api/resolvePath?kernel=``: another user's kernel looks exactly like a missing one.

A real kernel on a real uvicorn server, in multi-user mode.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from junction.testing import TEST_TOKEN, serve_in_thread, user_headers

pytestmark = pytest.mark.anyio


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "root"
    root.mkdir()
    (root / "b.txt").write_text("b")
    with serve_in_thread(
        root_dir=root,
        enable=["contents", "kernelspecs", "kernels", "users"],
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'junction.db'}",
    ) as (url, _):
        yield url


async def test_another_users_kernel_answers_as_an_unknown_one(server: str) -> None:
    headers = {"Authorization": f"token {TEST_TOKEN}"}
    async with httpx.AsyncClient(base_url=server, headers=headers, timeout=60) as admin:
        bob = await user_headers(admin, "bob")
        carol = await user_headers(admin, "carol")
        started = await admin.post("/api/kernels", headers=bob, json={})
        assert started.status_code == 201, started.text
        kernel = started.json()["id"]
        try:

            async def resolve(who: dict[str, str], kernel_id: str) -> dict[str, Any]:
                response = await admin.get(
                    "/api/resolvePath",
                    headers=who,
                    params={"path": "no-such-file.txt", "kernel": kernel_id},
                )
                assert response.status_code == 200, response.text
                body: dict[str, Any] = response.json()
                return body

            unknown = "00000000-0000-0000-0000-000000000000"
            as_unknown = await resolve(carol, unknown)
            assert as_unknown["unresolved"][0]["scope"] == "kernel"
            as_others = await resolve(carol, kernel)
            assert as_others == {
                **as_unknown,
                "unresolved": [
                    {"scope": "kernel", "reason": f"Kernel {kernel} could not be found"}
                ],
            }
            # The owner and an administrator see the kernel.
            assert "unresolved" not in await resolve(bob, kernel)
            assert "unresolved" not in await resolve({}, kernel)
        finally:
            assert (await admin.delete(f"/api/kernels/{kernel}")).status_code == 204
