"""The /api/contents routes: models, status codes, headers and error bodies."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

from junction.plugins.contents.settings import ContentsSettings

from .conftest import contents_client

pytestmark = pytest.mark.anyio

MODEL_KEYS = {
    "name",
    "path",
    "type",
    "writable",
    "created",
    "last_modified",
    "size",
    "mimetype",
    "format",
    "content",
    "hash",
    "hash_algorithm",
}
ISO_Z = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$"


def notebook(*sources: str) -> dict[str, Any]:
    """A valid nbformat 4.5 notebook with one code cell per source."""
    return {
        "cells": [
            {
                "cell_type": "code",
                "id": f"cell-{index}",
                "source": source,
                "metadata": {},
                "outputs": [],
                "execution_count": None,
            }
            for index, source in enumerate(sources)
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def error(message: str, reason: str) -> dict[str, str]:
    """The Jupyter error body."""
    return {"message": message, "reason": reason}


# -- GET ---------------------------------------------------------------------------------


async def test_get_root_lists_visible_entries_sorted_with_every_key(
    client: Any, root: Path
) -> None:
    (root / "b.txt").write_text("bee")
    (root / "a.ipynb").write_text(json.dumps(notebook("1")))
    (root / "sub").mkdir()
    (root / ".hidden").write_text("x")
    (root / "__pycache__").mkdir()
    (root / "mod.pyc").write_bytes(b"\0")
    response = await client.get("/api/contents")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    model = response.json()
    assert set(model) == MODEL_KEYS
    assert (model["name"], model["path"], model["type"]) == ("", "", "directory")
    assert (model["format"], model["size"], model["mimetype"]) == ("json", None, None)
    assert [entry["name"] for entry in model["content"]] == ["a.ipynb", "b.txt", "sub"]
    by_name = {entry["name"]: entry for entry in model["content"]}
    assert by_name["a.ipynb"]["type"] == "notebook"
    assert by_name["a.ipynb"]["mimetype"] is None
    assert by_name["b.txt"] | {"created": "", "last_modified": ""} == {
        "name": "b.txt",
        "path": "b.txt",
        "type": "file",
        "writable": True,
        "created": "",
        "last_modified": "",
        "size": 3,
        "mimetype": "text/plain",
        "format": None,
        "content": None,
        "hash": None,
        "hash_algorithm": None,
    }
    assert by_name["sub"]["size"] is None
    for entry in model["content"]:
        assert set(entry) == MODEL_KEYS
        assert entry["created"].endswith("Z")


async def test_get_file_has_text_content_and_an_http_date_last_modified(
    client: Any, root: Path
) -> None:
    path = root / "dir" / "notes.md"
    path.parent.mkdir()
    path.write_text("# Title\n")
    response = await client.get("/api/contents/dir/notes.md")
    assert response.status_code == 200
    model = response.json()
    assert model["content"] == "# Title\n"
    assert (model["format"], model["type"], model["path"]) == ("text", "file", "dir/notes.md")
    assert model["mimetype"] == "text/markdown"
    assert model["hash"] is None
    import re

    assert re.match(ISO_Z, model["last_modified"])
    header = parsedate_to_datetime(response.headers["last-modified"])
    assert abs(header.timestamp() - path.stat().st_mtime) < 1
    assert "location" not in response.headers


async def test_get_binary_file_falls_back_to_base64_and_text_format_is_refused(
    client: Any, root: Path
) -> None:
    data = bytes(range(256))
    (root / "blob.bin").write_bytes(data)
    model = (await client.get("/api/contents/blob.bin")).json()
    assert model["format"] == "base64"
    assert base64.b64decode(model["content"]) == data
    assert model["mimetype"] == "application/octet-stream"
    response = await client.get("/api/contents/blob.bin", params={"format": "text"})
    assert response.status_code == 400
    assert response.json() == error("'blob.bin' is not UTF-8 encoded", "bad format")


async def test_get_text_file_as_base64_when_asked(client: Any, root: Path) -> None:
    (root / "a.txt").write_text("hello")
    model = (await client.get("/api/contents/a.txt", params={"format": "base64"})).json()
    assert (model["format"], base64.b64decode(model["content"])) == ("base64", b"hello")


async def test_get_with_hash_gives_the_sha256_of_the_file(client: Any, root: Path) -> None:
    (root / "a.txt").write_bytes(b"hash me")
    for content in ("1", "0"):
        model = (
            await client.get("/api/contents/a.txt", params={"hash": "1", "content": content})
        ).json()
        assert model["hash"] == hashlib.sha256(b"hash me").hexdigest()
        assert model["hash_algorithm"] == "sha256"
    notebook_path = root / "n.ipynb"
    notebook_path.write_text(json.dumps(notebook("x")))
    model = (await client.get("/api/contents/n.ipynb", params={"hash": "1"})).json()
    assert model["hash"] == hashlib.sha256(notebook_path.read_bytes()).hexdigest()


async def test_get_without_content_leaves_content_and_format_null(client: Any, root: Path) -> None:
    (root / "a.txt").write_text("hello")
    (root / "d").mkdir()
    for path in ("a.txt", "d", ""):
        model = (await client.get(f"/api/contents/{path}", params={"content": "0"})).json()
        assert (model["content"], model["format"]) == (None, None)
    assert (await client.get("/api/contents/a.txt?content=0")).json()["size"] == 5


@pytest.mark.parametrize(
    ("query", "body"),
    [
        ("format=html", error("Format 'html' is invalid", "bad format")),
        ("content=2", error("Content '2' is invalid", "Bad Request")),
        (
            "hash=yes",
            error("Hash argument 'yes' is invalid. It must be '0' or '1'.", "Bad Request"),
        ),
        (
            "offset=-1",
            error(
                "offset must be an integer from 0 to 9223372036854775807, got '-1'", "Bad Request"
            ),
        ),
        (
            "length=x",
            error(
                "length must be an integer from 0 to 9223372036854775807, got 'x'", "Bad Request"
            ),
        ),
    ],
)
async def test_get_refuses_bad_query_values(
    client: Any, root: Path, query: str, body: dict[str, str]
) -> None:
    (root / "a.txt").write_text("hello")
    response = await client.get(f"/api/contents/a.txt?{query}")
    assert response.status_code == 400
    assert response.json() == body


async def test_get_unknown_type_reads_as_a_file_and_unknown_params_are_ignored(
    client: Any, root: Path
) -> None:
    (root / "a.ipynb").write_text(json.dumps(notebook("x")))
    response = await client.get("/api/contents/a.ipynb?type=weird&1795301084793")
    assert response.status_code == 200
    model = response.json()
    assert (model["type"], model["format"]) == ("file", "text")
    assert json.loads(model["content"])["nbformat"] == 4


async def test_get_with_the_wrong_type_is_a_bad_type(client: Any, root: Path) -> None:
    (root / "d").mkdir()
    (root / "f.txt").write_text("x")
    response = await client.get("/api/contents/d?type=file")
    assert response.status_code == 400
    assert response.json() == error("d is a directory, not a file", "bad type")
    response = await client.get("/api/contents/f.txt?type=directory")
    assert response.status_code == 400
    assert response.json() == error("f.txt is not a directory", "bad type")


async def test_get_missing_is_404_with_the_jupyter_message(client: Any) -> None:
    response = await client.get("/api/contents/nope/none.txt")
    assert response.status_code == 404
    assert response.json() == error("file or directory 'nope/none.txt' does not exist", "Not Found")


async def test_get_whole_file_above_max_read_is_refused_but_ranges_work(
    root: Path,
) -> None:
    (root / "big.txt").write_bytes(b"a" * (2 * 1024 * 1024 + 1))
    async with contents_client(root, max_read_mb=1) as client:
        response = await client.get("/api/contents/big.txt")
        assert response.status_code == 400
        assert response.json()["message"] == (
            "'big.txt' is 2.0 MiB, above the 1 MiB limit for whole-file reads; "
            "read it in ranges (offset, length) or from /files"
        )
        ranged = await client.get("/api/contents/big.txt?offset=5&length=10")
        assert ranged.status_code == 200
        assert ranged.json()["content"] == "a" * 10
        too_long = await client.get("/api/contents/big.txt?offset=0&length=2000000")
        assert too_long.status_code == 400


# -- POST --------------------------------------------------------------------------------


async def test_post_creates_untitled_items_with_jupyter_names(client: Any, root: Path) -> None:
    (root / "d").mkdir()
    names = []
    for body in (
        {"type": "file", "ext": ".txt"},
        {"type": "file", "ext": ".txt"},
        {"type": "notebook"},
        {"type": "notebook"},
        {"type": "directory"},
        {"type": "directory"},
        {"ext": ".ipynb"},
        None,
        {"type": "strange"},
    ):
        response = await client.post("/api/contents/d", json=body)
        assert response.status_code == 201, response.text
        model = response.json()
        assert response.headers["location"] == "/api/contents/" + model["path"].replace(" ", "%20")
        assert model["content"] is None
        names.append(model["name"])
    assert names == [
        "untitled.txt",
        "untitled1.txt",
        "Untitled.ipynb",
        "Untitled1.ipynb",
        "Untitled Folder",
        "Untitled Folder 1",
        "Untitled2.ipynb",
        "untitled",
        "untitled1",
    ]
    created = json.loads((root / "d" / "Untitled.ipynb").read_text())
    assert (created["nbformat"], created["cells"]) == (4, [])
    assert (root / "d" / "Untitled Folder").is_dir()
    assert (root / "d" / "untitled.txt").read_bytes() == b""
    mode = (root / "d" / "untitled.txt").stat().st_mode
    assert mode & 0o111 == 0  # a new file is not executable


async def test_post_in_the_root_and_to_missing_or_file_targets(client: Any, root: Path) -> None:
    response = await client.post("/api/contents", json={"type": "notebook"})
    assert response.status_code == 201
    assert response.json()["path"] == "Untitled.ipynb"
    response = await client.post("/api/contents/missing", json={"type": "file"})
    assert response.status_code == 404
    assert response.json() == error("directory 'missing' does not exist", "Not Found")
    response = await client.post("/api/contents/Untitled.ipynb", json={"type": "file"})
    assert response.status_code == 400
    assert response.json() == error("Cannot POST to files, use PUT instead.", "Bad Request")


async def test_post_copy_from_adds_copy_suffixes(client: Any, root: Path) -> None:
    (root / "a.tar.gz").write_bytes(b"tgz")
    (root / "n.ipynb").write_text(json.dumps(notebook("x")))
    (root / "other").mkdir()
    names = []
    for source, target in (
        ("a.tar.gz", ""),
        ("a.tar.gz", ""),
        ("a-Copy1.tar.gz", ""),
        ("n.ipynb", ""),
        ("n.ipynb", "other"),
    ):
        response = await client.post(f"/api/contents/{target}", json={"copy_from": source})
        assert response.status_code == 201, response.text
        names.append(response.json()["path"])
    assert names == [
        "a-Copy1.tar.gz",
        "a-Copy2.tar.gz",
        "a-Copy3.tar.gz",
        "n-Copy1.ipynb",
        "other/n.ipynb",
    ]
    assert (root / "a-Copy2.tar.gz").read_bytes() == b"tgz"
    assert (root / "other" / "n.ipynb").read_bytes() == (root / "n.ipynb").read_bytes()


async def test_post_copy_of_a_folder_copies_everything_and_keeps_links(
    client: Any, root: Path
) -> None:
    folder = root / "proj"
    (folder / "deep").mkdir(parents=True)
    (folder / "deep" / "x.py").write_text("print(1)")
    (folder / ".env").write_text("SECRET=1")
    os.symlink("deep/x.py", folder / "link.py")
    response = await client.post("/api/contents", json={"copy_from": "proj"})
    assert response.status_code == 201
    model = response.json()
    assert (model["path"], model["type"]) == ("proj-Copy1", "directory")
    copy = root / "proj-Copy1"
    assert (copy / "deep" / "x.py").read_text() == "print(1)"
    assert (copy / ".env").read_text() == "SECRET=1"
    assert os.readlink(copy / "link.py") == "deep/x.py"
    assert not [name for name in os.listdir(root) if name.startswith(".~junction")]


async def test_post_copy_refusals(client: Any, root: Path) -> None:
    (root / "proj").mkdir()
    (root / ".secret").write_text("x")
    response = await client.post("/api/contents/proj", json={"copy_from": "proj"})
    assert response.status_code == 400
    assert response.json() == error("cannot copy 'proj' into itself", "Bad Request")
    response = await client.post("/api/contents", json={"copy_from": "missing.txt"})
    assert response.status_code == 404
    assert response.json() == error("file or directory 'missing.txt' does not exist", "Not Found")
    response = await client.post("/api/contents", json={"copy_from": ".secret"})
    assert response.status_code == 400
    assert response.json() == error("cannot copy hidden file or directory '.secret'", "Bad Request")


async def test_post_copy_of_a_folder_above_the_size_limit_is_refused(root: Path) -> None:
    (root / "proj").mkdir()
    (root / "proj" / "data.bin").write_bytes(b"\0" * (1024 * 1024 + 1))
    async with contents_client(root, max_copy_folder_size_mb=1) as client:
        response = await client.post("/api/contents", json={"copy_from": "proj"})
    assert response.status_code == 400
    assert response.json() == error(
        "cannot copy folders larger than 1 MB; 'proj' is larger", "Bad Request"
    )
    assert sorted(os.listdir(root)) == ["proj"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "request body is not valid JSON: "),
        (b"[1, 2]", "request body must be a JSON object"),
        (b'{"type": 5}', "type: Input should be a valid string"),
        (b'{"copy_from": ["a"]}', "copy_from: Input should be a valid string"),
    ],
)
async def test_post_refuses_malformed_bodies(client: Any, body: bytes, message: str) -> None:
    response = await client.post(
        "/api/contents", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["reason"] == "Bad Request"
    assert response.json()["message"].startswith(message)


# -- PATCH -------------------------------------------------------------------------------


async def test_patch_renames_and_moves(client: Any, root: Path) -> None:
    (root / "a.txt").write_text("x")
    (root / "sub").mkdir()
    response = await client.patch("/api/contents/a.txt", json={"path": "sub/b.txt"})
    assert response.status_code == 200
    assert response.headers["location"] == "/api/contents/sub/b.txt"
    model = response.json()
    assert (model["path"], model["name"], model["type"]) == ("sub/b.txt", "b.txt", "file")
    assert not (root / "a.txt").exists()
    assert (root / "sub" / "b.txt").read_text() == "x"
    response = await client.patch("/api/contents/sub", json={"path": "renamed"})
    assert response.status_code == 200
    assert (root / "renamed" / "b.txt").exists()


async def test_patch_onto_an_existing_path_is_409(client: Any, root: Path) -> None:
    (root / "a.txt").write_text("a")
    (root / "b.txt").write_text("b")
    response = await client.patch("/api/contents/a.txt", json={"path": "b.txt"})
    assert response.status_code == 409
    assert response.json() == error("File already exists: 'b.txt'", "Conflict")
    assert (root / "a.txt").read_text() == "a"
    assert (root / "b.txt").read_text() == "b"


@pytest.mark.parametrize(
    ("source", "body", "status", "message"),
    [
        ("missing.txt", {"path": "x.txt"}, 404, "file or directory 'missing.txt' does not exist"),
        ("a.txt", None, 400, "JSON body missing"),
        ("a.txt", {"name": "x"}, 400, "path: Field required"),
        ("a.txt", {"path": 7}, 400, "path: Input should be a valid string"),
        ("a.txt", {"path": ".a.txt"}, 400, "cannot rename to hidden file or directory '.a.txt'"),
        (".h", {"path": "h"}, 400, "cannot rename hidden file or directory '.h'"),
        ("d", {"path": "d/inner"}, 400, "cannot move 'd' into itself ('d/inner')"),
        ("a.txt", {"path": "nowhere/a.txt"}, 404, "directory 'nowhere' does not exist"),
        ("", {"path": "x"}, 400, "cannot rename the root directory"),
    ],
)
async def test_patch_refusals(
    client: Any,
    root: Path,
    source: str,
    body: dict[str, Any] | None,
    status: int,
    message: str,
) -> None:
    (root / "a.txt").write_text("a")
    (root / ".h").write_text("h")
    (root / "d").mkdir()
    response = await client.patch(f"/api/contents/{source}", json=body)
    assert response.status_code == status
    assert response.json()["message"] == message
    assert sorted(os.listdir(root)) == [".h", "a.txt", "d"]


# -- DELETE ------------------------------------------------------------------------------


async def test_delete_file_and_empty_directory(client: Any, root: Path) -> None:
    (root / "a.txt").write_text("a")
    (root / "empty" / ".ipynb_checkpoints").mkdir(parents=True)
    response = await client.delete("/api/contents/a.txt")
    assert (response.status_code, response.content) == (204, b"")
    assert not (root / "a.txt").exists()
    assert (await client.delete("/api/contents/empty")).status_code == 204
    assert not (root / "empty").exists()


async def test_delete_non_empty_directory_needs_always_delete_dir(root: Path) -> None:
    (root / "full").mkdir()
    (root / "full" / "x").write_text("x")
    async with contents_client(root) as client:
        response = await client.delete("/api/contents/full")
        assert response.status_code == 400
        assert response.json() == error(
            "directory 'full' is not empty; turn on always_delete_dir (or delete_to_trash) to "
            "delete it with its contents",
            "Bad Request",
        )
        assert (root / "full" / "x").exists()
    async with contents_client(root, always_delete_dir=True) as client:
        assert (await client.delete("/api/contents/full")).status_code == 204
    assert not (root / "full").exists()


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("missing", 404, "file or directory 'missing' does not exist"),
        (".h", 400, "cannot delete hidden file or directory '.h'"),
        ("", 400, "cannot delete the root directory"),
    ],
)
async def test_delete_refusals(
    client: Any, root: Path, path: str, status: int, message: str
) -> None:
    (root / ".h").write_text("h")
    response = await client.delete(f"/api/contents/{path}")
    assert response.status_code == status
    assert response.json()["message"] == message
    assert (root / ".h").exists()


async def test_delete_a_link_removes_the_link_not_its_target(client: Any, root: Path) -> None:
    (root / "target.txt").write_text("t")
    os.symlink("target.txt", root / "link.txt")
    assert (await client.delete("/api/contents/link.txt")).status_code == 204
    assert not (root / "link.txt").exists()
    assert (root / "target.txt").read_text() == "t"


# -- trust, legacy URLs, base URL, auth ------------------------------------------------------


async def test_trust_answers_201_for_notebooks_and_404_for_missing(client: Any, root: Path) -> None:
    (root / "n.ipynb").write_text(json.dumps(notebook("x")))
    response = await client.post("/api/contents/n.ipynb/trust")
    assert (response.status_code, response.content) == (201, b"")
    assert (await client.post("/api/contents/missing.ipynb/trust")).status_code == 404


async def test_legacy_notebooks_urls_redirect_to_contents(client: Any) -> None:
    response = await client.get("/api/notebooks/a%20b.ipynb?content=0")
    assert response.status_code == 302
    assert response.headers["location"] == "/api/contents/a%20b.ipynb?content=0"
    response = await client.put("/api/notebooks/x.ipynb", json={})
    assert (response.status_code, response.headers["location"]) == (307, "/api/contents/x.ipynb")


async def test_base_url_prefixes_locations(root: Path) -> None:
    async with contents_client(root, base_url="/user/ana/") as client:
        response = await client.post("/user/ana/api/contents", json={"type": "notebook"})
        assert response.headers["location"] == "/user/ana/api/contents/Untitled.ipynb"
        response = await client.post("/user/ana/api/contents/Untitled.ipynb/checkpoints")
        assert response.headers["location"] == (
            "/user/ana/api/contents/Untitled.ipynb/checkpoints/checkpoint"
        )


async def test_unauthenticated_requests_are_403(root: Path) -> None:
    async with contents_client(root, authenticated=False) as client:
        for method, url in (
            ("GET", "/api/contents"),
            ("PUT", "/api/contents/a.txt"),
            ("GET", "/files/a.txt"),
        ):
            response = await client.request(method, url)
            assert response.status_code == 403
            assert response.json() == error("Invalid or missing authentication token", "Forbidden")
    assert os.listdir(root) == []


def test_every_setting_is_described() -> None:
    for name, field in ContentsSettings.model_fields.items():
        assert field.description, name
