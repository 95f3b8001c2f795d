"""``junction users ...``: administer accounts against the configured database.

The command line itself is declared in :mod:`junction.cli` (so ``junction --help`` need not
import this plugin); this module runs the actions.

Runs in its own process: the tables are migrated first (as a starting server would), and
changes reach running servers through the database, within their
``users.revocation_poll_seconds`` (the credentials generation, ``directory.py``).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

import anyio

from junction.database import Database, upgrade
from junction.errors import ConfigError, HTTPError
from junction.plugins.users.directory import UserDirectory
from junction.plugins.users.settings import UsersSettings
from junction.settings import ServerSettings

__all__ = ["run"]


def run(settings: ServerSettings, args: argparse.Namespace) -> int:
    """Run one ``junction users`` action; returns the exit status."""
    from junction.plugins.users import plugin

    raw = settings.plugins.get("users", {})
    users_settings = plugin.load_settings(dict(raw))
    assert isinstance(users_settings, UsersSettings)
    password = None
    if getattr(args, "ask_password", False):
        password = getpass.getpass("Password: ")
        if not password or password != getpass.getpass("Verify password: "):
            raise ConfigError("passwords were empty or did not match; nothing changed")

    async def main() -> int:
        database = Database(settings.database_url)
        try:
            assert plugin.tables is not None
            await upgrade(database, [("users", plugin.tables)])
            directory = UserDirectory(database, users_settings)
            try:
                return await _act(directory, args, password)
            except HTTPError as exc:
                print(f"junction: {exc.message}", file=sys.stderr)
                return 1
        finally:
            await database.close()

    return anyio.run(main)


async def _act(directory: UserDirectory, args: argparse.Namespace, password: str | None) -> int:
    action: str = args.users_action
    if action == "add":
        account = await directory.add_user(
            args.name, admin=args.admin, groups=args.group, password=password
        )
        print(f"added {account.name}" + (" (administrator)" if account.admin else ""))
    elif action == "list":
        rows: list[Any] = await directory.users()
        for account in rows:
            flags = [
                "admin" if account.admin else "",
                "disabled" if not account.enabled else "",
                account.source,
            ]
            groups = ",".join(account.groups) or "-"
            print(
                f"{account.name}\troles={','.join(account.roles)}\tgroups={groups}\t"
                + " ".join(flag for flag in flags if flag)
            )
    elif action in ("disable", "enable"):
        await directory.set_enabled(args.name, action == "enable")
        print(f"{action}d {args.name}")
    elif action == "token":
        token, row = await directory.issue_token(args.name, note=args.note)
        print(f"API token {row.id} for {args.name} (shown once; keep it secret):")
        print(token)
    elif action == "revoke":
        sessions, tokens = await directory.revoke(args.name)
        print(f"revoked {sessions} sessions and {tokens} tokens of {args.name}")
    return 0
