"""Notebook trust: signatures kept by nbformat's notary, cells marked trusted when read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from junction.plugins.contents.trust import NotebookTrust

from .conftest import contents_client
from .test_routes import notebook

pytestmark = pytest.mark.anyio

HTML_OUTPUT = {
    "output_type": "display_data",
    "data": {"text/html": "<script>alert('hi')</script>"},
    "metadata": {},
}


def _with_rich_output(*sources: str) -> dict[str, Any]:
    content = notebook(*sources)
    for cell in content["cells"]:
        cell["outputs"] = [HTML_OUTPUT]
    return content


def _marks(model: dict[str, Any]) -> list[Any]:
    return [cell["metadata"].get("trusted") for cell in model["content"]["cells"]]


async def _read(client: Any, path: str) -> dict[str, Any]:
    response = await client.get(f"/api/contents/{path}")
    assert response.status_code == 200, response.text
    model: dict[str, Any] = response.json()
    return model


@pytest.fixture
async def trusting(root: Path, tmp_path: Path) -> Any:
    """A contents client whose notary lives in ``tmp_path / "notary"``."""
    async with contents_client(root, notary_dir=str(tmp_path / "notary")) as client:
        yield client


async def test_a_notebook_from_elsewhere_is_untrusted_until_trusted(
    trusting: Any, root: Path, tmp_path: Path
) -> None:
    (root / "n.ipynb").write_text(json.dumps(_with_rich_output("1", "2")))
    assert _marks(await _read(trusting, "n.ipynb")) == [False, False]

    response = await trusting.post("/api/contents/n.ipynb/trust")
    assert (response.status_code, response.content) == (201, b"")
    assert _marks(await _read(trusting, "n.ipynb")) == [True, True]
    assert sorted(p.name for p in (tmp_path / "notary").iterdir()) == [
        "nbsignatures.db",
        "notebook_secret",
    ]
    assert (tmp_path / "notary" / "notebook_secret").stat().st_mode & 0o077 == 0

    # Any change outside the server makes it untrusted again.
    changed = _with_rich_output("1", "2 + 0")
    (root / "n.ipynb").write_text(json.dumps(changed))
    assert _marks(await _read(trusting, "n.ipynb")) == [False, False]


async def test_saving_signs_when_every_code_cell_is_trusted(trusting: Any) -> None:
    content = _with_rich_output("1", "2")
    for cell in content["cells"]:
        cell["metadata"]["trusted"] = True  # what JupyterLab sends for cells the user ran
    saved = await trusting.put(
        "/api/contents/ran.ipynb", json={"type": "notebook", "content": content}
    )
    assert saved.status_code == 201
    assert _marks(await _read(trusting, "ran.ipynb")) == [True, True]

    # An edited cell whose rich output the user did not produce here: not signed.
    content["cells"][1]["source"] = "2 + 0"
    content["cells"][1]["metadata"]["trusted"] = False
    saved = await trusting.put(
        "/api/contents/ran.ipynb", json={"type": "notebook", "content": content}
    )
    assert saved.status_code == 200
    assert _marks(await _read(trusting, "ran.ipynb")) == [False, False]


async def test_cells_without_rich_output_need_no_mark_to_be_signed(trusting: Any) -> None:
    content = notebook("print(1)", "x = 2")
    content["cells"][0]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "1\n"}]
    await trusting.put("/api/contents/plain.ipynb", json={"type": "notebook", "content": content})
    assert _marks(await _read(trusting, "plain.ipynb")) == [True, True]


async def test_a_copy_of_a_trusted_notebook_is_trusted(trusting: Any, root: Path) -> None:
    (root / "n.ipynb").write_text(json.dumps(_with_rich_output("1")))
    await trusting.post("/api/contents/n.ipynb/trust")
    copied = await trusting.post("/api/contents", json={"copy_from": "n.ipynb"})
    assert copied.status_code == 201
    assert _marks(await _read(trusting, copied.json()["path"])) == [True]


async def test_trust_survives_a_restart(root: Path, tmp_path: Path) -> None:
    (root / "n.ipynb").write_text(json.dumps(_with_rich_output("1")))
    notary = str(tmp_path / "notary")
    async with contents_client(root, notary_dir=notary) as client:
        await client.post("/api/contents/n.ipynb/trust")
    async with contents_client(root, notary_dir=notary) as client:
        assert _marks(await _read(client, "n.ipynb")) == [True]
    async with contents_client(root, notary_dir=str(tmp_path / "other")) as client:
        assert _marks(await _read(client, "n.ipynb")) == [False]


async def test_the_notary_defaults_to_junctions_data_dir(
    client: Any, root: Path, jupyter_data_dir: Path
) -> None:
    (root / "n.ipynb").write_text(json.dumps(_with_rich_output("1")))
    assert (await client.post("/api/contents/n.ipynb/trust")).status_code == 201
    assert (jupyter_data_dir / "junction" / "nbsignatures.db").is_file()
    assert (jupyter_data_dir / "junction" / "notebook_secret").is_file()


async def test_trust_refuses_what_is_not_a_notebook(trusting: Any, root: Path) -> None:
    (root / "a.txt").write_text("x")
    (root / "folder.ipynb").mkdir()
    missing = await trusting.post("/api/contents/missing.ipynb/trust")
    assert missing.status_code == 404
    for path in ("a.txt", "folder.ipynb"):
        response = await trusting.post(f"/api/contents/{path}/trust")
        assert response.status_code == 400, path
        assert response.json()["message"] == f"{path!r} is not a notebook"


async def test_markdown_cells_are_never_marked(trusting: Any, root: Path) -> None:
    content = notebook("1")
    content["cells"].append({"cell_type": "markdown", "id": "md", "metadata": {}, "source": "#"})
    (root / "n.ipynb").write_text(json.dumps(content))
    cells = (await _read(trusting, "n.ipynb"))["content"]["cells"]
    assert cells[0]["metadata"] == {"trusted": False}
    assert cells[1]["metadata"] == {}


async def test_concurrent_reads_share_the_notary_safely(trusting: Any, root: Path) -> None:
    for index in range(8):
        (root / f"n{index}.ipynb").write_text(json.dumps(_with_rich_output(str(index))))
    await trusting.post("/api/contents/n0.ipynb/trust")
    results: dict[int, list[Any]] = {}

    async def read(index: int) -> None:
        results[index] = _marks(await _read(trusting, f"n{index}.ipynb"))

    async with anyio.create_task_group() as group:
        for _ in range(4):
            for index in range(8):
                group.start_soon(read, index)
    assert results == {index: [index == 0] for index in range(8)}


def test_the_notary_is_created_on_first_use(tmp_path: Path) -> None:
    trust = NotebookTrust(tmp_path / "notary")
    assert not (tmp_path / "notary").exists()
    assert trust.signable(notebook("1"))
    trust.sign(notebook("1"))
    assert (tmp_path / "notary" / "notebook_secret").is_file()
    trust.close()


def test_an_unreadable_database_falls_back_to_memory(tmp_path: Path) -> None:
    directory = tmp_path / "notary"
    directory.mkdir()
    (directory / "nbsignatures.db").write_bytes(b"not a database" * 100)
    trust = NotebookTrust(directory)
    content = _with_rich_output("1")
    trust.sign(content)
    assert trust.is_signed(content)
    trust.close()
