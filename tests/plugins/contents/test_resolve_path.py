"""``GET /api/resolvePath``: which file a path from a traceback or a link names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from junction.testing import app_client

pytestmark = pytest.mark.anyio


async def _resolve(client: Any, **params: str) -> dict[str, Any]:
    response = await client.get("/api/resolvePath", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _server(path: str) -> dict[str, Any]:
    return {"resolved": [{"scope": "server", "path": path}]}


@pytest.fixture
def tree(root: Path) -> Path:
    (root / "pkg").mkdir()
    (root / "pkg" / "mod.py").write_text("x = 1\n")
    (root / ".secret.py").write_text("hidden")
    return root


async def test_relative_and_api_paths_resolve_when_they_exist(client: Any, tree: Path) -> None:
    assert await _resolve(client, path="pkg/mod.py") == _server("pkg/mod.py")
    assert await _resolve(client, path="./pkg/../pkg/mod.py") == _server("pkg/mod.py")
    assert await _resolve(client, path="pkg") == _server("pkg")
    assert await _resolve(client, path="pkg/missing.py") == {"resolved": []}


async def test_absolute_paths_under_the_root_resolve_to_api_paths(client: Any, tree: Path) -> None:
    absolute = str(tree / "pkg" / "mod.py")
    assert await _resolve(client, path=absolute) == _server("pkg/mod.py")
    # The root reached through a link names the same file.
    link = tree.parent / "root-link"
    os.symlink(tree, link)
    assert await _resolve(client, path=str(link / "pkg" / "mod.py")) == _server("pkg/mod.py")
    real = os.path.realpath(tree / "pkg" / "mod.py")
    assert await _resolve(client, path=real) == _server("pkg/mod.py")


async def test_home_relative_paths_are_expanded(
    client: Any, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tree))
    assert await _resolve(client, path="~/pkg/mod.py") == _server("pkg/mod.py")
    monkeypatch.setenv("HOME", str(tree.parent))
    assert await _resolve(client, path="~/root/pkg/mod.py") == _server("pkg/mod.py")
    assert await _resolve(client, path="~/elsewhere.py") == {"resolved": []}


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "../outside.txt",
        "pkg/../../outside.txt",
        ".secret.py",
        "",
        "a\0b",
        "/a\0b",
        "esc/x",
    ],
)
async def test_paths_outside_hidden_or_malformed_do_not_resolve(
    client: Any, tree: Path, path: str
) -> None:
    (tree.parent / "outside.txt").write_text("outside")
    (tree.parent / "out").mkdir(exist_ok=True)
    (tree.parent / "out" / "x").write_text("outside")
    if not (tree / "esc").exists():
        os.symlink(tree.parent / "out", tree / "esc")  # a link leading out of the root
    expected = _server("") if path == "" else {"resolved": []}
    assert await _resolve(client, path=path) == expected


async def test_a_missing_path_argument_is_400(client: Any) -> None:
    response = await client.get("/api/resolvePath")
    assert response.status_code == 400
    assert response.json() == {"message": "Missing argument path", "reason": "Bad Request"}


async def test_an_unknown_kernel_is_reported_unresolved(client: Any, tree: Path) -> None:
    body = await _resolve(client, path="pkg/mod.py", kernel="no-such-kernel")
    assert body == {
        **_server("pkg/mod.py"),
        "unresolved": [{"scope": "kernel", "reason": "Kernel no-such-kernel could not be found"}],
    }


async def test_a_running_kernel_is_not_reported_unresolved(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text("x = 1\n")
    settings = {"contents": {"delete_to_trash": False}}
    async with app_client(
        enable=["contents", "kernelspecs", "kernels"], root_dir=tmp_path, plugin_settings=settings
    ) as client:
        started = await client.post("/api/kernels", json={})
        assert started.status_code == 201, started.text
        kernel_id = started.json()["id"]
        try:
            body = await _resolve(client, path="mod.py", kernel=kernel_id)
            assert body == _server("mod.py")
            missing = await _resolve(client, path="gone.py", kernel=kernel_id)
            assert missing == {"resolved": []}
        finally:
            assert (await client.delete(f"/api/kernels/{kernel_id}")).status_code == 204


async def test_resolve_path_needs_a_credential(root: Path) -> None:
    from .conftest import contents_client

    async with contents_client(root, authenticated=False) as client:
        response = await client.get("/api/resolvePath", params={"path": "a"})
    assert response.status_code == 403
