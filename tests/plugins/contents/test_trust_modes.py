"""The notary's files are readable by the server's account alone, whatever the umask."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from .conftest import contents_client
from .test_routes import notebook

pytestmark = pytest.mark.anyio


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_signatures_database_and_secret_are_private(root: Path, tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        notary = tmp_path / "notary"
        async with contents_client(root, notary_dir=str(notary)) as client:
            (root / "n.ipynb").write_text(json.dumps(notebook("1")))
            response = await client.post("/api/contents/n.ipynb/trust")
            assert response.status_code == 201
        assert _mode(notary) == 0o700
        assert _mode(notary / "nbsignatures.db") == 0o600
        assert _mode(notary / "notebook_secret") == 0o600
    finally:
        os.umask(previous)


async def test_an_existing_readable_signatures_database_is_tightened(
    root: Path, tmp_path: Path
) -> None:
    notary = tmp_path / "notary"
    notary.mkdir()
    (notary / "nbsignatures.db").touch()
    (notary / "nbsignatures.db").chmod(0o644)
    async with contents_client(root, notary_dir=str(notary)) as client:
        (root / "n.ipynb").write_text(json.dumps(notebook("1")))
        assert (await client.post("/api/contents/n.ipynb/trust")).status_code == 201
    assert _mode(notary / "nbsignatures.db") == 0o600
