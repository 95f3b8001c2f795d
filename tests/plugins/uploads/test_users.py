"""In multi-user mode an upload belongs to whoever created it: another user gets 404 for
it, and uploads go only where their owner may write."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from junction.testing import app_client, user_headers

pytestmark = pytest.mark.anyio

TUS = {"Tus-Resumable": "1.0.0"}


async def _token(admin: httpx.AsyncClient, name: str) -> dict[str, str]:
    return {**await user_headers(admin, name), **TUS}


def _metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


async def test_uploads_belong_to_their_owner(tmp_path: Path) -> None:
    async with app_client(
        root_dir=tmp_path, profile="none", enable=["contents", "users", "uploads"]
    ) as admin:
        ana = await _token(admin, "ana")
        bob = await _token(admin, "bob")
        # Without a path, the file goes into the owner's home.
        headers = {**ana, "Upload-Length": "4", "Upload-Metadata": _metadata(filename="a.txt")}
        created = await admin.post("/api/uploads", headers=headers)
        assert created.status_code == 201, created.text
        location = created.headers["location"]

        octets = {"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
        for method in ("HEAD", "PATCH", "DELETE"):
            other = await admin.request(method, location, headers={**bob, **octets}, content=b"x")
            assert other.status_code == 404, method
        done = await admin.patch(location, headers={**ana, **octets}, content=b"mine")
        assert done.status_code == 204, done.text
        assert (tmp_path / "home" / "ana" / "a.txt").read_bytes() == b"mine"

        # Another user's home is out of reach: it looks missing.
        into_bob = _metadata(filename="x.txt", path="home/bob")
        refused = await admin.post(
            "/api/uploads", headers={**ana, "Upload-Length": "1", "Upload-Metadata": into_bob}
        )
        assert refused.status_code == 404, refused.text
        assert not (tmp_path / "home" / "bob" / "x.txt").exists()


async def test_a_link_into_another_home_reaches_nothing(tmp_path: Path) -> None:
    async with app_client(
        root_dir=tmp_path, profile="none", enable=["contents", "users", "uploads"]
    ) as admin:
        alice = await _token(admin, "alice")
        bob = await _token(admin, "bob")
        for who in (alice, bob):  # each home is made on its owner's first request
            assert (await admin.get("/api/contents", headers=who)).status_code == 200
        (tmp_path / "home" / "bob" / "secret.txt").write_text("bob's")
        (tmp_path / "home" / "alice" / "ln").symlink_to(tmp_path / "home" / "bob")
        (tmp_path / "home" / "alice" / "own").mkdir()
        (tmp_path / "home" / "alice" / "mine").symlink_to(tmp_path / "home" / "alice" / "own")

        read = await admin.get("/api/contents/home/alice/ln/secret.txt", headers=alice)
        assert read.status_code in (403, 404), read.text
        listed = await admin.get("/api/contents/home/alice/ln", headers=alice)
        assert listed.status_code in (403, 404), listed.text
        file = {"type": "file", "format": "text", "content": "pwn"}
        put = await admin.put("/api/contents/home/alice/ln/pwn2.txt", headers=alice, json=file)
        assert put.status_code in (403, 404), put.text
        assert not (tmp_path / "home" / "bob" / "pwn2.txt").exists()

        metadata = _metadata(filename="pwn.txt", path="home/alice/ln")
        upload = await admin.post(
            "/api/uploads", headers={**alice, "Upload-Length": "0", "Upload-Metadata": metadata}
        )
        assert upload.status_code in (403, 404), upload.text
        assert not (tmp_path / "home" / "bob" / "pwn.txt").exists()

        # A link that stays inside one's own home still works.
        put = await admin.put("/api/contents/home/alice/mine/ok.txt", headers=alice, json=file)
        assert put.status_code == 201, put.text
        assert (tmp_path / "home" / "alice" / "own" / "ok.txt").read_text() == "pwn"
        # The link itself is hers: she may rename and delete it (not what it points to).
        renamed = await admin.patch(
            "/api/contents/home/alice/ln", headers=alice, json={"path": "home/alice/ln2"}
        )
        assert renamed.status_code == 200, renamed.text
        deleted = await admin.delete("/api/contents/home/alice/ln2", headers=alice)
        assert deleted.status_code == 204, deleted.text
        assert not (tmp_path / "home" / "alice" / "ln2").is_symlink()
        assert (tmp_path / "home" / "bob" / "secret.txt").read_text() == "bob's"
