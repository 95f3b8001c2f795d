"""From API paths to filesystem paths, without ever leaving the root.

An API path arrives percent-decoded (Starlette decodes the URL once; a double-encoded
``%252e%252e`` therefore arrives as the literal name ``%2e%2e``). It is checked in two
steps:

1. syntax (:func:`split_api_path`, no disk access): NUL bytes, backslashes and ``.``/``..``
   segments are refused with 400, and so are names that would turn into one of those if
   decoded once more (``%2e%2e``, ``a%2fb``): a file of that name is harmless here, but
   a proxy or client that decodes twice would read it as a traversal. Empty segments
   (``a//b``, leading or trailing ``/``) are dropped as Jupyter does, so ``/etc/passwd``
   means ``etc/passwd`` under the root;
2. resolution (:meth:`RootPaths.resolve`, in a worker thread): links are followed with
   ``realpath`` and the result must be the root or below it (else 403), and, unless
   ``allow_hidden``, neither the asked path nor the resolved one may have a segment starting
   with a dot (404 on read, 400 on write).

The check and the later open are two steps: a process that can already write inside the
root could swap a directory for a link in between. That process runs as the same user as
the server, so the check guards against requests, not against local programs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from urllib.parse import unquote

from junction.plugins.contents.service import (
    FileNotFound,
    HiddenPathRefused,
    InvalidPath,
    OutsideRoot,
)

__all__ = ["Access", "ResolvedPath", "RootPaths", "is_hidden_name", "split_api_path"]


class Access(Enum):
    """Why a path is resolved: hidden paths look missing to reads and are refused to writes."""

    READ = "read"
    WRITE = "write"


def split_api_path(path: str) -> list[str]:
    """Check the syntax of an API path and return its segments ('' gives [])."""
    if "\x00" in path:
        raise InvalidPath("invalid path: NUL bytes are not allowed")
    if "\\" in path:
        raise InvalidPath(f"invalid path {path!r}: backslashes are not allowed")
    parts = [part for part in path.split("/") if part]
    for part in parts:
        if part in (".", ".."):
            raise InvalidPath(f"invalid path {path!r}: '.' and '..' segments are not allowed")
        if "%" in part:
            decoded = unquote(part)
            if decoded in (".", "..") or any(char in decoded for char in ("/", "\\", "\x00")):
                raise InvalidPath(
                    f"invalid path {path!r}: names must not encode '.', '..', '/', '\\' or NUL"
                )
    return parts


def is_hidden_name(name: str) -> bool:
    """Whether a single name is hidden (starts with a dot)."""
    return name.startswith(".")


@dataclass(frozen=True, slots=True)
class ResolvedPath:
    """A checked API path and where it lives on disk.

    ``os_path`` has every link resolved and lies inside the root; ``api`` is the normalised
    API path ('' for the root), ``name`` its last segment.
    """

    api: str
    os_path: str

    @property
    def name(self) -> str:
        """The last segment of the API path ('' for the root)."""
        return self.api.rpartition("/")[2]

    @property
    def is_root(self) -> bool:
        """Whether this is the root directory itself."""
        return not self.api


class RootPaths:
    """Resolves API paths under one root directory; see the module docstring."""

    def __init__(self, root: str, *, allow_hidden: bool) -> None:
        self.root = os.path.realpath(root)
        self.allow_hidden = allow_hidden
        self._prefix = self.root.rstrip(os.sep) + os.sep

    def normalize(self, path: str) -> str:
        """The normalised API path (syntax checked, no disk access)."""
        return "/".join(split_api_path(path))

    def is_hidden(self, api_path: str) -> bool:
        """Whether an API path has a hidden segment (ignores ``allow_hidden``)."""
        return any(is_hidden_name(part) for part in split_api_path(api_path))

    def contains(self, os_path: str) -> bool:
        """Whether a resolved filesystem path is the root or below it."""
        return os_path == self.root or os_path.startswith(self._prefix)

    def relative(self, os_path: str) -> str:
        """The API path of a resolved filesystem path inside the root."""
        if os_path == self.root:
            return ""
        return os_path[len(self._prefix) :].replace(os.sep, "/")

    def check_hidden(self, path: str, access: Access, verb: str = "write") -> str:
        """Syntax-check ``path`` and apply the hidden rule; return the normalised path.

        No disk access, so routes can refuse early.
        """
        parts = split_api_path(path)
        api = "/".join(parts)
        if not self.allow_hidden and any(is_hidden_name(part) for part in parts):
            self._refuse_hidden(api, access, verb)
        return api

    def resolve(self, path: str, access: Access, verb: str = "write") -> ResolvedPath:
        """Check ``path`` and resolve it on disk (blocking: call from a worker thread).

        The item need not exist (a save may create it); links are followed as far as they
        exist. Raises InvalidPath, FileNotFound or HiddenPathRefused (hidden), OutsideRoot.
        """
        api = self.check_hidden(path, access, verb)
        joined = os.path.join(self.root, *api.split("/")) if api else self.root
        real = os.path.realpath(joined)
        if real != joined:  # a link on the way: where it leads must be allowed too
            self._check_target(api, real, access, verb)
        return ResolvedPath(api=api, os_path=real)

    def resolve_entry(self, path: str, access: Access, verb: str = "write") -> ResolvedPath:
        """Like :meth:`resolve`, but a link as the last segment stays a link.

        For operations on the directory entry itself (rename, delete): moving a link must
        not move what it points to. A link leading outside the root is still refused.
        """
        api = self.check_hidden(path, access, verb)
        if not api:
            return ResolvedPath(api="", os_path=self.root)
        parent_api, _, name = api.rpartition("/")
        parent = self.resolve(parent_api, access, verb)
        os_path = os.path.join(parent.os_path, name)
        if os.path.islink(os_path):
            self._check_target(api, os.path.realpath(os_path), access, verb)
        return ResolvedPath(api=api, os_path=os_path)

    def link_target_allowed(self, os_path: str) -> bool:
        """Whether a link at ``os_path`` resolves inside the root to a non-hidden place."""
        real = os.path.realpath(os_path)
        if not self.contains(real):
            return False
        if self.allow_hidden:
            return True
        return not any(is_hidden_name(part) for part in self.relative(real).split("/") if part)

    def _check_target(self, api: str, real: str, access: Access, verb: str) -> None:
        if not self.contains(real):
            raise OutsideRoot(f"{api!r} leads outside the root directory through a link")
        if not self.allow_hidden and any(
            is_hidden_name(part) for part in self.relative(real).split("/") if part
        ):
            self._refuse_hidden(api, access, verb)

    @staticmethod
    def _refuse_hidden(api: str, access: Access, verb: str) -> None:
        if access is Access.READ:
            raise FileNotFound(f"file or directory {api!r} does not exist")
        raise HiddenPathRefused(f"cannot {verb} hidden file or directory {api!r}")
