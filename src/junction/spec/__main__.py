"""``python -m junction.spec``: write and check the spec files.

``write PLUGIN...`` (or ``write --all``) regenerates the named plugins' ``openapi.yaml`` and
``asyncapi.yaml`` from their routers; ``core`` names the core's own routes. ``check``
verifies that every installed plugin, and the core, describes all its routes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from junction.errors import ConfigError
from junction.registry import contract_of, discover, load
from junction.spec.contract import check_described
from junction.spec.generate import write_contract
from junction.spec.routes import CORE, core_contract, core_public_paths, core_routers

__all__ = ["main"]


def _write(names: Sequence[str]) -> None:
    available = discover()
    for name in names:
        if name == CORE:
            changed = write_contract(
                CORE,
                "The core: server, identity, login, this spec.",
                core_routers(),
                core_contract().directory,
                core_public_paths(),
            )
        else:
            plugin = load(name, available)
            changed = write_contract(
                name,
                plugin.description,
                plugin.routers,
                contract_of(name, available).directory,
                plugin.public_paths,
            )
        for path in changed:
            print(f"wrote {path}")
        if not changed:
            print(f"{name}: up to date")


def _check() -> None:
    available = discover()
    check_described(CORE, core_routers(), core_contract())
    for name in sorted(available):
        plugin = load(name, available)
        check_described(name, plugin.routers, contract_of(name, available))
    print(f"every route of the core and of {len(available)} plugins is described")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m junction.spec", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    write = commands.add_parser("write", help="regenerate spec files from the routers")
    write.add_argument("names", nargs="*", metavar="PLUGIN", help=f"plugin names, or {CORE}")
    write.add_argument("--all", action="store_true", help="the core and every installed plugin")
    commands.add_parser("check", help="fail if any installed plugin has an undescribed route")
    args = parser.parse_args(argv)
    try:
        if args.command == "write":
            names = [CORE, *sorted(discover())] if args.all else args.names
            if not names:
                parser.error("name plugins to write, or pass --all")
            _write(names)
        else:
            _check()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
