"""The pool of prespawned kernels (``kernels.prespawn_count``).

Pool kernels are of the default spec (``force_kernel_name`` when set), started in the root
directory with the server's environment, and seeded (``seed_uri``) before they count as
ready. They belong to nobody: they are not listed, not culled, and not part of the server's
activity until a start takes one.

The pool is refilled one kernel at a time by :meth:`KernelPool.run`, up to the size its owner
allows right now (``prespawn_count``, less when ``max_kernels`` leaves no room). A kernel that
fails to start or to run the seed is logged and the next attempt waits, 1 s after the first
failure in a row, doubling up to a minute, so a broken spec or seed never spins.

A start takes a ready kernel if there is one, else the kernel warming up (it is further
along than a new one would be), and waits for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import anyio.abc

from junction.plugins.kernels.kernel import ManagedKernel

__all__ = ["KernelPool", "PoolEntry"]

log = logging.getLogger("junction.kernels")

MAX_BACKOFF = 60.0
"""Longest wait, in seconds, between attempts of a pool that keeps failing."""


@dataclass(eq=False)
class PoolEntry:
    """A pool kernel: warming up until ``done`` is set, then ready (or failed, ``error``).

    ``claimed``: a start took it; ``discarded``: the pool let it go (evicted, died, or the
    server is stopping) and someone else stops it.
    """

    kernel: ManagedKernel
    done: anyio.Event = field(default_factory=anyio.Event)
    error: BaseException | None = None
    claimed: bool = False
    discarded: bool = False

    @property
    def ready(self) -> bool:
        """Started and seeded."""
        return self.done.is_set() and self.error is None


class KernelPool:
    """Warm kernels waiting for starts. See the module docstring.

    ``create`` makes a (not yet started) kernel of the pool's spec; ``launch`` starts and
    seeds one; ``capacity`` says how many pool kernels are allowed right now.
    """

    def __init__(
        self,
        *,
        create: Callable[[], Awaitable[ManagedKernel]],
        launch: Callable[[ManagedKernel], Awaitable[None]],
        capacity: Callable[[], int],
        task_group: anyio.abc.TaskGroup,
    ) -> None:
        self._create = create
        self._launch = launch
        self._capacity = capacity
        self._task_group = task_group
        self.entries: list[PoolEntry] = []
        self._wakeup = anyio.Event()
        self._failures = 0
        self._retry_at = 0.0

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def ready_count(self) -> int:
        """Kernels ready to be handed out."""
        return sum(1 for entry in self.entries if entry.ready)

    def changed(self) -> None:
        """Something the pool's size depends on changed: look again."""
        self._wakeup.set()

    # -- taking and letting go ----------------------------------------------------------------

    def take(self, name: str) -> PoolEntry | None:
        """Claim a kernel of spec ``name``: a ready one, else the oldest warming one."""
        matching = [e for e in self.entries if e.kernel.name == name and e.error is None]
        if not matching:
            return None
        entry = next((e for e in matching if e.ready), matching[0])
        self.entries.remove(entry)
        entry.claimed = True
        self.changed()
        return entry

    def give_back(self, entry: PoolEntry) -> None:
        """Undo :meth:`take` (the start that took it was cancelled)."""
        if entry.error is None and not entry.discarded and entry.kernel.phase != "stopping":
            entry.claimed = False
            self.entries.insert(0, entry)
            self.changed()

    def evict(self) -> ManagedKernel | None:
        """Let one kernel go to make room for a client's (a warming one first); the caller
        stops it."""
        if not self.entries:
            return None
        warming = [entry for entry in self.entries if not entry.done.is_set()]
        entry = warming[-1] if warming else self.entries[-1]
        return self.discard(entry)

    def discard(self, entry: PoolEntry) -> ManagedKernel:
        """Forget ``entry``; the caller stops its kernel."""
        if entry in self.entries:
            self.entries.remove(entry)
        entry.discarded = True
        self.changed()
        return entry.kernel

    def discard_all(self) -> list[ManagedKernel]:
        """Forget every kernel (the server is stopping); the caller stops them."""
        return [self.discard(entry) for entry in list(self.entries)]

    # -- filling ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Keep the pool full, one kernel at a time, backing off after failures."""
        while True:
            self._wakeup = anyio.Event()
            if len(self.entries) >= self._capacity():
                await self._wakeup.wait()
                continue
            pause = self._retry_at - time.monotonic()
            if pause > 0:
                with anyio.move_on_after(pause):
                    await self._wakeup.wait()
                continue
            entry = await self._start_one()
            if entry is not None:
                await entry.done.wait()

    async def _start_one(self) -> PoolEntry | None:
        try:
            kernel = await self._create()
        except Exception as exc:
            self._failed(exc)
            return None
        entry = PoolEntry(kernel)
        self.entries.append(entry)
        self._task_group.start_soon(self._warm, entry)
        return entry

    async def _warm(self, entry: PoolEntry) -> None:
        try:
            await self._launch(entry.kernel)
        except Exception as exc:
            entry.error = exc
            if entry in self.entries:
                self.entries.remove(entry)
            if not entry.discarded:
                self._failed(exc)
        else:
            self._failures = 0
            entry.done.set()
            if not entry.claimed and not entry.discarded:
                log.info(
                    "kernel pool: kernel %s (%s) is ready; %d of %d ready",
                    entry.kernel.id,
                    entry.kernel.name,
                    self.ready_count,
                    self._capacity(),
                )
        finally:
            entry.done.set()
            self.changed()

    def _failed(self, exc: BaseException) -> None:
        self._failures += 1
        pause = min(MAX_BACKOFF, 2.0 ** (self._failures - 1))
        self._retry_at = time.monotonic() + pause
        log.error(
            "kernel pool: a kernel failed to start (%s); %d failure(s) in a row, next try in "
            "%.0f s",
            exc,
            self._failures,
            pause,
        )
