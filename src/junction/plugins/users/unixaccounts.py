"""Per-user Unix accounts (``users.unix_accounts``): each user's kernels and terminals run
under an account of their own, so the operating system keeps their files apart.

:class:`UnixAccounts` maps a Junction user to an account through
``users.unix_account_template``, creates it with ``useradd`` when it is missing (and
``users.unix_create_accounts`` allows it), hands the user's home folder under the root to
it (mode 0700), and answers the kernels and terminals plugins' :func:`~junction.childenv.run_as`
for the request's user.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import anyio

from junction.auth.identity import Authenticator
from junction.auth.middleware import REQUEST_USER
from junction.childenv import RunAs
from junction.errors import ConfigError, Forbidden
from junction.plugins.users.homes import Homes
from junction.plugins.users.settings import UsersSettings

__all__ = ["ACCOUNT_NAME", "UnixAccounts", "check_root"]

log = logging.getLogger("junction.users")

ACCOUNT_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
"""Unix account names Junction maps users to or creates."""


def check_root(euid: int | None = None) -> None:
    """Raise ConfigError unless the server runs as root (``euid``: the process's, by default)."""
    if (os.geteuid() if euid is None else euid) != 0:
        raise ConfigError(
            "users.unix_accounts needs the server to run as root, to start kernels and "
            "terminals as each user's Unix account; run it as root or turn the setting off"
        )


class UnixAccounts:
    """Resolves the Unix account of the request's user (see the module docstring).

    An async context manager: entering makes the directory of the kernels' connection
    files; exiting removes it.
    """

    def __init__(self, settings: UsersSettings, homes: Homes, auth: Authenticator) -> None:
        self.settings = settings
        self.homes = homes
        self.auth = auth
        self.connection_dir = Path()
        self._lock = anyio.Lock()
        self._ready: dict[str, RunAs] = {}

    async def __aenter__(self) -> UnixAccounts:
        # Root-owned, traversable but not listable: each connection file in it is chowned
        # to its kernel's account, and no account can plant files in it.
        path = await anyio.to_thread.run_sync(lambda: tempfile.mkdtemp(prefix="junction-kernels-"))
        os.chmod(path, 0o711)  # noqa: S103 (traversable by the accounts, not listable)
        self.connection_dir = Path(path)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await anyio.to_thread.run_sync(
            lambda: shutil.rmtree(self.connection_dir, ignore_errors=True)
        )

    def account_name(self, username: str) -> str:
        """The account ``username`` maps to; raises Forbidden when it is not a valid name."""
        name = self.settings.unix_account_template.replace("{username}", username)
        if not ACCOUNT_NAME.fullmatch(name):
            raise Forbidden(
                f"user {username!r} maps to the Unix account name {name!r}, which is not "
                "valid (lowercase letters, digits, '_' and '-', at most 32, not starting with "
                "a digit or '-'); kernels and terminals cannot run for this user",
                reason="Invalid Unix account",
            )
        return name

    async def resolve(self) -> RunAs | None:
        """The account of the request's user; None outside requests and for the server's
        own token (whose holder runs the server). Raises Forbidden when there is none."""
        user = REQUEST_USER.get()
        if user is None or user.username == self.auth.user.username:
            return None
        name = self.account_name(user.username)
        async with self._lock:
            account = self._ready.get(user.username)
            if account is None:
                account = await anyio.to_thread.run_sync(self._prepare, user.username, name)
                self._ready[user.username] = account
        return account

    def _prepare(self, username: str, name: str) -> RunAs:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            if not self.settings.unix_create_accounts:
                raise Forbidden(
                    f"the Unix account {name!r} of user {username!r} does not exist and "
                    "users.unix_create_accounts is off",
                    reason="No Unix account",
                ) from None
            entry = _create(name)
        if entry.pw_uid == 0 or entry.pw_gid == 0:
            raise Forbidden(
                f"user {username!r} maps to the Unix account {name!r}, which has root's "
                "privileges; kernels and terminals never run as root for a user",
                reason="Invalid Unix account",
            )
        groups = tuple(g for g in os.getgrouplist(name, entry.pw_gid) if g != entry.pw_gid)
        folder = self.homes.root / self.homes.template.replace("{username}", username)
        folder.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
        os.chown(folder, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
        os.chmod(folder, 0o700, follow_symlinks=False)
        log.info("user %s runs kernels and terminals as Unix account %s", username, name)
        return RunAs(
            name=name,
            uid=entry.pw_uid,
            gid=entry.pw_gid,
            groups=groups,
            home=entry.pw_dir,
            shell=entry.pw_shell or "/bin/sh",
            connection_dir=self.connection_dir,
        )


def _create(name: str) -> pwd.struct_passwd:
    """Create the account (with its own group and a home of its own) and return it."""
    done = subprocess.run(
        ["useradd", "--create-home", "--shell", "/bin/bash", "--user-group", name],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 and not _exists(name):
        log.error("useradd %s failed: %s", name, done.stderr.strip())
        raise Forbidden(
            f"the Unix account {name!r} could not be created: {done.stderr.strip()}",
            reason="No Unix account",
        )
    log.warning("created Unix account %s", name)
    return pwd.getpwnam(name)


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
