"""Directory listings: whole, or one page at a time, fast on 100,000 entries.

Everything here blocks and runs in a worker thread. The directory is opened once and the
descriptor checked to be inside the root (``RootPaths.check_fd``); names and entries come
from that descriptor. A listing is built in two passes:

1. *names*: ``os.scandir`` minus hidden names, names matching ``hide_globs``, names that
   are not valid UTF-8 (they cannot be sent as JSON), and entries that are neither regular
   files nor directories (sockets, pipes, devices) nor links leading inside the root to
   one. The kind comes with each entry (``d_type``, no system call on most filesystems);
   only links are resolved, by the kernel (:meth:`RootPaths.link_target`: an ``O_PATH``
   open, an ``fstat`` and the descriptor's name; a loop fails at once whatever the link's
   text) and at most once per request. These are the *listed names*: the ``total`` of a
   page counts them, so it is the sum of the page lengths;
2. *entries*: one ``lstat`` per name relative to an open directory descriptor (a link's
   target comes from the verdict of pass 1) and one dict.

Pages come in one of two orders (:data:`~junction.plugins.contents.service.PageOrder`):

- *name* (the default): sorted by name (code point order) and addressed by a cursor:
  ``after=<name>`` returns the names that sort after it, so a page stays correct while files
  come and go. Every page reads every name (below, for how that stays cheap).
- *directory*: the order ``os.scandir`` returns the names in (``scanning.py``), read only
  as far as the page needs, one page plus one name, and only the page's entries ``stat``-ed.
  The cursor is opaque: the position the page ended at and its last name. Paging through
  an unchanged directory returns every entry exactly once, in the same order as a whole
  scan; if the directory changes between pages, the next page starts after the last name
  wherever it now is, or at the old position when that name is gone, so entries added or
  removed meanwhile may be missed or repeated (as with ``readdir``). ``total`` is known
  only when the scan reached the end of the directory, else None. A page at position *p*
  reads *p* entries to get there (no stat but for links), so late pages of huge directories
  cost more.

A caller that may see only some entries (a user in a folder above their home) passes a
``visible`` filter over API paths: it is applied to the names before paging, so a page
holds up to ``limit`` of those entries and its ``next`` cursor (in both orders: positions
count visible names only) and ``total`` count nothing else. In multi-user mode every
listing also gets an ``allowed`` check of where links lead (an API path): a link the
caller could not read through is judged like a broken one, left out of the names before
paging, so neither the entries nor ``total`` tell of it. It costs one check per link per
request; a directory without links never calls it.

By name, the first page of a cold directory does not sort everything: it picks the
smallest names with a heap. Large directories (1000+ names) keep their name list in a
small LRU cache, sorted on the second use, so later pages cost one ``bisect`` plus one
``stat`` per entry. A cached list is trusted only while the directory's
``(st_dev, st_ino, st_mtime_ns)`` is unchanged, and only directories last modified more
than two seconds ago are cached: the kernel's coarse timestamp clock could otherwise give
two changes within one tick the same ``mtime``. A link's target can change without its
directory changing, so the cache holds links unjudged (with the names of files and
directories, sockets and the like left out) and every request judges them again: a link
that was broken when the list was cached is listed once its target appears.
"""

from __future__ import annotations

import bisect
import fnmatch
import heapq
import os
import re
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from junction.plugins.contents.entries import NOTEBOOK_SUFFIX, ModelFactory
from junction.plugins.contents.models import Model
from junction.plugins.contents.paths import Access, RootPaths
from junction.plugins.contents.scanning import NameScan, ScanCursor, resume
from junction.plugins.contents.service import LinkCheck, PageOrder

__all__ = ["DirectoryLister", "NameFilter", "Page"]

CACHE_MIN_NAMES = 1000
CACHE_MIN_AGE_NS = 2_000_000_000


class NameFilter:
    """Decides which names a listing shows: ``allow_hidden`` and ``hide_globs``.

    Globs are split by shape so the common ones cost a C-level call per name: exact names
    go to a set, ``*suffix`` patterns to one ``str.endswith`` tuple, the rest to one regex.
    """

    def __init__(self, *, allow_hidden: bool, hide_globs: Sequence[str]) -> None:
        self.allow_hidden = allow_hidden
        exact: set[str] = set()
        suffixes: list[str] = []
        others: list[str] = []
        for glob in hide_globs:
            if not any(char in glob for char in "*?["):
                exact.add(glob)
            elif glob.startswith("*") and not any(char in glob[1:] for char in "*?["):
                suffixes.append(glob[1:])
            else:
                others.append(fnmatch.translate(glob))
        self.exact = frozenset(exact)
        self.suffixes = tuple(suffixes)
        self.pattern = re.compile("|".join(others)) if others else None

    def shown(self, name: str) -> bool:
        """Whether one name appears in listings."""
        return bool(self.visible([name]))

    def visible(self, names: Iterable[str]) -> list[str]:
        """The names that appear in listings, in the order given (one pass per check kind
        that is configured; the common configuration is a single comprehension)."""
        exact, suffixes, utf8 = self.exact, self.suffixes, _is_utf8
        if not self.allow_hidden:
            shown = [
                name
                for name in names
                if name[0] != "."
                and name not in exact
                and not name.endswith(suffixes)
                and (name.isascii() or utf8(name))
            ]
        else:
            shown = [
                name
                for name in names
                if name not in exact
                and not name.endswith(suffixes)
                and (name.isascii() or utf8(name))
            ]
        if self.pattern is not None:
            match = self.pattern.match
            shown = [name for name in shown if match(name) is None]
        return shown


def _is_utf8(name: str) -> bool:
    try:
        name.encode()
    except UnicodeEncodeError:  # undecodable bytes from the disk (surrogate escapes)
        return False
    return True


@dataclass(slots=True)
class _Cached:
    key: tuple[int, int, int]
    names: list[str]
    links: frozenset[str]
    sorted: bool


_Target = tuple[os.stat_result, str]
"""Where a listed link leads: the target's ``stat`` and real path."""


class _Links:
    """The links of one open directory, each judged at most once per request.

    A link is listed when it leads inside the root, to a place that is not hidden, to a
    regular file or a directory (:meth:`RootPaths.link_target`: the kernel follows it), and
    that the caller's ``allowed`` check (if any) lets them see.
    """

    __slots__ = ("_allowed", "_fd", "_os_dir", "_paths", "_verdicts")

    def __init__(
        self, paths: RootPaths, fd: int, os_dir: str, allowed: LinkCheck | None = None
    ) -> None:
        self._paths = paths
        self._fd = fd
        self._os_dir = os_dir
        self._allowed = allowed
        self._verdicts: dict[str, _Target | None] = {}

    def target(self, name: str) -> _Target | None:
        """Where the link ``name`` leads if it is listed, else None."""
        try:
            return self._verdicts[name]
        except KeyError:
            pass
        verdict = self._paths.link_target(self._fd, name, self._os_dir)
        if verdict is not None:
            mode = verdict[0].st_mode
            allowed = self._allowed
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)) or (
                allowed is not None and not allowed(self._paths.relative(verdict[1]))
            ):
                verdict = None
        self._verdicts[name] = verdict
        return verdict


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing: its entries, the cursor of the next page, the name count
    (None when unknown: a directory-order page that did not read the directory to its end)."""

    entries: list[Model]
    next: str | None
    total: int | None


class DirectoryLister:
    """Lists directories under one root; see the module docstring."""

    def __init__(
        self,
        paths: RootPaths,
        factory: ModelFactory,
        names: NameFilter,
        cache_dirs: int,
        cache_min_names: int = CACHE_MIN_NAMES,
    ) -> None:
        self.paths = paths
        self.factory = factory
        self.filter = names
        self.cache_dirs = cache_dirs
        self.cache_min_names = cache_min_names
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._lock = threading.Lock()

    def listing(self, os_dir: str, api_dir: str, allowed: LinkCheck | None = None) -> list[Model]:
        """Every visible entry of a directory, sorted by name; with ``allowed``, only the
        links it lets through (given the API paths they lead to)."""
        with self.paths.directory(os_dir, api_dir, Access.READ, listing=True) as fd:
            return self.listing_at(fd, os_dir, api_dir, allowed)

    def listing_at(
        self, fd: int, os_dir: str, api_dir: str, allowed: LinkCheck | None = None
    ) -> list[Model]:
        """:meth:`listing` of a directory already open (and checked) as ``fd``."""
        names, links, is_sorted = self._names(fd, os_dir)
        judge = _Links(self.paths, fd, os_dir, allowed)
        names = _listed(names, links, judge)
        if not is_sorted:
            names = sorted(names)
        return self._entries(fd, api_dir, names, judge)

    def page(
        self,
        os_dir: str,
        api_dir: str,
        limit: int,
        after: str | None,
        visible: Callable[[list[str]], list[str]] | None = None,
        order: PageOrder = "name",
        allowed: LinkCheck | None = None,
    ) -> Page:
        """Up to ``limit`` entries in ``order`` following the cursor ``after``: by name, the
        names sorting after it; by directory order, where the page that gave the cursor
        ended. With ``visible``, only entries whose API paths it keeps; with ``allowed``, only
        the links it lets through (the cursor and the total count those alone). Raises
        InvalidCursor for a malformed directory-order cursor."""
        with self.paths.directory(os_dir, api_dir, Access.READ, listing=True) as fd:
            return self.page_at(fd, os_dir, api_dir, limit, after, visible, order, allowed)

    def page_at(
        self,
        fd: int,
        os_dir: str,
        api_dir: str,
        limit: int,
        after: str | None,
        visible: Callable[[list[str]], list[str]] | None = None,
        order: PageOrder = "name",
        allowed: LinkCheck | None = None,
    ) -> Page:
        """:meth:`page` of a directory already open (and checked) as ``fd``."""
        if order == "directory":
            return self._page_scanned(fd, os_dir, api_dir, limit, after, visible, allowed)
        names, links, is_sorted = self._names(fd, os_dir)
        if visible is not None:  # a new list: the cached one stays whole
            prefix = api_dir + "/" if api_dir else ""
            shown = set(visible([prefix + name for name in names]))
            names = [name for name in names if prefix + name in shown]
            links = frozenset(name for name in links if prefix + name in shown)
        judge = _Links(self.paths, fd, os_dir, allowed)
        names = _listed(names, links, judge)
        if is_sorted:
            return self._page_sorted(fd, api_dir, names, limit, after, judge)
        return self._page_unsorted(fd, api_dir, names, limit, after, judge)

    def _page_scanned(
        self,
        fd: int,
        os_dir: str,
        api_dir: str,
        limit: int,
        after: str | None,
        visible: Callable[[list[str]], list[str]] | None,
        allowed: LinkCheck | None,
    ) -> Page:
        """A directory-order page: see ``scanning.py``."""
        cursor = ScanCursor.decode(after) if after is not None else None
        prefix = api_dir + "/" if api_dir else ""
        judge = _Links(self.paths, fd, os_dir, allowed)

        def keep(raw: list[os.DirEntry[str]]) -> list[str]:
            names, links = self._kinds(raw)
            if visible is not None and names:
                shown = set(visible([prefix + name for name in names]))
                names = [name for name in names if prefix + name in shown]
                links = frozenset(name for name in links if prefix + name in shown)
            return _listed(names, links, judge)

        with os.scandir(fd) as found:
            scan = NameScan(found, keep)
            if cursor is not None:
                resume(scan, cursor)
            entries: list[Model] = []
            while len(entries) < limit:
                names = scan.take(limit - len(entries))
                if not names:
                    break
                entries.extend(self._entries(fd, api_dir, names, judge))
            # A full page took exactly ``limit`` names since its last dropped one (removed
            # since it was read): its last entry is the last name taken.
            following = None
            if len(entries) == limit and scan.more():
                following = ScanCursor(scan.position, entries[-1]["name"]).encode()
            return Page(entries, following, scan.read if scan.exhausted else None)

    def _page_sorted(
        self,
        fd: int,
        api_dir: str,
        names: list[str],
        limit: int,
        after: str | None,
        judge: _Links,
    ) -> Page:
        index = bisect.bisect_right(names, after) if after is not None else 0
        entries: list[Model] = []
        while len(entries) < limit and index < len(names):
            batch = names[index : index + limit - len(entries)]
            index += len(batch)
            entries.extend(self._entries(fd, api_dir, batch, judge))
        more = index < len(names)
        return Page(entries, entries[-1]["name"] if more and entries else None, len(names))

    def _page_unsorted(
        self,
        fd: int,
        api_dir: str,
        names: list[str],
        limit: int,
        after: str | None,
        judge: _Links,
    ) -> Page:
        pool = names if after is None else [name for name in names if name > after]
        entries: list[Model] = []
        taken = 0
        while len(entries) < limit and taken < len(pool):
            batch = heapq.nsmallest(limit - len(entries), pool)
            taken += len(batch)
            entries.extend(self._entries(fd, api_dir, batch, judge))
            if len(entries) < limit and taken < len(pool):
                last = batch[-1]
                pool = [name for name in pool if name > last]
                taken = 0
        more = taken < len(pool)
        return Page(entries, entries[-1]["name"] if more and entries else None, len(names))

    def _names(self, fd: int, os_dir: str) -> tuple[list[str], frozenset[str], bool]:
        """Candidate names of the open directory ``fd`` (at ``os_dir``, the cache key): names
        the name filter shows of regular files, directories and links; the links among them
        (judged by the caller, on every request); whether the names are sorted (from the
        cache)."""
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino, st.st_mtime_ns)
        if self.cache_dirs:
            with self._lock:
                cached = self._cache.get(os_dir)
                if cached is not None and cached.key == key:
                    self._cache.move_to_end(os_dir)
                    if cached.sorted:
                        return cached.names, cached.links, True
                else:
                    cached = None
            if cached is not None:  # second use: sort once, outside the lock
                ordered = sorted(cached.names)
                with self._lock:
                    cached.names, cached.sorted = ordered, True
                return ordered, cached.links, True
        with os.scandir(fd) as found:
            names, links = self._kinds(list(found))
        if (
            self.cache_dirs
            and len(names) >= self.cache_min_names
            and time.time_ns() - st.st_mtime_ns > CACHE_MIN_AGE_NS
        ):
            with self._lock:
                self._cache[os_dir] = _Cached(key, names, links, sorted=False)
                self._cache.move_to_end(os_dir)
                while len(self._cache) > self.cache_dirs:
                    self._cache.popitem(last=False)
        return names, links, False

    def _kinds(self, entries: list[os.DirEntry[str]]) -> tuple[list[str], frozenset[str]]:
        """The names among ``entries`` the name filter shows of regular files, directories
        and links, in their order, and the links among them (not judged here). Sockets,
        pipes and devices are left out.

        Called for every entry of a directory (a name-ordered page), so the common case (no
        link, nothing special) is one comprehension asking each entry its ``d_type``.
        """
        try:
            names = [
                entry.name
                for entry in entries
                if entry.is_file(follow_symlinks=False) or entry.is_dir(follow_symlinks=False)
            ]
            if len(names) == len(entries):
                return self.filter.visible(names), frozenset()
            names, links = [], []
            for entry in entries:
                if entry.is_file(follow_symlinks=False) or entry.is_dir(follow_symlinks=False):
                    names.append(entry.name)
                elif entry.is_symlink():
                    names.append(entry.name)
                    links.append(entry.name)
        except OSError:  # an entry without d_type could not be lstat-ed: judge one by one
            names, links = [], []
            for entry in entries:
                try:
                    if entry.is_file(follow_symlinks=False) or entry.is_dir(follow_symlinks=False):
                        names.append(entry.name)
                    elif entry.is_symlink():
                        names.append(entry.name)
                        links.append(entry.name)
                except OSError:
                    continue
        return self.filter.visible(names), frozenset(self.filter.visible(links))

    def _entries(self, fd: int, api_dir: str, names: Iterable[str], judge: _Links) -> list[Model]:
        """Models of the named entries of the open directory ``fd``, skipping vanished ones
        and what is no longer listed (a link whose target moved out of the root, a file
        replaced by a socket) since the names were read.

        The hot loop of a listing: the model is built inline with locals bound up front
        (the same model as :meth:`ModelFactory.model`, at about half the cost).
        """
        prefix = api_dir + "/" if api_dir else ""
        target = judge.target
        factory = self.factory
        iso, mimetype = factory.iso, factory.mimetype
        seconds, second = factory._seconds, factory.second
        writable = (lambda st: True) if factory.euid == 0 else factory.writable
        lstat = os.lstat
        is_link, is_dir, is_reg = stat.S_ISLNK, stat.S_ISDIR, stat.S_ISREG
        entries: list[Model] = []
        append = entries.append
        for name in names:
            try:
                st = lstat(name, dir_fd=fd)
                mode = st.st_mode
                if is_link(mode):
                    verdict = target(name)
                    if verdict is None:
                        continue
                    st = verdict[0]
                    mode = st.st_mode
            except OSError:  # removed meanwhile, a broken link, a loop: not listed
                continue
            if is_reg(mode):
                size = st.st_size
                if name.endswith(NOTEBOOK_SUFFIX):
                    kind, mime = "notebook", None
                else:
                    kind, mime = "file", mimetype(name)
            elif is_dir(mode):
                kind, size, mime = "directory", None, None
            else:
                continue  # sockets, pipes, devices
            # ModelFactory.iso, inlined: two calls per entry add up on 100,000 entries
            changed, modified = st.st_ctime_ns, st.st_mtime_ns
            if changed >= 1_000_000_000 and modified >= 1_000_000_000:
                digits = str(changed)
                stamp = seconds.get(digits[:-9]) or second(digits[:-9])
                created = stamp + digits[-9:-3] + "Z"
                digits = str(modified)
                stamp = seconds.get(digits[:-9]) or second(digits[:-9])
                last_modified = stamp + digits[-9:-3] + "Z"
            else:
                created, last_modified = iso(changed), iso(modified)
            append(
                {
                    "name": name,
                    "path": prefix + name,
                    "type": kind,
                    "writable": writable(st),
                    "created": created,
                    "last_modified": last_modified,
                    "size": size,
                    "mimetype": mime,
                    "format": None,
                    "content": None,
                    "hash": None,
                    "hash_algorithm": None,
                }
            )
        return entries


def _listed(names: list[str], links: frozenset[str], judge: _Links) -> list[str]:
    """``names`` without the links that are not listed (in their order); ``links`` are the
    links among ``names``."""
    if not links:
        return names
    dropped = {name for name in links if judge.target(name) is None}
    if not dropped:
        return names
    return [name for name in names if name not in dropped]
