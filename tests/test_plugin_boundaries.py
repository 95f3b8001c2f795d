"""Plugins talk to each other only through typed services and small public modules.

A plugin may import, from another plugin, only its ``service`` module (the Protocol, the
key, the errors) and its ``models`` module (the values those carry); anything else it needs
lives in a core module (``junction.jsonfiles``, ``junction.staticfiles``...). No plugin
imports the app factory (``junction.app``): plugins are built before the app exists.
"""

from __future__ import annotations

import ast
from pathlib import Path

import junction.plugins

PLUGINS_DIR = Path(junction.plugins.__file__).parent
PUBLIC_MODULES = {"service", "models"}


def imported_modules(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """``(line, module)`` for every import in ``tree``; ``from`` imports also list each name.

    ``package`` is the dotted package of the file, to resolve relative imports.
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # ``from junction.plugins.kernels import manager`` imports a module too.
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
    return found


def violation(owner: str, module: str) -> str | None:
    """Why plugin ``owner`` may not import ``module`` (or a name from it), or None if it may."""
    if module == "junction.app" or module.startswith("junction.app."):
        return "imports the app factory"
    parts = module.split(".")
    if parts[:2] != ["junction", "plugins"] or len(parts) < 4 or parts[2] == owner:
        return None  # core modules, its own modules, or a package whose names are checked
    if parts[3] in PUBLIC_MODULES and len(parts) <= 5:
        return None  # the module itself, or a name imported from it
    return f"reaches into plugin {parts[2]} ({'.'.join(parts[3:])})"


def plugin_modules() -> list[tuple[str, Path]]:
    """``(plugin name, file)`` for every Python file of every first-party plugin."""
    return [
        (path.relative_to(PLUGINS_DIR).parts[0], path)
        for path in sorted(PLUGINS_DIR.glob("*/**/*.py"))
    ]


def test_the_walk_finds_every_plugin() -> None:
    plugins = {name for name, _ in plugin_modules()}
    assert {"contents", "frontend", "kernels", "kernelspecs", "lab", "sessions"} <= plugins


def test_plugins_import_only_services_and_models_of_other_plugins() -> None:
    problems = []
    for owner, path in plugin_modules():
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))
        relative = path.relative_to(PLUGINS_DIR).with_suffix("").parts
        package = ".".join(["junction", "plugins", *relative[:-1]])
        for line, module in imported_modules(tree, package):
            why = violation(owner, module)
            if why is not None:
                where = path.relative_to(PLUGINS_DIR.parent.parent)
                problems.append(f"{where}:{line}: {owner} {why}: {module}")
    assert not problems, "\n".join(problems)


def test_the_rule_catches_what_it_forbids() -> None:
    assert violation("lab", "junction.plugins.frontend.pageconfig") is not None
    assert violation("lab", "junction.plugins.frontend.staticfiles.send_file") is not None
    assert violation("kernels", "junction.app") is not None
    assert violation("kernels", "junction.app.error_body") is not None
    assert violation("lab", "junction.plugins.frontend.service") is None
    assert violation("lab", "junction.plugins.frontend.models.LabLayout") is None
    assert violation("lab", "junction.plugins.lab.storage") is None
    assert violation("lab", "junction.staticfiles") is None
    assert violation("lab", "junction.plugins.frontend.FRONTEND") is not None


def test_relative_imports_are_resolved() -> None:
    tree = ast.parse("from ..frontend import pageconfig\nfrom .storage import x\n")
    modules = [module for _, module in imported_modules(tree, "junction.plugins.lab")]
    assert "junction.plugins.frontend.pageconfig" in modules
    assert "junction.plugins.lab.storage.x" in modules
