"""The environment Junction hands to the processes it starts (kernels, terminals, apps).

Junction's own settings travel as ``JUNCTION_*`` variables, the server token and cookie
secret among them. A child never needs them, and a kernel or shell that could read them could
act as the server, so they are left out of every child's environment.

So are the well-known variables that carry a database's password, which a deployment may
set for the server or for tools beside it (:data:`SECRET_VARIABLES`): ``POSTGRES_PASSWORD``,
``PGPASSWORD``, ``DATABASE_URL``, ``MYSQL_PASSWORD``, ``MYSQL_ROOT_PASSWORD``,
``MARIADB_PASSWORD`` and ``MARIADB_ROOT_PASSWORD``. Only these exact names: other variables
ending in ``_PASSWORD`` or ``_TOKEN`` may be meant for users' code and are kept. A secret the
server needs belongs in a ``JUNCTION_*`` variable (``JUNCTION_DATABASE_URL``).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "SECRET_VARIABLES",
    "SETTINGS_PREFIX",
    "RunAs",
    "child_environment",
    "run_as",
    "set_account_resolver",
]

SETTINGS_PREFIX = "JUNCTION_"

SECRET_VARIABLES = frozenset(
    {
        "POSTGRES_PASSWORD",
        "PGPASSWORD",
        "DATABASE_URL",
        "MYSQL_PASSWORD",
        "MYSQL_ROOT_PASSWORD",
        "MARIADB_PASSWORD",
        "MARIADB_ROOT_PASSWORD",
    }
)
"""Variables holding a database's password, never handed to a child (see the module)."""


def child_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``environ`` (the server's, by default) without Junction's own settings and
    :data:`SECRET_VARIABLES`."""
    source = os.environ if environ is None else environ
    return {
        key: value
        for key, value in source.items()
        if not key.startswith(SETTINGS_PREFIX) and key not in SECRET_VARIABLES
    }


@dataclass(frozen=True)
class RunAs:
    """The Unix account a child process runs under (``users.unix_accounts``).

    ``connection_dir`` is a directory the account can reach where a kernel's connection
    file is written for it.
    """

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    shell: str
    connection_dir: Path

    def environment(self) -> dict[str, str]:
        """``HOME``, ``USER``, ``LOGNAME`` and ``SHELL`` of the account."""
        return {"HOME": self.home, "USER": self.name, "LOGNAME": self.name, "SHELL": self.shell}

    def popen_options(self) -> dict[str, Any]:
        """``subprocess.Popen`` arguments that start the process as the account, umask 077."""
        return {
            "user": self.uid,
            "group": self.gid,
            "extra_groups": list(self.groups),
            "umask": 0o077,
        }

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` run through ``setpriv`` as the account (for spawners without Popen)."""
        groups = ",".join(str(g) for g in self.groups) if self.groups else None
        return [
            "setpriv",
            f"--reuid={self.uid}",
            f"--regid={self.gid}",
            f"--groups={groups}" if groups else "--clear-groups",
            "--",
            "sh",
            "-c",
            'umask 077 && exec "$@"',
            argv[0],
            *argv,
        ]


AccountResolver = Callable[[], Awaitable[RunAs | None]]
_resolvers: list[AccountResolver] = []


def set_account_resolver(resolver: AccountResolver | None) -> None:
    """Install (or, with None, remove) what :func:`run_as` asks."""
    _resolvers.clear()
    if resolver is not None:
        _resolvers.append(resolver)


async def run_as() -> RunAs | None:
    """The account the current request's processes run under; None: the server's own."""
    if not _resolvers:
        return None
    return await _resolvers[0]()
