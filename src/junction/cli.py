"""The ``junction`` command.

``junction`` serves; ``junction plugins`` prints the plugin graph and start order;
``junction config show`` prints the effective configuration (secrets masked);
``junction password`` stores an argon2 hash of a login password in the config file;
``junction db upgrade`` migrates the database's tables of every enabled plugin and exits.
``junction users add|list|disable|enable|token|revoke`` administers the users plugin's accounts.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from junction._version import __version__
from junction.applications import coverage
from junction.auth.passwords import hash_password
from junction.config import default_config_file, load_settings, merge, parse_assignment
from junction.deploy import layout_from_options, nginx_config
from junction.errors import ConfigError, DatabaseUnavailable
from junction.registry import PROFILES, compose, discover, enabled_names, load
from junction.settings import ServerSettings

__all__ = ["main"]

_FLAGS: dict[str, str] = {
    "ip": "ip",
    "port": "port",
    "root_dir": "root_dir",
    "base_url": "base_url",
    "default_url": "default_url",
    "token": "token",
    "password": "password",
    "profile": "profile",
    "log_level": "log_level",
    "certfile": "certfile",
    "keyfile": "keyfile",
}


def _describe_model(prefix: str, model: type[BaseModel]) -> list[str]:
    lines = []
    for name, field in model.model_fields.items():
        if name == "plugins":
            continue
        default = field.get_default(call_default_factory=True)
        secret = default is None or isinstance(default, SecretStr) or name == "root_dir"
        shown = "" if secret else f" (default: {default})"
        lines.append(f"  {prefix}{name}{shown}\n      {field.description or ''}")
    return lines


def settings_help() -> str:
    """Every setting, server and plugin, with its description: the ``--help`` epilog."""
    lines = [
        "settings (config file key; env JUNCTION_<KEY>; --set key=value):",
        *_describe_model("", ServerSettings),
    ]
    available = discover()
    for name in sorted(available):
        try:
            plugin = load(name, available)
        except ConfigError:
            continue
        fields = _describe_model(f"{name}.", plugin.settings)
        if fields:
            lines.append(f"\n[{name}] {plugin.description}")
            lines.extend(fields)
    lines.append("\nprofiles:")
    for name, profile in PROFILES.items():
        plugins = " ".join(profile.plugins) or "no plugins"
        lines.append(f"  {name}: {plugins}\n      {profile.description}")
    return "\n".join(lines)


def _options() -> argparse.ArgumentParser:
    """Options shared by every subcommand; SUPPRESS keeps a subcommand from resetting them."""
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    add = common.add_argument
    add("--config", type=Path, help=f"TOML config file (default: {default_config_file()})")
    add("--ip", help="address to listen on")
    add("--port", type=int, help="port to listen on; 0 picks a free one")
    add("--root-dir", dest="root_dir", help="directory served by contents")
    add("--base-url", dest="base_url", help="URL prefix of every route")
    add("--default-url", dest="default_url", help="where / redirects, e.g. /tree (Notebook 7)")
    add("--token", help="shared secret for API access")
    add("--password", help="argon2 hash of the login password")
    add("--no-auth", dest="no_auth", action="store_true", help="serve WITHOUT authentication")
    add("--no-browser", dest="open_browser", action="store_false", help="do not open a browser")
    add("--profile", help="named plugin set: " + ", ".join(PROFILES))
    add("--enable", action="append", metavar="PLUGIN", help="run this plugin too")
    add("--disable", action="append", metavar="PLUGIN", help="skip this plugin of the profile")
    add(
        "--set",
        dest="assignments",
        action="append",
        metavar="KEY=VALUE",
        help="any setting, e.g. kernels.cull_idle_timeout=600",
    )
    add("--log-level", dest="log_level", choices=["debug", "info", "warning", "error"])
    add("--certfile", help="TLS certificate (PEM)")
    add("--keyfile", help="TLS private key (PEM)")
    return common


def _parser(*, describe_settings: bool = True) -> argparse.ArgumentParser:
    common = _options()
    parser = argparse.ArgumentParser(
        prog="junction",
        description="A Jupyter server on ASGI. Runs JupyterLab, a kernel gateway, or parts of "
        "either, as plugins.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        # Describing every setting imports every installed plugin: only for --help.
        epilog=settings_help() if describe_settings else None,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"junction {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", parents=[common], help="run the server (the default)")
    commands.add_parser("plugins", parents=[common], help="print the plugin graph, start order")
    config = commands.add_parser("config", parents=[common], help="inspect the configuration")
    config.add_argument("action", choices=["show"], help="show: print the effective settings")
    commands.add_parser("password", parents=[common], help="set the login password (hashed)")
    database = commands.add_parser("db", parents=[common], help="manage the database")
    database.add_argument(
        "action", choices=["upgrade"], help="upgrade: migrate every enabled plugin's tables"
    )
    _add_users_parser(commands, common)
    deploy = commands.add_parser("deploy", help="write reverse-proxy configuration")
    deploy.add_argument("target", choices=["nginx"], help="the proxy to configure")
    deploy.add_argument("--listen", default="8080", help="address nginx listens on")
    deploy.add_argument("--ui", help="host:port of the ui process")
    deploy.add_argument("--kernels", help="host:port of the kernels process")
    deploy.add_argument(
        "--replicas", metavar="HOST:PORT,...", help="identical replicas to balance over"
    )
    deploy.add_argument(
        "--kernel-affinity",
        action="store_true",
        help="with --replicas: one replica per kernel id (consistent hash)",
    )
    deploy.add_argument(
        "--proxy-base-url", dest="proxy_base_url", default="/", help="base URL both processes use"
    )
    deploy.add_argument(
        "--standalone",
        type=Path,
        metavar="DIR",
        help="write a complete nginx.conf keeping its files in DIR",
    )
    return parser


def _add_users_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """``junction users ACTION``, run by the users plugin's ``commands`` module."""
    users = commands.add_parser("users", parents=[common], help="manage users (multi-user mode)")
    actions = users.add_subparsers(dest="users_action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="create a local account")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="make the user an administrator")
    add.add_argument("--group", action="append", default=[], help="add to a group (repeatable)")
    add.add_argument(
        "--password", dest="ask_password", action="store_true", help="ask for a login password"
    )
    actions.add_parser("list", help="list every account")
    for action, text in [
        ("disable", "refuse the user's logins, sessions and tokens"),
        ("enable", "allow a disabled user again"),
        ("revoke", "end every session and revoke every token of a user"),
    ]:
        actions.add_parser(action, help=text).add_argument("name")
    token = actions.add_parser("token", help="make an API token, printed as the last line")
    token.add_argument("name")
    token.add_argument("--note", default="", help="what the token is for")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    given = vars(args)
    for attr, key in _FLAGS.items():
        if attr in given:
            layer[key] = given[attr]
    for flag in ("no_auth", "open_browser"):
        if flag in given:
            layer[flag] = given[flag]
    for assignment in given.get("assignments", []):
        layer = merge(layer, parse_assignment(assignment))
    for flag in ("enable", "disable"):
        if flag in given:
            layer[flag] = [*layer.get(flag, []), *given[flag]]
    return layer


def _masked(settings: ServerSettings) -> dict[str, Any]:
    data = settings.model_dump(mode="json")
    for key in ("token", "password", "cookie_secret"):
        if data.get(key) is not None:
            data[key] = "********"
    from junction.database import masked_url

    data["database_url"] = masked_url(settings.database_url)
    for section in data.get("plugins", {}).values():
        for key in section:
            if key.endswith(("secret", "password", "token")):
                section[key] = "********"
    return data


def _print_plugins(settings: ServerSettings) -> None:
    names = enabled_names(settings.profile, settings.enable, settings.disable)
    composition = compose(names)
    print(f"profile: {settings.profile}")
    print("start order: " + " -> ".join(p.name for p in composition.order))
    print("graph (plugin -> provider [service]):")
    edges = composition.edges()
    for user, provider, service, required in edges:
        kind = "requires" if required else "uses"
        print(f"  {user} {kind} {service} from {provider}")
    if not edges:
        print("  (no dependencies)")
    print("services:")
    for plugin in composition.order:
        provided = ", ".join(k.name for k in plugin.provides) or "-"
        print(f"  {plugin.name}: provides {provided}")
    others = sorted(set(discover()) - {p.name for p in composition.order})
    if others:
        print("installed, not enabled: " + ", ".join(others))
    print(f"applications (* = what profile {settings.profile} is for):")
    for app in coverage(settings.profile, {p.name for p in composition.order}):
        print(f"  {'*' if app.intended else ' '} {app.describe()}")
        if app.intended and app.missing:
            print(f"      enable {' and '.join(app.missing)} to serve {app.name}")


def _print_nginx(args: argparse.Namespace) -> None:
    try:
        layout = layout_from_options(
            listen=args.listen,
            base_url=args.proxy_base_url,
            ui=args.ui,
            kernels=args.kernels,
            replicas=args.replicas,
            kernel_affinity=args.kernel_affinity,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    standalone = args.standalone.resolve() if args.standalone else None
    print(nginx_config(layout, standalone=standalone), end="")


def _set_password(config_file: Path | None) -> None:
    path = config_file or default_config_file()
    first = getpass.getpass("New password: ")
    if not first or first != getpass.getpass("Verify password: "):
        raise ConfigError("passwords were empty or did not match; nothing changed")
    digest = hash_password(first)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = path.read_text().splitlines() if path.exists() else []
    kept = [line for line in lines if not line.strip().startswith("password")]
    # Top-level keys must come before the first [table] in TOML.
    kept.insert(0, f"password = {json.dumps(digest)}")
    # Created private, never world-readable even for a moment: it holds the password hash.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write("\n".join(kept) + "\n")
    print(f"password hash written to {path}")


def _upgrade_database(settings: ServerSettings) -> int:
    """``junction db upgrade``: migrate like a starting server would, print what changed."""
    import anyio

    from junction.database import Database, upgrade

    composition = compose(enabled_names(settings.profile, settings.enable, settings.disable))
    owners = [(p.name, p.tables) for p in composition.order if p.tables is not None]
    database = Database(settings.database_url)

    async def migrate() -> list[str]:
        try:
            return await upgrade(database, owners)
        finally:
            await database.close()

    try:
        migrated = anyio.run(migrate)
    except DatabaseUnavailable:
        print(f"junction: cannot reach the database {database.masked_url}", file=sys.stderr)
        return 1
    done = ", ".join(migrated) if migrated else "nothing to migrate"
    print(f"database {database.masked_url}: {done}")
    return 0


def _skip_slow_optional_imports() -> None:
    """Keep optional imports that cost seconds at startup out of the server process.

    jsonschema (used by nbformat and for settings schemas) imports ``rfc3987_syntax`` when it
    is installed, only to check the rarely used ``iri`` string formats; building its grammar
    takes 1.5-3 s and ~16 MB, over half of the server's cold start. Jupyter documents never
    use those formats, so the server runs without that checker.
    """
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]  # None blocks import


def _one_line(exc: ConfigError) -> str:
    """The error as one line: pydantic's report of invalid settings (a few lines per field,
    with links and the values, which may be secrets) shortened to ``field: problem``."""
    message, cause = str(exc), exc.__cause__
    if isinstance(cause, ValidationError) and message.endswith(str(cause)):
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in cause.errors()
        )
        message = message.removesuffix(str(cause)) + problems
    return " ".join(message.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``junction`` command; returns the exit status."""
    _skip_slow_optional_imports()
    words = sys.argv[1:] if argv is None else list(argv)
    args = _parser(describe_settings=bool({"-h", "--help"} & set(words))).parse_args(words)
    try:
        if args.command == "deploy":
            _print_nginx(args)
            return 0
        if args.command == "password":
            _set_password(getattr(args, "config", None))
            return 0
        settings = load_settings(
            config_file=getattr(args, "config", None), overrides=_overrides(args)
        )
        if args.command == "plugins":
            _print_plugins(settings)
            return 0
        if args.command == "config":
            print(json.dumps(_masked(settings), indent=2, sort_keys=True))
            return 0
        if args.command == "users":
            from junction.plugins.users.commands import run as run_users

            return run_users(settings, args)
        if args.command == "db":
            from junction.logs import configure_logging

            configure_logging(settings.log_level)
            return _upgrade_database(settings)
        from junction.app import create_app
        from junction.logs import configure_logging
        from junction.server import run

        configure_logging(settings.log_level, settings.log_format)
        app = create_app(settings)
        run(app, settings)
    except ConfigError as exc:
        print(f"junction: {_one_line(exc)}", file=sys.stderr)
        return 2
    except DatabaseUnavailable as exc:  # raised by run(): its message names the URL, masked
        print(f"junction: {' '.join(exc.message.split())}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
