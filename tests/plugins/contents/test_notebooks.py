"""Notebook serialisation and reading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from junction.plugins.contents.notebooks import (
    new_notebook_bytes,
    notebook_bytes,
    notebook_from_bytes,
)
from junction.plugins.contents.service import InvalidNotebook

from .test_routes import notebook

pytestmark = pytest.mark.anyio


def test_notebook_bytes_match_nbformat_writes() -> None:
    content = notebook("print('x')\nprint('y')")
    node = nbformat.from_dict(content)  # type: ignore[no-untyped-call]  # nbformat is untyped
    expected = nbformat.writes(node, nbformat.NO_CONVERT) + "\n"  # type: ignore[no-untyped-call]
    assert notebook_bytes(content, "a.ipynb").decode() == expected


def test_new_notebook_is_valid_nbformat_4() -> None:
    text = new_notebook_bytes().decode()
    parsed = nbformat.reads(text, as_version=nbformat.NO_CONVERT)  # type: ignore[no-untyped-call]
    nbformat.validate(parsed)
    assert (parsed.nbformat, parsed.cells) == (4, [])


def test_unreadable_bytes_are_invalid_notebooks() -> None:
    for data, message in (
        (b"[]", "unreadable notebook 'a.ipynb': not a JSON object"),
        (b"\xff", "unreadable notebook 'a.ipynb': "),
    ):
        with pytest.raises(InvalidNotebook) as caught:
            notebook_from_bytes(data, "a.ipynb")
        assert caught.value.message.startswith(message)


async def test_old_notebooks_are_upgraded_when_read(client: Any, root: Path) -> None:
    v3 = {
        "metadata": {"name": ""},
        "nbformat": 3,
        "nbformat_minor": 0,
        "worksheets": [
            {
                "cells": [
                    {
                        "cell_type": "code",
                        "input": "1 + 1",
                        "language": "python",
                        "metadata": {},
                        "outputs": [],
                        "prompt_number": 1,
                        "collapsed": False,
                    }
                ],
                "metadata": {},
            }
        ],
    }
    (root / "old.ipynb").write_text(json.dumps(v3))
    response = await client.get("/api/contents/old.ipynb")
    assert response.status_code == 200, response.text
    content = response.json()["content"]
    assert content["nbformat"] == 4
    assert content["cells"][0]["source"] == "1 + 1"


async def test_get_notebook_joins_multiline_sources_and_outputs(client: Any, root: Path) -> None:
    stored = notebook("ignored")
    stored["cells"][0]["source"] = ["a = 1\n", "b = 2"]
    stored["cells"][0]["outputs"] = [
        {"output_type": "stream", "name": "stdout", "text": ["x\n", "y"]},
        {
            "output_type": "display_data",
            "metadata": {},
            "data": {"text/plain": ["p\n", "q"], "application/json": {"k": ["v"]}},
        },
    ]
    (root / "n.ipynb").write_text(json.dumps(stored))
    response = await client.get("/api/contents/n.ipynb", params={"type": "notebook"})
    assert response.status_code == 200
    model = response.json()
    assert (model["type"], model["format"], model["mimetype"]) == ("notebook", "json", None)
    cell = model["content"]["cells"][0]
    assert cell["source"] == "a = 1\nb = 2"
    assert cell["outputs"][0]["text"] == "x\ny"
    assert cell["outputs"][1]["data"] == {"text/plain": "p\nq", "application/json": {"k": ["v"]}}


async def test_get_unreadable_notebook_is_a_400(client: Any, root: Path) -> None:
    (root / "broken.ipynb").write_text("{not json")
    response = await client.get("/api/contents/broken.ipynb")
    assert response.status_code == 400
    assert response.json()["message"].startswith("unreadable notebook 'broken.ipynb': ")
