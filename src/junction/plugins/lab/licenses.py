"""Third-party license reports (Help > Licenses) for the core bundle and each extension.

Each bundle ships ``third-party-licenses.json`` (``{"packages": [{name, versionInfo,
licenseId, extractedText}]}``) in its ``static/`` directory. The report is JSON, CSV or
Markdown. Functions here read the disk: run them in a worker thread.

Bundles are chosen by name with simple patterns, never regular expressions: a pattern sent
by a client must not be able to keep the matcher busy (a regular expression such as
``(.+)+!`` backtracks for minutes while holding the GIL, which stops the whole server).
See :func:`bundle_matches`.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from junction.plugins.frontend.models import FederatedExtension, LabLayout

__all__ = ["LICENSES_FILE", "ReportFormat", "bundle_matches", "license_bundles", "render_report"]

log = logging.getLogger("junction.lab")

LICENSES_FILE = "third-party-licenses.json"
ReportFormat = Literal["json", "csv", "markdown"]
_FIELDS = ("name", "versionInfo", "licenseId", "extractedText")
_MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "csv": "text/csv",
    "markdown": "text/markdown",
}


def _packages(directory: Path) -> list[dict[str, Any]]:
    for candidate in (directory / LICENSES_FILE, directory / "static" / LICENSES_FILE):
        try:
            data = json.loads(candidate.read_text("utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            log.warning("ignoring license report %s: %s", candidate, exc)
            continue
        packages = data.get("packages") if isinstance(data, dict) else None
        if isinstance(packages, list):
            return [p for p in packages if isinstance(p, dict)]
    return []


def bundle_matches(name: str, patterns: str) -> bool:
    """Whether bundle ``name`` is selected by ``patterns`` (the ``bundles`` query parameter).

    ``patterns`` is a comma-separated list; a name is selected when one of them matches its
    start. In a pattern ``*`` stands for any run of characters and everything else is
    literal; ``.*`` is read as ``*``, so the regular expressions clients usually send
    (``.*``, ``@jupyterlab/.*``) still select what they did. An empty list selects all.
    Matching is plain substring search: its cost grows with the lengths, never faster.
    """
    candidates = [p.strip().replace(".*", "*") for p in patterns.split(",")]
    candidates = [p for p in candidates if p]
    if not candidates:
        return True
    return any(_prefix_glob(name, pattern) for pattern in candidates)


def _prefix_glob(name: str, pattern: str) -> bool:
    # ``pattern`` is implicitly followed by ``*``, so taking each literal piece at its
    # leftmost place is enough (no backtracking needed).
    first, *rest = pattern.split("*")
    if not name.startswith(first):
        return False
    position = len(first)
    for piece in rest:
        found = name.find(piece, position)
        if found < 0:
            return False
        position = found + len(piece)
    return True


def license_bundles(
    layout: LabLayout, extensions: Sequence[FederatedExtension], patterns: str = "*"
) -> dict[str, dict[str, Any]]:
    """Bundle name -> ``{"packages": [...]}`` for every bundle :func:`bundle_matches` selects.

    The core bundle is named after the app's ``static/package.json`` (e.g.
    ``@jupyterlab/application-top``); extensions by their package name.
    """
    bundles: dict[str, dict[str, Any]] = {}
    for extension in extensions:
        if bundle_matches(extension.name, patterns):
            bundles[extension.name] = {"packages": _packages(extension.path)}
    core = _core_name(layout.static_dir)
    if core is not None and bundle_matches(core, patterns):
        bundles[core] = {"packages": _packages(layout.static_dir)}
    return bundles


def render_report(
    bundles: dict[str, dict[str, Any]], report_format: ReportFormat, *, full_text: bool
) -> tuple[str, str]:
    """The report text and its media type."""
    if not full_text:
        bundles = {
            name: {"packages": [_without_text(p) for p in bundle["packages"]]}
            for name, bundle in bundles.items()
        }
    if report_format == "csv":
        text = _csv(bundles)
    elif report_format == "markdown":
        text = _markdown(bundles, full_text=full_text)
    else:
        text = json.dumps({"bundles": bundles}, indent=2, sort_keys=True)
    return text, _MEDIA_TYPES[report_format]


def _without_text(package: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in package.items() if key != "extractedText"}


def _csv(bundles: dict[str, dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["bundle", *_FIELDS], extrasaction="ignore")
    writer.writeheader()
    for name, bundle in bundles.items():
        for package in bundle["packages"]:
            writer.writerow({"bundle": name, **{f: package.get(f, "") for f in _FIELDS}})
    return out.getvalue()


def _markdown(bundles: dict[str, dict[str, Any]], *, full_text: bool) -> str:
    lines: list[str] = []
    for name, bundle in bundles.items():
        lines += [f"# {name}", ""]
        if not bundle["packages"]:
            lines += ["> No licenses found", ""]
        for package in bundle["packages"]:
            title = package.get("name", "<unknown>")
            version = package.get("versionInfo", "")
            license_id = package.get("licenseId", "")
            lines += [f"## **{title}** `{version}` {license_id}", ""]
            if full_text:
                text = package.get("extractedText") or "> No license text available"
                lines += [text, ""]
    return "\n".join(lines)


def _core_name(static_dir: Path) -> str | None:
    try:
        package = json.loads((static_dir / "package.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    name = package.get("name") if isinstance(package, dict) else None
    return str(name) if name else None
