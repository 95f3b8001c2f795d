"""The environment Junction hands to the processes it starts (kernels, terminals, apps).

Junction's own settings travel as ``JUNCTION_*`` variables, the server token and cookie
secret among them. A child never needs them, and a kernel or shell that could read them could
act as the server, so they are left out of every child's environment.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["SETTINGS_PREFIX", "RunAs", "child_environment", "run_as", "set_account_resolver"]

SETTINGS_PREFIX = "JUNCTION_"


def child_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``environ`` (the server's, by default) without Junction's own settings."""
    source = os.environ if environ is None else environ
    return {key: value for key, value in source.items() if not key.startswith(SETTINGS_PREFIX)}


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
