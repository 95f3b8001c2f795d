"""Notebook export: ``/api/nbconvert`` lists formats, ``/nbconvert/...`` converts."""

from __future__ import annotations

import io
import json
import logging
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from .conftest import Serve, install_package

pytestmark = pytest.mark.anyio


PIXEL = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5E"
    "rkJggg=="
)


def notebook(*cells: dict[str, Any]) -> dict[str, Any]:
    """An nbformat 4 notebook; by default one code cell and one markdown cell."""
    default = [
        code_cell("answer = 6 * 7"),
        {"cell_type": "markdown", "id": "m1", "metadata": {}, "source": "# Title"},
    ]
    return {
        "cells": list(cells) or default,
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def code_cell(source: str, outputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A code cell."""
    return {
        "cell_type": "code",
        "id": f"code-{len(source)}",
        "metadata": {},
        "source": source,
        "execution_count": None,
        "outputs": outputs or [],
    }


@pytest.fixture
def saved_notebook(root_dir: Path) -> str:
    """``work/calc.ipynb`` under the root dir; returns its API path."""
    (root_dir / "work").mkdir()
    (root_dir / "work" / "calc.ipynb").write_text(json.dumps(notebook()))
    (root_dir / "work" / "notes.txt").write_text("plain")
    return "work/calc.ipynb"


async def test_formats_come_from_nbconvert(serve: Serve) -> None:
    async with serve() as client:
        formats = (await client.get("/api/nbconvert")).json()
    assert formats["html"] == {"output_mimetype": "text/html"}
    assert formats["python"] == {"output_mimetype": "text/x-python"}
    assert "script" in formats
    assert "notebook" in formats


async def test_export_to_python_shows_inline(serve: Serve, saved_notebook: str) -> None:
    async with serve(enable=["contents"]) as client:
        response = await client.get(f"/nbconvert/python/{saved_notebook}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/x-python; charset=utf-8"
    assert "answer = 6 * 7" in response.text
    assert "sandbox allow-scripts" in response.headers["content-security-policy"]
    assert "content-disposition" not in response.headers


async def test_export_download_is_an_attachment_named_after_the_notebook(
    serve: Serve, saved_notebook: str
) -> None:
    async with serve(enable=["contents"]) as client:
        response = await client.get(f"/nbconvert/html/{saved_notebook}?download=true")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == "attachment; filename*=UTF-8''calc.html"
    assert "<html" in response.text


async def test_export_with_extra_files_is_a_zip(serve: Serve, root_dir: Path) -> None:
    output = {"output_type": "display_data", "data": {"image/png": PIXEL}, "metadata": {}}
    nb = notebook(code_cell("plot()", outputs=[output]))
    (root_dir / "fig.ipynb").write_text(json.dumps(nb))
    async with serve(enable=["contents"]) as client:
        response = await client.get("/nbconvert/markdown/fig.ipynb")
    assert response.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert "fig.md" in names
    assert any(name.endswith(".png") for name in names)


async def test_non_notebooks_redirect_to_the_raw_file(serve: Serve, saved_notebook: str) -> None:
    async with serve(enable=["contents"]) as client:
        response = await client.get("/nbconvert/html/work/notes.txt")
    assert response.status_code == 302
    assert response.headers["location"] == "../../../files/work/notes.txt"


@pytest.fixture
def canary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An importable module that must never be imported; returns its name."""
    site = tmp_path / "canary-site"
    site.mkdir()
    (site / "export_canary.py").write_text("class Exporter:\n    pass\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "export_canary", raising=False)
    return "export_canary"


@pytest.mark.parametrize(
    "format_name", ["export_canary.Exporter", "builtins.dict", "export_canary", "HTML", "ipynb"]
)
async def test_only_listed_exporter_names_are_accepted_and_nothing_is_imported(
    serve: Serve, saved_notebook: str, canary: str, format_name: str
) -> None:
    """nbconvert imports any dotted name it is given: the URL must never reach it."""
    async with serve(enable=["contents"]) as client:
        listed = (await client.get("/api/nbconvert")).json()
        got = await client.get(f"/nbconvert/{format_name}/{saved_notebook}")
        posted = await client.post(
            f"/nbconvert/{format_name}", json={"name": "x.ipynb", "content": notebook()}
        )
    assert format_name not in listed
    for response in (got, posted):
        assert response.status_code == 404
        assert response.json()["reason"] == "Not Found"
        assert "no exporter for format" in response.json()["message"]
    assert canary not in sys.modules


@pytest.fixture
def failing_exporter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A registered exporter ``failing`` whose error names a server path; returns the path."""
    secret = str(tmp_path / "secret-server-dir" / "template.tpl")
    package = install_package(
        tmp_path / "exporter-site",
        "failing_exporter",
        "failing_exporter",
        "nbconvert.exporters",
        "failing",
        "failing_exporter:Failing",
    )
    (package / "__init__.py").write_text(
        "from nbconvert.exporters import Exporter\n"
        "class Failing(Exporter):\n"
        "    output_mimetype = 'text/plain'\n"
        "    def from_notebook_node(self, nb, resources=None, **kw):\n"
        f"        raise RuntimeError('cannot read {secret}')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "exporter-site"))
    monkeypatch.delitem(sys.modules, "failing_exporter", raising=False)
    return secret


async def test_failed_export_logs_the_detail_and_answers_a_fixed_message(
    serve: Serve, failing_exporter: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "junction.lab")
    async with serve() as client:
        listed = (await client.get("/api/nbconvert")).json()
        response = await client.post(
            "/nbconvert/failing", json={"name": "../../x.ipynb", "content": notebook()}
        )
    assert listed["failing"] == {"output_mimetype": "text/plain"}
    assert response.status_code == 500
    assert response.json() == {
        "message": "nbconvert could not export the notebook as failing; "
        "the server log has the details",
        "reason": "Export Failed",
    }
    assert failing_exporter not in response.text
    assert failing_exporter in caplog.text
    assert "exporting x.ipynb as failing failed" in caplog.text


async def test_posted_names_keep_only_their_last_part(serve: Serve) -> None:
    output = {"output_type": "display_data", "data": {"image/png": PIXEL}, "metadata": {}}
    nb = notebook(code_cell("plot()", outputs=[output]))
    async with serve() as client:
        response = await client.post(
            "/nbconvert/markdown", json={"name": "../../../evil/fig.ipynb", "content": nb}
        )
    assert response.status_code == 200
    assert response.headers["content-disposition"] == "attachment; filename*=UTF-8''fig.zip"
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert "fig.md" in names
    assert all("/" not in name for name in names)


async def test_unknown_format_and_missing_file_are_not_found(
    serve: Serve, saved_notebook: str
) -> None:
    async with serve(enable=["contents"]) as client:
        unknown = await client.get(f"/nbconvert/nonsense/{saved_notebook}")
        missing = await client.get("/nbconvert/html/nope.ipynb")
    assert unknown.status_code == 404
    assert "nonsense" in unknown.json()["message"]
    assert missing.status_code == 404


async def test_exporting_files_needs_the_contents_plugin(serve: Serve, saved_notebook: str) -> None:
    async with serve() as client:
        response = await client.get(f"/nbconvert/html/{saved_notebook}")
    assert response.status_code == 404
    assert "contents plugin" in response.json()["message"]


async def test_posted_notebook_is_converted(serve: Serve) -> None:
    async with serve() as client:
        response = await client.post(
            "/nbconvert/script", json={"name": "posted.ipynb", "content": notebook()}
        )
        bad = await client.post("/nbconvert/script", json={"name": "x.ipynb"})
    assert response.status_code == 200
    assert "answer = 6 * 7" in response.text
    assert bad.status_code == 400


@pytest.mark.parametrize(
    "path", ["..%2Foutside.ipynb", "%2E%2E/outside.ipynb", "work/..%2F..%2Foutside.ipynb"]
)
async def test_exports_cannot_read_notebooks_outside_the_root(
    serve: Serve, root_dir: Path, saved_notebook: str, path: str
) -> None:
    (root_dir.parent / "outside.ipynb").write_text(json.dumps(notebook(code_cell("secret = 1"))))
    async with serve(enable=["contents"]) as client:
        response = await client.get(f"/nbconvert/python/{path}")
    assert response.status_code in (400, 403, 404)
    assert "secret" not in response.text
