"""Where the catalog looks for kernel specs, found without importing IPython."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager

from junction.plugins.kernelspecs.catalog import kernel_dirs

_LIST_SPECS = """
import asyncio, sys
from junction.plugins.kernelspecs.catalog import JupyterClientKernelSpecs
from junction.plugins.kernelspecs.settings import KernelSpecsSettings

catalog = JupyterClientKernelSpecs(KernelSpecsSettings(), base_url="/")
listing = asyncio.run(catalog.list())
print(" ".join(sorted(listing.kernelspecs)))
print("IPython" in sys.modules)
"""


def test_the_directories_are_jupyter_clients_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    assert kernel_dirs() == KernelSpecManager().kernel_dirs
    assert kernel_dirs()[-1] == str(tmp_path / "ipython" / "kernels")


def test_a_spec_under_ipythondir_is_listed_and_ipython_is_not_imported(tmp_path: Path) -> None:
    directory = tmp_path / "ipython" / "kernels" / "legacy"
    directory.mkdir(parents=True)
    spec = {"argv": ["python", "{connection_file}"], "display_name": "Legacy", "language": "x"}
    (directory / "kernel.json").write_text(json.dumps(spec))
    env = {**os.environ, "IPYTHONDIR": str(tmp_path / "ipython")}
    listed = subprocess.run(
        [sys.executable, "-c", _LIST_SPECS],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    names, ipython_imported = listed.stdout.splitlines()
    assert "legacy" in names.split()
    assert ipython_imported == "False"
