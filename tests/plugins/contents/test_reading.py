"""Ranged reads of files (offset/length), text alignment, hashes."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from junction.plugins.contents.reading import FileBytes, decode

pytestmark = pytest.mark.anyio

TEXT = "héllo wörld — ça va? 日本語のテキスト 🎉 end\n" * 3


@pytest.mark.parametrize("length", [1, 2, 3, 4, 5, 7, 64])
async def test_text_ranges_align_to_characters_and_chain_to_the_whole_file(
    client: Any, root: Path, length: int
) -> None:
    data = TEXT.encode()
    (root / "t.txt").write_bytes(data)
    pieces = []
    offset = 0
    while offset < len(data):
        response = await client.get(
            "/api/contents/t.txt",
            params={"offset": offset, "length": length, "format": "text"},
        )
        assert response.status_code == 200, response.text
        model = response.json()
        span = model["range"]
        assert span["offset"] == offset
        assert model["size"] == len(data)
        if span["length"] == 0:  # a character longer than the asked length
            length_needed = 4
            response = await client.get(
                "/api/contents/t.txt",
                params={"offset": offset, "length": length_needed, "format": "text"},
            )
            model = response.json()
            span = model["range"]
        pieces.append(model["content"])
        offset = span["offset"] + span["length"]
    assert "".join(pieces) == TEXT


async def test_base64_ranges_are_exact_bytes(client: Any, root: Path) -> None:
    data = os.urandom(1000)
    (root / "b.bin").write_bytes(data)
    response = await client.get("/api/contents/b.bin?offset=10&length=100")
    model = response.json()
    assert model["format"] == "base64"
    assert base64.b64decode(model["content"]) == data[10:110]
    assert model["range"] == {"offset": 10, "length": 100}
    tail = (await client.get("/api/contents/b.bin?offset=990")).json()
    assert base64.b64decode(tail["content"]) == data[990:]
    past = (await client.get("/api/contents/b.bin?offset=5000&length=10")).json()
    assert (past["content"], past["range"]) == ("", {"offset": 5000, "length": 0})


async def test_ranged_read_with_hash_hashes_the_whole_file(client: Any, root: Path) -> None:
    data = os.urandom(3 * 1024 * 1024)
    (root / "b.bin").write_bytes(data)
    model = (await client.get("/api/contents/b.bin?offset=0&length=4&hash=1")).json()
    assert model["hash"] == hashlib.sha256(data).hexdigest()


async def test_ranges_are_for_files(client: Any, root: Path) -> None:
    (root / "n.ipynb").write_text("{}")
    (root / "d").mkdir()
    response = await client.get("/api/contents/n.ipynb?offset=0")
    assert response.status_code == 400
    assert response.json()["message"] == (
        "offset and length apply to files, not notebooks; use type=file"
    )
    response = await client.get("/api/contents/d?length=3")
    assert response.status_code == 400
    assert response.json()["message"] == "offset and length apply to files only"
    response = await client.get("/api/contents/n.ipynb?offset=0&length=1&type=file")
    assert response.json()["content"] == "{"


def test_decode_without_a_range_refuses_or_falls_back() -> None:
    whole = FileBytes(b"\xff\xfe", 0, whole=True)
    assert decode(whole, 2, None, "x", ranged=False)[1] == "base64"
    from junction.plugins.contents.service import BadFormat

    with pytest.raises(BadFormat):
        decode(whole, 2, "text", "x", ranged=False)
