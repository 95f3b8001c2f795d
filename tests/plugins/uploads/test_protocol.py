"""The tus protocol of ``/api/uploads`` in process: creation, offsets, completion, every
error the protocol names, destinations checked like contents' saves, quotas, expiry."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from junction.plugins.uploads import UPLOADS
from junction.testing import app_client

pytestmark = pytest.mark.anyio

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {**TUS, "Content-Type": "application/offset+octet-stream"}


def metadata(**values: str | None) -> str:
    """An ``Upload-Metadata`` header: base64 values, or a bare key for None."""
    return ",".join(
        key if value is None else f"{key} {base64.b64encode(value.encode()).decode()}"
        for key, value in values.items()
    )


async def create(client: httpx.AsyncClient, length: int, **values: str | None) -> httpx.Response:
    """``POST /api/uploads``."""
    headers = {**TUS, "Upload-Length": str(length), "Upload-Metadata": metadata(**values)}
    return await client.post("/api/uploads", headers=headers)


async def append(
    client: httpx.AsyncClient, location: str, offset: int, data: bytes, **headers: str
) -> httpx.Response:
    """``PATCH`` ``data`` at ``offset``."""
    sent = {**OCTETS, "Upload-Offset": str(offset), **headers}
    return await client.patch(location, headers=sent, content=data)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """An app with contents and uploads on ``tmp_path / "root"``."""
    (tmp_path / "root" / "in").mkdir(parents=True)
    settings: dict[str, Any] = {"uploads": {"max_size": 1000, "max_uploads_per_user": 3}}
    async with app_client(
        root_dir=tmp_path / "root",
        profile="none",
        enable=["contents", "uploads"],
        plugin_settings=settings,
    ) as client:
        yield client


def partials(tmp_path: Path) -> list[str]:
    """Names in the partial files' directory (the test's Jupyter data dir)."""
    import os

    directory = Path(os.environ["JUPYTER_DATA_DIR"]) / "junction" / "uploads"
    return sorted(path.name for path in directory.iterdir())


async def test_options_advertise_the_protocol(client: httpx.AsyncClient) -> None:
    response = await client.options("/api/uploads")
    assert response.status_code == 204
    assert response.headers["tus-version"] == "1.0.0"
    assert response.headers["tus-resumable"] == "1.0.0"
    assert response.headers["tus-max-size"] == "1000"
    extensions = response.headers["tus-extension"].split(",")
    for extension in ["creation", "creation-with-upload", "termination", "expiration", "checksum"]:
        assert extension in extensions
    assert "sha1" in response.headers["tus-checksum-algorithm"].split(",")


async def test_an_upload_in_two_appends_lands_at_its_destination(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    created = await create(client, 11, filename="a.txt", path="in")
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    assert location.startswith("/api/uploads/")
    assert created.headers["upload-offset"] == "0"
    assert created.headers["upload-expires"].endswith("GMT")

    head = await client.head(location, headers=TUS)
    assert head.status_code == 200
    assert head.headers["upload-offset"] == "0"
    assert head.headers["upload-length"] == "11"
    assert head.headers["upload-metadata"] == metadata(filename="a.txt", path="in")
    assert head.headers["cache-control"] == "no-store"

    first = await append(client, location, 0, b"hello ")
    assert first.status_code == 204, first.text
    assert first.headers["upload-offset"] == "6"
    assert not (tmp_path / "root" / "in" / "a.txt").exists()
    assert (await client.head(location, headers=TUS)).headers["upload-offset"] == "6"

    last = await append(client, location, 6, b"world")
    assert last.status_code == 204, last.text
    assert last.headers["upload-offset"] == "11"
    assert (tmp_path / "root" / "in" / "a.txt").read_bytes() == b"hello world"
    assert [name for name in partials(tmp_path) if name.endswith(".part")] == []
    # The record stays until it expires: a client that lost the answer sees it complete.
    head = await client.head(location, headers=TUS)
    assert head.headers["upload-offset"] == head.headers["upload-length"] == "11"


async def test_creation_with_upload_and_an_empty_file(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    headers = {**OCTETS, "Upload-Length": "3", "Upload-Metadata": metadata(filename="b.bin")}
    created = await client.post("/api/uploads", headers=headers, content=b"abc")
    assert created.status_code == 201, created.text
    assert created.headers["upload-offset"] == "3"
    assert (tmp_path / "root" / "b.bin").read_bytes() == b"abc"

    empty = await create(client, 0, path="in/empty.txt")
    assert empty.status_code == 201, empty.text
    assert (tmp_path / "root" / "in" / "empty.txt").read_bytes() == b""


async def test_protocol_errors(client: httpx.AsyncClient) -> None:
    location = (await create(client, 10, filename="c.txt")).headers["location"]

    missing = await client.head(location)
    assert missing.status_code == 412
    assert missing.headers["tus-version"] == "1.0.0"
    old = await client.post("/api/uploads", headers={"Tus-Resumable": "0.2.2"})
    assert old.status_code == 412
    assert old.json()["reason"] == "Precondition Failed"

    wrong_type = await client.patch(
        location, headers={**TUS, "Upload-Offset": "0", "Content-Type": "text/plain"}, content=b"x"
    )
    assert wrong_type.status_code == 415
    assert set(wrong_type.json()) == {"message", "reason"}

    assert (await append(client, location, 0, b"12345")).status_code == 204
    conflict = await append(client, location, 3, b"45")
    assert conflict.status_code == 409
    assert conflict.json()["reason"] == "Offset Mismatch"

    past = await append(client, location, 5, b"6789012")
    assert past.status_code == 413
    assert (await client.head(location, headers=TUS)).headers["upload-offset"] == "5"

    too_large = await create(client, 1001, filename="d.txt")
    assert too_large.status_code == 413
    assert "uploads.max_size" in too_large.json()["message"]

    bad_offset = await append(client, location, 0, b"", **{"Upload-Offset": "-1"})
    assert bad_offset.status_code == 400
    no_length = await client.post(
        "/api/uploads", headers={**TUS, "Upload-Metadata": metadata(filename="e")}
    )
    assert no_length.status_code == 400
    no_name = await create(client, 1, other="x")
    assert no_name.status_code == 400

    for method in ("HEAD", "PATCH", "DELETE"):
        headers = OCTETS | {"Upload-Offset": "0"}
        unknown = await client.request(method, "/api/uploads/0123456789abcdef", headers=headers)
        assert unknown.status_code == 404, method
        assert unknown.headers["tus-resumable"] == "1.0.0"
    assert (
        await client.request("PATCH", "/api/uploads/nope", headers=OCTETS | {"Upload-Offset": "0"})
    ).json()["reason"] == "Not Found"


async def test_huge_numbers_are_refused_before_parsing(client: httpx.AsyncClient) -> None:
    huge = "9" * 5000  # more digits than int() accepts
    created = await client.post("/api/uploads", headers={**TUS, "Upload-Length": huge})
    assert created.status_code == 400, created.text
    assert "Upload-Length" in created.json()["message"]
    location = (await create(client, 10, filename="n.txt")).headers["location"]
    offset = await append(client, location, 0, b"", **{"Upload-Offset": huge})
    assert offset.status_code == 400, offset.text
    twenty = await append(client, location, 0, b"", **{"Upload-Offset": "1" + "0" * 19})
    assert twenty.status_code == 400, twenty.text
    assert (await append(client, location, 0, b"0123456789")).status_code == 204


async def test_placed_files_are_not_executable(client: httpx.AsyncClient, tmp_path: Path) -> None:
    import os

    location = (await create(client, 3, filename="x.sh", path="in")).headers["location"]
    assert [oct(os.stat(p).st_mode & 0o777) for p in partial_files()] == ["0o600"]
    assert (await append(client, location, 0, b"abc")).status_code == 204
    placed = os.stat(tmp_path / "root" / "in" / "x.sh").st_mode & 0o777
    saved = await client.put(
        "/api/contents/in/y.txt", json={"type": "file", "format": "text", "content": "a"}
    )
    assert saved.status_code == 201, saved.text
    assert placed == os.stat(tmp_path / "root" / "in" / "y.txt").st_mode & 0o777
    assert placed & 0o111 == 0


def partial_files() -> list[Path]:
    """The partial files now waiting in the Jupyter data dir."""
    import os

    directory = Path(os.environ["JUPYTER_DATA_DIR"]) / "junction" / "uploads"
    return sorted(directory.glob("*.part"))


async def test_termination_deletes_the_upload(client: httpx.AsyncClient, tmp_path: Path) -> None:
    location = (await create(client, 10, filename="f.txt")).headers["location"]
    assert (await append(client, location, 0, b"12")).status_code == 204
    assert len(partials(tmp_path)) == 1
    deleted = await client.delete(location, headers=TUS)
    assert deleted.status_code == 204
    assert deleted.headers["tus-resumable"] == "1.0.0"
    assert (await client.head(location, headers=TUS)).status_code == 404
    assert (await append(client, location, 2, b"34")).status_code == 404
    assert partials(tmp_path) == []


BAD_DESTINATIONS: list[tuple[dict[str, str | None], int]] = [
    ({"path": "../outside.txt"}, 400),
    ({"path": "in/../../outside.txt"}, 400),
    ({"path": "%2e%2e/outside.txt"}, 400),
    ({"filename": "outside.txt", "path": "/../"}, 400),
    ({"filename": "a/b"}, 400),
    ({"path": "in\\x.txt"}, 400),
    ({"path": ".hidden"}, 400),
    ({"filename": "x", "path": ".git"}, 400),
    ({"path": "missing/x.txt"}, 404),
    ({"path": "/"}, 400),
]


async def test_destinations_stay_inside_the_root(client: httpx.AsyncClient, tmp_path: Path) -> None:
    for values, status in BAD_DESTINATIONS:
        response = await create(client, 1, **values)
        assert response.status_code == status, (values, response.text)
        assert set(response.json()) == {"message", "reason"}
    assert not (tmp_path / "outside.txt").exists()
    assert partials(tmp_path) == []


async def test_a_link_leading_outside_the_root_is_refused(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path / "elsewhere")
    response = await create(client, 1, path="link/x.txt")
    assert response.status_code == 403, response.text
    assert list((tmp_path / "elsewhere").iterdir()) == []


async def test_an_existing_destination_needs_overwrite(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    target = tmp_path / "root" / "in" / "old.txt"
    target.write_bytes(b"old")
    target.chmod(0o640)
    refused = await create(client, 3, filename="old.txt", path="in")
    assert refused.status_code == 409
    assert refused.json()["reason"] == "File Exists"
    directory = await create(client, 3, path="in", overwrite=None)
    assert directory.status_code == 409

    location = (await create(client, 3, filename="old.txt", path="in", overwrite=None)).headers[
        "location"
    ]
    assert (await append(client, location, 0, b"new")).status_code == 204
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o640


async def test_a_destination_that_appears_meanwhile_is_kept(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    location = (await create(client, 4, path="in/race.txt")).headers["location"]
    assert (await append(client, location, 0, b"ab")).status_code == 204
    (tmp_path / "root" / "in" / "race.txt").write_bytes(b"theirs")
    late = await append(client, location, 2, b"cd")
    assert late.status_code == 409
    assert (tmp_path / "root" / "in" / "race.txt").read_bytes() == b"theirs"
    # The last append was dropped, so the upload never looks complete.
    assert (await client.head(location, headers=TUS)).headers["upload-offset"] == "2"


async def test_checksums(client: httpx.AsyncClient, tmp_path: Path) -> None:
    location = (await create(client, 6, filename="sum.txt")).headers["location"]

    def sha1(data: bytes) -> str:
        return (
            "sha1 " + base64.b64encode(hashlib.sha1(data, usedforsecurity=False).digest()).decode()
        )

    good = await append(client, location, 0, b"abc", **{"Upload-Checksum": sha1(b"abc")})
    assert good.status_code == 204
    bad = await append(client, location, 3, b"def", **{"Upload-Checksum": sha1(b"xyz")})
    assert bad.status_code == 460
    assert bad.json()["reason"] == "Checksum Mismatch"
    assert (await client.head(location, headers=TUS)).headers["upload-offset"] == "3"
    unknown = await append(client, location, 3, b"def", **{"Upload-Checksum": "crc32 AAAA"})
    assert unknown.status_code == 400
    sha256 = "sha256 " + base64.b64encode(hashlib.sha256(b"def").digest()).decode()
    assert (
        await append(client, location, 3, b"def", **{"Upload-Checksum": sha256})
    ).status_code == 204
    assert (tmp_path / "root" / "sum.txt").read_bytes() == b"abcdef"


async def test_per_user_limits(tmp_path: Path) -> None:
    settings: dict[str, Any] = {"uploads": {"max_uploads_per_user": 2, "max_bytes_per_user": 100}}
    async with app_client(
        root_dir=tmp_path, profile="none", enable=["contents", "uploads"], plugin_settings=settings
    ) as client:
        too_many_bytes = await create(client, 101, filename="big")
        assert too_many_bytes.status_code == 403
        assert "uploads.max_bytes_per_user" in too_many_bytes.json()["message"]
        first = (await create(client, 60, filename="1")).headers["location"]
        assert (await create(client, 50, filename="2")).status_code == 403  # 110 bytes in flight
        assert (await create(client, 40, filename="2")).status_code == 201
        third = await create(client, 1, filename="3")
        assert third.status_code == 403
        assert third.json()["reason"] == "Resource Limit"
        assert "uploads.max_uploads_per_user" in third.json()["message"]
        assert (await client.delete(first, headers=TUS)).status_code == 204
        assert (await create(client, 1, filename="3")).status_code == 201


async def test_expired_uploads_and_their_partial_files_are_deleted(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    location = (await create(client, 10, filename="old.bin")).headers["location"]
    assert (await append(client, location, 0, b"12345")).status_code == 204
    assert len(partials(tmp_path)) == 1
    service = client.app.state.services.get(UPLOADS)  # type: ignore[attr-defined]  # set by app_client
    assert await service.expire(time.time()) == 0  # not yet
    assert await service.expire(time.time() + 86400 + 1) == 1
    assert partials(tmp_path) == []
    assert (await client.head(location, headers=TUS)).status_code == 404


async def test_the_periodic_sweep_expires_abandoned_uploads(tmp_path: Path) -> None:
    settings: dict[str, Any] = {"uploads": {"expire_after": 2.0, "expire_every": 0.05}}
    async with app_client(
        root_dir=tmp_path, profile="none", enable=["contents", "uploads"], plugin_settings=settings
    ) as client:
        created = await create(client, 10, filename="abandoned.bin")
        expires = created.headers["upload-expires"]
        assert expires.endswith("GMT")
        assert len(partials(tmp_path)) == 1
        deadline = time.monotonic() + 30
        while partials(tmp_path):
            assert time.monotonic() < deadline, "the sweep did not delete the partial file"
            await anyio_sleep(0.05)
        assert (await client.head(created.headers["location"], headers=TUS)).status_code == 404


async def anyio_sleep(seconds: float) -> None:
    """Wait between two checks of a condition (never as a test's only wait)."""
    import anyio

    await anyio.sleep(seconds)


async def test_an_append_from_another_process_is_refused_while_one_runs(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    import fcntl
    import os

    location = (await create(client, 4, filename="locked.bin")).headers["location"]
    (partial,) = partials(tmp_path)
    directory = Path(os.environ["JUPYTER_DATA_DIR"]) / "junction" / "uploads"
    fd = os.open(directory / partial, os.O_WRONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as another server process sharing the directory
        locked = await append(client, location, 0, b"ab")
        assert locked.status_code == 423
        assert locked.json()["reason"] == "Locked"
    finally:
        os.close(fd)
    assert (await append(client, location, 0, b"ab")).status_code == 204


async def test_bytes_lost_from_a_partial_file_are_asked_again(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    import os

    location = (await create(client, 6, filename="lost.bin")).headers["location"]
    assert (await append(client, location, 0, b"abcd")).status_code == 204
    (partial,) = partials(tmp_path)
    os.truncate(Path(os.environ["JUPYTER_DATA_DIR"]) / "junction" / "uploads" / partial, 1)
    retry = await append(client, location, 4, b"ef")
    assert retry.status_code == 409
    assert (await client.head(location, headers=TUS)).headers["upload-offset"] == "1"
    assert (await append(client, location, 1, b"bcdef")).status_code == 204
    assert (tmp_path / "root" / "lost.bin").read_bytes() == b"abcdef"


async def test_an_empty_upload_whose_destination_exists_leaves_nothing(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    (tmp_path / "root" / "in" / "here.txt").write_bytes(b"kept")
    assert (await create(client, 0, path="in/here.txt")).status_code == 409
    assert partials(tmp_path) == []
    assert (tmp_path / "root" / "in" / "here.txt").read_bytes() == b"kept"


async def test_bytes_a_killed_append_left_unrecorded_are_dropped(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    import os

    location = (await create(client, 6, filename="killed.bin")).headers["location"]
    assert (await append(client, location, 0, b"abc")).status_code == 204
    (partial,) = partials(tmp_path)
    # A server killed in the middle of an append wrote bytes it never recorded.
    with (Path(os.environ["JUPYTER_DATA_DIR"]) / "junction" / "uploads" / partial).open("ab") as f:
        f.write(b"XYZXYZ")
    assert (await client.head(location, headers=TUS)).headers["upload-offset"] == "3"
    assert (await append(client, location, 3, b"def")).status_code == 204
    assert (tmp_path / "root" / "killed.bin").read_bytes() == b"abcdef"
