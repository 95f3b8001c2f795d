"""Saving with PUT: models, files, notebooks, directories, and what is refused."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from .conftest import contents_client
from .test_routes import error, notebook

pytestmark = pytest.mark.anyio


async def test_put_creates_then_saves_keeping_the_file_mode(client: Any, root: Path) -> None:
    body = {"type": "file", "format": "text", "content": "one"}
    response = await client.put("/api/contents/a.txt", json=body)
    assert response.status_code == 201
    assert response.headers["location"] == "/api/contents/a.txt"
    model = response.json()
    assert (model["content"], model["format"], model["size"]) == (None, None, 3)
    os.chmod(root / "a.txt", 0o600)
    response = await client.put("/api/contents/a.txt", json=body | {"content": "two!"})
    assert response.status_code == 200
    assert (root / "a.txt").read_text() == "two!"
    assert stat.S_IMODE((root / "a.txt").stat().st_mode) == 0o600
    assert response.json()["size"] == 4


async def test_put_base64_accepts_line_breaks_and_refuses_garbage(client: Any, root: Path) -> None:
    data = os.urandom(300)
    wrapped = base64.encodebytes(data).decode()
    assert "\n" in wrapped
    body = {"type": "file", "format": "base64", "content": wrapped}
    assert (await client.put("/api/contents/b.bin", json=body)).status_code == 201
    assert (root / "b.bin").read_bytes() == data
    response = await client.put("/api/contents/b.bin", json=body | {"content": "@@not base64"})
    assert response.status_code == 400
    assert response.json() == error(
        "content of 'b.bin' is not valid base64: Only base64 data is allowed", "Bad Request"
    )
    assert (root / "b.bin").read_bytes() == data
    response = await client.put("/api/contents/new.bin", json=body | {"content": "abc"})
    assert response.status_code == 400
    assert not (root / "new.bin").exists()


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"format": "text", "content": "x"}, 400, "No file type provided"),
        ({"type": "file", "format": "text"}, 400, "No file content provided"),
        (
            {"type": "file", "content": "x"},
            400,
            "Must specify format of file contents as 'text' or 'base64'",
        ),
        (
            {"type": "file", "format": "text", "content": 5},
            400,
            "content of 'a.txt' must be a string for format 'text'",
        ),
        (
            {"type": 5, "format": "text", "content": "x"},
            400,
            "type: Input should be a valid string",
        ),
        ({"type": "file", "chunk": "1", "format": "text", "content": "x"}, 400, "chunk: Input "),
        ({"copy_from": "b.txt", "type": "file"}, 400, "Cannot copy with PUT, only POST"),
    ],
)
async def test_put_refuses_incomplete_or_mistyped_models(
    client: Any, root: Path, body: dict[str, Any], status: int, message: str
) -> None:
    (root / "a.txt").write_text("keep")
    response = await client.put("/api/contents/a.txt", json=body)
    assert response.status_code == status
    assert response.json()["message"].startswith(message)
    assert (root / "a.txt").read_text() == "keep"


async def test_put_malformed_json_is_400_and_changes_nothing(client: Any, root: Path) -> None:
    (root / "a.txt").write_text("keep")
    response = await client.put(
        "/api/contents/a.txt", content=b'{"type": "file",', headers={"content-type": "text/plain"}
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith("request body is not valid JSON: ")
    assert (root / "a.txt").read_text() == "keep"


async def test_put_notebook_is_written_as_jupyter_writes_it(client: Any, root: Path) -> None:
    content = notebook("a = 1\nb = 2")
    content["cells"][0]["metadata"]["trusted"] = True
    response = await client.put(
        "/api/contents/n.ipynb", json={"type": "notebook", "content": content}
    )
    assert response.status_code == 201
    assert response.json()["type"] == "notebook"
    text = (root / "n.ipynb").read_text()
    assert text.startswith('{\n "cells": [\n  {\n')
    assert text.endswith("}\n")
    on_disk = json.loads(text)
    assert on_disk["cells"][0]["source"] == ["a = 1\n", "b = 2"]
    assert on_disk["cells"][0]["metadata"] == {}


async def test_put_invalid_notebook_is_400_with_the_reason_and_writes_nothing(
    client: Any, root: Path
) -> None:
    original = json.dumps(notebook("ok"))
    (root / "n.ipynb").write_text(original)
    bad = notebook("x")
    bad["cells"][0]["source"] = 5
    response = await client.put("/api/contents/n.ipynb", json={"type": "notebook", "content": bad})
    assert response.status_code == 400
    assert response.json() == error(
        "notebook 'n.ipynb' failed validation: 5 is not valid under any of the given "
        "schemas (at cells/0/source)",
        "Bad Request",
    )
    assert (root / "n.ipynb").read_text() == original
    for content, message in (
        ([], "notebook 'n.ipynb': content must be a JSON object"),
        ({"nbformat": 3}, "notebook 'n.ipynb': only nbformat 4 can be saved, got nbformat 3"),
        ({"nbformat": 4, "nbformat_minor": 5}, "notebook 'n.ipynb' failed validation: "),
    ):
        response = await client.put(
            "/api/contents/n.ipynb", json={"type": "notebook", "content": content}
        )
        assert response.status_code == 400
        assert response.json()["message"].startswith(message)
    assert (root / "n.ipynb").read_text() == original


async def test_put_notebook_without_cell_ids_gets_ids(client: Any, root: Path) -> None:
    content = notebook("x")
    del content["cells"][0]["id"]
    response = await client.put(
        "/api/contents/n.ipynb", json={"type": "notebook", "content": content}
    )
    assert response.status_code == 201
    assert json.loads((root / "n.ipynb").read_text())["cells"][0]["id"]


async def test_put_directory_creates_it_once(client: Any, root: Path) -> None:
    response = await client.put("/api/contents/newdir", json={"type": "directory"})
    assert response.status_code == 201
    assert response.json()["type"] == "directory"
    assert (await client.put("/api/contents/newdir", json={"type": "directory"})).status_code == 200
    (root / "f").write_text("x")
    response = await client.put("/api/contents/f", json={"type": "directory"})
    assert response.status_code == 400
    assert response.json() == error("'f' exists and is not a directory", "bad type")


async def test_put_targets_that_cannot_hold_a_file(client: Any, root: Path) -> None:
    (root / "d").mkdir()
    body = {"type": "file", "format": "text", "content": "x"}
    response = await client.put("/api/contents/missing/a.txt", json=body)
    assert response.status_code == 404
    assert response.json() == error("directory 'missing' does not exist", "Not Found")
    response = await client.put("/api/contents/d", json=body)
    assert response.status_code == 400
    assert response.json() == error("'d' is a directory", "bad type")
    response = await client.put("/api/contents", json=body)
    assert response.status_code == 400
    assert response.json() == error("cannot save over the root directory", "Bad Request")


async def test_put_without_body_creates_an_untitled_file_in_that_directory(
    client: Any, root: Path
) -> None:
    (root / "d").mkdir()
    response = await client.put("/api/contents/d")
    assert response.status_code == 201
    assert response.json()["path"] == "d/untitled"


async def test_put_body_above_the_limit_is_413(root: Path) -> None:
    async with contents_client(root, max_body_mb=1) as client:
        body = {"type": "file", "format": "text", "content": "x" * (1024 * 1024)}
        response = await client.put("/api/contents/big.txt", json=body)
    assert response.status_code == 413
    assert response.json() == error(
        "request body is larger than 1 MiB (max_body_mb)", "Payload Too Large"
    )
    assert not (root / "big.txt").exists()
