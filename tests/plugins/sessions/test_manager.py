"""StoredSessions directly: concurrency, kernel sharing and dropping stale records."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import anyio
import pytest

from junction.plugins.sessions.manager import StoredSessions
from junction.plugins.sessions.memory import MemorySessionStore
from junction.plugins.sessions.models import Session
from junction.plugins.sessions.service import (
    KernelGone,
    SessionNotFound,
    SessionRecord,
    SessionService,
)

from .fakes import FakeKernels

pytestmark = pytest.mark.anyio


@pytest.fixture
def store() -> MemorySessionStore:
    return MemorySessionStore()


@pytest.fixture
def sessions(store: MemorySessionStore, kernels: FakeKernels, tmp_path: Path) -> StoredSessions:
    return StoredSessions(store, kernels, tmp_path)


def test_stored_sessions_implements_the_service_protocol(sessions: StoredSessions) -> None:
    service: SessionService = sessions
    assert service is sessions


async def test_concurrent_creates_for_one_path_start_one_kernel(
    sessions: StoredSessions, kernels: FakeKernels
) -> None:
    kernels.start_gate = anyio.Event()
    results: list[tuple[Session, bool]] = []

    async def create() -> None:
        results.append(await sessions.create(path="a.ipynb", type="notebook"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(create)
        tg.start_soon(create)
        await anyio.wait_all_tasks_blocked()
        assert len(kernels.starts) == 1
        kernels.start_gate.set()

    (first, created_first), (second, created_second) = results
    assert first == second
    assert (created_first, created_second) == (True, False)
    assert len(kernels.kernels) == 1


async def test_creates_for_different_paths_start_kernels_side_by_side(
    sessions: StoredSessions, kernels: FakeKernels
) -> None:
    kernels.start_gate = anyio.Event()
    async with anyio.create_task_group() as tg:
        for path in ("a.ipynb", "b.ipynb"):
            tg.start_soon(partial(sessions.create, path=path, type="notebook"))
        await anyio.wait_all_tasks_blocked()
        assert [call.path for call in kernels.starts] == ["a.ipynb", "b.ipynb"]
        kernels.start_gate.set()
    assert len(await sessions.list()) == 2


async def test_list_drops_records_whose_kernel_is_gone(
    sessions: StoredSessions, store: MemorySessionStore, kernels: FakeKernels
) -> None:
    gone, _ = await sessions.create(path="a.ipynb", type="notebook")
    kept, _ = await sessions.create(path="b.ipynb", type="notebook")
    await kernels.shutdown(gone.kernel.id)
    assert await sessions.list() == [kept]
    assert [record.id for record in await store.list()] == [kept.id]


async def test_update_of_a_session_whose_kernel_is_gone_raises_not_found(
    sessions: StoredSessions, store: MemorySessionStore, kernels: FakeKernels
) -> None:
    session, _ = await sessions.create(path="a.ipynb", type="notebook")
    await kernels.shutdown(session.kernel.id)
    with pytest.raises(SessionNotFound):
        await sessions.update(session.id, name="b")
    assert await store.list() == []


async def test_delete_of_a_shared_kernel_that_is_gone_raises_kernel_gone(
    sessions: StoredSessions, store: MemorySessionStore, kernels: FakeKernels
) -> None:
    first, _ = await sessions.create(path="a.ipynb", type="notebook")
    second, _ = await sessions.create(path="b", type="console", kernel_id=first.kernel.id)
    await kernels.shutdown(first.kernel.id)
    with pytest.raises(KernelGone) as caught:
        await sessions.delete(first.id)
    assert (caught.value.session_id, caught.value.kernel_id) == (first.id, first.kernel.id)
    assert [record.id for record in await store.list()] == [second.id]


async def test_patching_to_a_new_kernel_keeps_a_kernel_another_session_uses(
    sessions: StoredSessions, kernels: FakeKernels
) -> None:
    notebook, _ = await sessions.create(path="a.ipynb", type="notebook")
    console, _ = await sessions.create(path="c", type="console", kernel_id=notebook.kernel.id)
    moved = await sessions.update(console.id, kernel_name="other")
    assert moved.kernel.name == "other"
    assert kernels.shutdowns == []
    assert (await sessions.get(notebook.id)).kernel.id == notebook.kernel.id


@pytest.mark.parametrize(
    ("path", "name", "expected"),
    [
        ("a.ipynb", "a.ipynb", ("a.ipynb",)),
        ("/deep/er/a.ipynb", "a.ipynb", ("deep", "er", "a.ipynb")),
        ("deep/Untitled.ipynb", "Renamed.ipynb", ("deep", "Renamed.ipynb")),
    ],
)
async def test_kernel_is_told_the_absolute_file_of_its_document(
    sessions: StoredSessions,
    kernels: FakeKernels,
    tmp_path: Path,
    path: str,
    name: str,
    expected: tuple[str, ...],
) -> None:
    await sessions.create(path=path, type="notebook", name=name)
    assert kernels.starts[0].env == {"JPY_SESSION_NAME": str(tmp_path.joinpath(*expected))}


async def test_memory_store_ignores_changes_to_missing_records(store: MemorySessionStore) -> None:
    record = SessionRecord(id="s1", path="a", name=None, type="file", kernel_id="k1")
    await store.replace(record)
    await store.remove("s1")
    assert await store.list() == []
    await store.add(record)
    await store.replace(SessionRecord(id="s1", path="b", name="b", type="file", kernel_id="k2"))
    assert await store.find(path="a") is None
    assert await store.find(path="b") == await store.get("s1")
    assert await store.with_kernel("k2") == await store.list()
    assert await store.with_kernel("k1") == []
