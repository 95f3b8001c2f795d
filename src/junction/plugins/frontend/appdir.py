"""Finding the installed UIs: JupyterLab's application directory, the labextensions path, and
Notebook 7's package.

JupyterLab ships its prebuilt core bundle as data files in ``<prefix>/share/jupyter/lab``
(``static/``, ``schemas/``, ``themes/``); prebuilt extensions installed by pip land in
``<prefix>/share/jupyter/labextensions``, and Jupyter's data path lists every such prefix.
Notebook 7 (the ``notebook`` package) keeps its own bundle and page templates inside the
package and shares everything else with JupyterLab. Nothing here imports jupyterlab or
notebook (either would pull in a whole other server).
"""

from __future__ import annotations

import importlib.util
import json
import os
import site
from collections.abc import Iterable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from jupyter_core.paths import ENV_JUPYTER_PATH, SYSTEM_JUPYTER_PATH, jupyter_path

from junction.errors import ConfigError
from junction.plugins.frontend.models import LabLayout, NotebookLayout

__all__ = [
    "app_dir_candidates",
    "find_app_dir",
    "find_notebook",
    "labextensions_path",
    "load_layout",
]


def app_dir_candidates(configured: Path | None) -> list[Path]:
    """Where to look for the app directory, in order.

    A configured directory is the only candidate; then ``$JUPYTERLAB_DIR`` (JupyterLab's own
    override); then this environment's prefix, the user site base, and the system prefixes.
    """
    if configured is not None:
        return [configured.expanduser()]
    override = os.environ.get("JUPYTERLAB_DIR")
    if override:
        return [Path(override).expanduser()]
    roots: list[str] = [*ENV_JUPYTER_PATH, os.path.join(site.getuserbase(), "share", "jupyter")]
    roots.extend(SYSTEM_JUPYTER_PATH)
    return _unique(Path(root) / "lab" for root in roots)


def find_app_dir(configured: Path | None) -> Path:
    """The first candidate holding a built ``static/index.html``.

    Called once at startup (it touches the disk). Raises :class:`ConfigError` naming the
    places searched and the fix when JupyterLab is not installed.
    """
    candidates = app_dir_candidates(configured)
    for candidate in candidates:
        if (candidate / "static" / "index.html").is_file():
            return candidate.resolve()
    searched = ", ".join(str(c) for c in candidates)
    raise ConfigError(
        f"frontend: JupyterLab's built files (static/index.html) were not found in {searched}; "
        "install them with \"pip install 'jupyter-junction[lab]'\" or set frontend.app_dir"
    )


def load_layout(app_dir: Path) -> LabLayout:
    """Read the application's name and version from its ``static/package.json``.

    Falls back to the installed ``jupyterlab`` distribution's version when the file lacks it.
    """
    name, app_version = "JupyterLab", ""
    try:
        package = json.loads((app_dir / "static" / "package.json").read_text("utf-8"))
        meta = package.get("jupyterlab", {})
        name = str(meta.get("name") or name)
        app_version = str(meta.get("version") or package.get("version") or "")
    except (OSError, ValueError):
        pass
    if not app_version:
        try:
            app_version = version("jupyterlab")
        except PackageNotFoundError:
            app_version = "0.0.0"
    return LabLayout(app_dir=app_dir, app_name=name, app_version=app_version)


def find_notebook() -> NotebookLayout | None:
    """Notebook 7's installed package, or None when it is missing, older than 7 (the classic
    notebook's templates are another UI) or lacks its templates.

    Locates the package without importing it. Called once at startup (it touches the disk).
    """
    try:
        spec = importlib.util.find_spec("notebook")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    if not (package_dir / "templates" / "tree.html").is_file():
        return None
    try:
        notebook_version = version("notebook")
    except PackageNotFoundError:
        return None
    major = notebook_version.split(".", 1)[0]
    if not major.isdigit() or int(major) < 7:
        return None
    return NotebookLayout(package_dir=package_dir.resolve(), version=notebook_version)


def labextensions_path(extra: Sequence[Path] = ()) -> list[Path]:
    """Directories of prebuilt extensions, highest priority first: ``extra``, then Jupyter's.

    Jupyter's data path puts the user's and this environment's directories before the
    system ones, so a user install shadows a system one of the same name.
    """
    standard = (Path(p) for p in jupyter_path("labextensions"))
    return _unique([*(p.expanduser() for p in extra), *standard])


def _unique(paths: Iterable[Path]) -> list[Path]:
    seen: set[Path] = set()
    result = []
    for path in paths:
        if path not in seen:
            seen.add(path)
            result.append(path)
    return result
