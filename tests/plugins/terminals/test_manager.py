"""PtyTerminals and PtyTerminal over real PTYs: shells, sizes, clients, scrollback, flow control."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from junction.errors import BadRequest, Conflict
from junction.plugins.terminals.manager import default_shell
from junction.plugins.terminals.service import TerminalNotFound
from junction.plugins.terminals.terminal import SLOW_CLIENT
from junction.reaper import session_alive, session_groups

from .conftest import read_until, terminals

pytestmark = pytest.mark.anyio


async def test_a_terminal_runs_commands_and_answers_on_its_pty(tmp_path: Path) -> None:
    async with terminals(tmp_path) as service:
        model = await service.create()
        terminal = service.terminal(model.name)
        client = terminal.attach()
        terminal.write("echo $((6*7))\r")
        assert "42\r\n" in await read_until(terminal, client, "42\r\n")


async def test_names_are_the_lowest_free_integers_unless_given(tmp_path: Path) -> None:
    async with terminals(tmp_path) as service:
        assert (await service.create()).name == "1"
        assert (await service.create(name="work")).name == "work"
        assert (await service.create()).name == "2"
        await service.terminate("1")
        assert (await service.create()).name == "1"
        assert [t.name for t in await service.list()] == ["work", "2", "1"]


async def test_bad_or_taken_names_are_refused(tmp_path: Path) -> None:
    async with terminals(tmp_path) as service:
        await service.create(name="a")
        with pytest.raises(Conflict):
            await service.create(name="a")
        for bad in ("a/b", "", "x y", "../1", "a" * 256):
            with pytest.raises(BadRequest):
                await service.create(name=bad)
        assert service.terminal_count() == 1


async def test_cwd_defaults_to_the_root_and_must_stay_inside_it(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "file.txt").write_text("x")
    outside = tmp_path.parent
    os.symlink(outside, tmp_path / "escape")
    async with terminals(tmp_path) as service:
        root = service.terminal((await service.create()).name)
        assert Path(f"/proc/{root.pid}/cwd").resolve() == tmp_path.resolve()
        for cwd in ("sub", "/sub", str(tmp_path / "sub")):
            sub = service.terminal((await service.create(cwd=cwd)).name)
            assert Path(f"/proc/{sub.pid}/cwd").resolve() == (tmp_path / "sub").resolve()
        for cwd in ("..", "../", str(outside), "escape", "sub/../../", "missing", "file.txt"):
            with pytest.raises(BadRequest):
                await service.create(cwd=cwd)


async def test_the_shell_gets_term_and_the_server_root_and_url(tmp_path: Path) -> None:
    async with terminals(tmp_path) as service:
        terminal = service.terminal((await service.create()).name)
        client = terminal.attach()
        terminal.write('echo "<$TERM|$JUPYTER_SERVER_ROOT|$JUPYTER_SERVER_URL>"\r')
        expected = f"<xterm-256color|{tmp_path.resolve()}|http://127.0.0.1:8888/>"
        await read_until(terminal, client, expected)


async def test_the_shell_never_sees_junction_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUNCTION_TOKEN", "server-secret")
    monkeypatch.setenv("OTHER_VARIABLE", "kept")
    async with terminals(tmp_path) as service:
        terminal = service.terminal((await service.create()).name)
        client = terminal.attach()
        terminal.write('echo "<${JUNCTION_TOKEN:-absent}|$OTHER_VARIABLE>"\r')
        await read_until(terminal, client, "<absent|kept>")


async def test_shell_command_setting_chooses_the_program(tmp_path: Path) -> None:
    async with terminals(tmp_path, shell_command=["/bin/sh", "-c", "echo chosen-$0; cat"]) as s:
        terminal = s.terminal((await s.create()).name)
        await read_until(terminal, terminal.attach(), "chosen-/bin/sh")


def test_default_shell_is_shell_then_password_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELL", "/bin/zsh-test")
    assert default_shell()[0] == "/bin/zsh-test"
    monkeypatch.delenv("SHELL")
    import pwd

    assert default_shell()[0] == (pwd.getpwuid(os.getuid()).pw_shell or "/bin/sh")


@pytest.mark.parametrize(
    ("rows", "cols", "expected"),
    [(30, 100, "30 100"), (0, 0, "1 1"), (100000, 100000, "1000 1000"), (-5, 7, "1 7")],
)
async def test_resize_is_clamped_to_one_to_a_thousand(
    tmp_path: Path, rows: int, cols: int, expected: str
) -> None:
    async with terminals(tmp_path) as service:
        terminal = service.terminal((await service.create()).name)
        client = terminal.attach()
        terminal.resize(client, rows, cols)
        terminal.write('echo "<$(stty size)>"\r')
        await read_until(terminal, client, f"<{expected}>")


async def test_the_pty_takes_the_smallest_size_of_its_clients(tmp_path: Path) -> None:
    async with terminals(tmp_path) as service:
        terminal = service.terminal((await service.create()).name)
        big, small = terminal.attach(), terminal.attach()
        terminal.resize(big, 50, 200)
        terminal.resize(small, 20, 80)
        assert terminal.size == (20, 80)
        terminal.detach(small)
        assert terminal.size == (50, 200)
        assert terminal.process.getwinsize() == (50, 200)


async def test_every_client_gets_output_and_any_may_type(tmp_path: Path) -> None:
    async with terminals(tmp_path) as service:
        terminal = service.terminal((await service.create()).name)
        first, second = terminal.attach(), terminal.attach()
        terminal.write("echo from-$((1+1))\r")
        await read_until(terminal, first, "from-2\r\n")
        await read_until(terminal, second, "from-2\r\n")
        terminal.write("echo from-$((1+2))\r")
        await read_until(terminal, first, "from-3\r\n")
        await read_until(terminal, second, "from-3\r\n")
        assert service.connection_count() == 2


async def test_a_new_client_starts_with_the_bounded_scrollback(tmp_path: Path) -> None:
    async with terminals(tmp_path, scrollback_bytes=2048) as service:
        terminal = service.terminal((await service.create()).name)
        client = terminal.attach()
        terminal.write("i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); done\r")
        await read_until(terminal, client, "line-399\r\n")
        terminal.detach(client)
        later = terminal.attach()
        replay = await later.next_frame()
        assert replay is not None
        assert "line-399" in replay
        assert "line-0\r\n" not in replay
        assert len(replay) <= 2048


async def test_without_scrollback_a_new_client_starts_empty(tmp_path: Path) -> None:
    async with terminals(tmp_path, scrollback_bytes=0) as service:
        terminal = service.terminal((await service.create()).name)
        client = terminal.attach()
        terminal.write("echo done-$((2*3))\r")
        await read_until(terminal, client, "done-6")
        assert not terminal.attach().chunks


async def test_a_client_that_never_reads_pauses_the_pty_with_bounded_memory(
    tmp_path: Path,
) -> None:
    limit = 64 * 1024
    async with terminals(tmp_path, client_queue_bytes=limit) as service:
        terminal = service.terminal((await service.create()).name)
        client = terminal.attach()
        terminal.write("yes\r")
        with anyio.fail_after(10):
            while terminal._reading:
                await anyio.sleep(0.01)
        assert limit <= client.queued <= limit + 64 * 1024
        queued = client.queued
        with anyio.move_on_after(0.3):  # reading stays paused while nobody drains
            while terminal._reading:  # pragma: no cover - would be the bug
                await anyio.sleep(0.01)
        assert client.queued == queued
        await read_until(terminal, client, "y\r\ny\r\n" * 1000)  # draining resumes reading
        await service.terminate(terminal.name)


async def test_a_slow_client_is_closed_while_the_others_keep_reading(tmp_path: Path) -> None:
    limit = 16 * 1024
    async with terminals(tmp_path, client_queue_bytes=limit) as service:
        terminal = service.terminal((await service.create()).name)
        slow, fast = terminal.attach(), terminal.attach()
        terminal.write("yes\r")
        received = 0
        with anyio.fail_after(20):
            while slow.close is None:
                frame = await fast.next_frame()
                assert frame is not None
                terminal.sent(fast, len(frame))
                received += len(frame)
        assert slow.close[0] == SLOW_CLIENT
        assert slow.queued == 0
        assert received >= 4 * limit
        await service.terminate(terminal.name)


async def test_terminate_kills_the_whole_session_including_background_jobs(
    tmp_path: Path,
) -> None:
    async with terminals(tmp_path, shell_command=["/bin/bash", "--norc", "-i"]) as service:
        terminal = service.terminal((await service.create()).name)
        client = terminal.attach()
        terminal.write("sleep 600 & echo job-$!\r")
        await read_until(terminal, client, "\njob-")
        terminal.write("trap '' HUP INT TERM; echo trapped\r")
        await read_until(terminal, client, "\rtrapped")
        assert len(session_groups(terminal.pid)) >= 2  # bash put the job in a group of its own
        await service.terminate(terminal.name)
        assert not session_alive(terminal.pid)
        assert not terminal.process.isalive()
        assert await client.next_frame() is None or client.ended
        with pytest.raises(TerminalNotFound):
            service.terminal(terminal.name)


async def test_a_shell_that_exits_ends_the_terminal_and_its_clients(tmp_path: Path) -> None:
    async with terminals(tmp_path) as service:
        terminal = service.terminal((await service.create()).name)
        client = terminal.attach()
        terminal.write("echo bye; exit\r")
        await read_until(terminal, client, "bye")
        with anyio.fail_after(10):
            while await client.next_frame() is not None:
                pass
            await terminal.ended.wait()
            while service.exists(terminal.name):
                await anyio.sleep(0.01)
        assert client.ended
        assert service.terminal_count() == 0


async def test_inactive_terminals_are_culled(tmp_path: Path) -> None:
    async with terminals(tmp_path, cull_inactive_timeout=0.3, cull_interval=0.1) as service:
        quiet = service.terminal((await service.create()).name)
        with anyio.fail_after(10):
            while service.exists(quiet.name):
                await anyio.sleep(0.05)
        assert not quiet.process.isalive()


async def test_last_activity_moves_on_output_and_input(tmp_path: Path) -> None:
    async with terminals(tmp_path) as service:
        assert service.last_activity() is None
        terminal = service.terminal((await service.create()).name)
        client = terminal.attach()
        terminal.last_activity = 0.0
        terminal.write("echo b-$((2+1))\r")
        assert terminal.last_activity > 0  # input
        terminal.last_activity = 0.0
        await read_until(terminal, client, "b-3")
        assert terminal.last_activity > 0  # output
        latest = service.last_activity()
        assert latest is not None
        assert latest <= datetime.now(UTC)
        model = await service.get(terminal.name)
        assert model.last_activity.endswith("Z")


async def test_unknown_terminals_raise_not_found(tmp_path: Path) -> None:
    async with terminals(tmp_path) as service:
        with pytest.raises(TerminalNotFound, match="Terminal not found: nope"):
            await service.get("nope")
        with pytest.raises(TerminalNotFound):
            await service.terminate("nope")


async def test_leaving_the_service_terminates_every_terminal(tmp_path: Path) -> None:
    async with terminals(tmp_path) as service:
        running = [service.terminal((await service.create()).name) for _ in range(3)]
    assert not any(terminal.process.isalive() for terminal in running)
    assert not any(session_alive(t.pid) for t in running)
