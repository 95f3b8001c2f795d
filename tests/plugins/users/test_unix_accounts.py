"""Per-user Unix accounts (``users.unix_accounts``) over a real server: each user's kernels
and terminals run as their own account, so the operating system keeps their files apart.

A real uvicorn server on loopback, real ipykernel kernels and real PTYs; two Unix accounts
made for the test (the tests run as root) and removed at the end.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import websockets

from junction.errors import ConfigError, Forbidden
from junction.plugins.users.settings import UsersSettings
from junction.plugins.users.unixaccounts import check_root
from junction.testing import TEST_TOKEN, execute_request, serve_in_thread, user_headers

pytestmark = pytest.mark.anyio

ADMIN = {"Authorization": f"token {TEST_TOKEN}"}
SPEC = "python_shared"


@pytest.fixture
def accounts() -> Iterator[tuple[str, str]]:
    """Two fresh Unix account names (created by the server), deleted with their homes."""
    suffix = secrets.token_hex(3)
    names = (f"jct_a_{suffix}", f"jct_b_{suffix}")
    try:
        yield names
    finally:
        for name in names:
            subprocess.run(["userdel", "-r", name], capture_output=True, check=False)


def _shared_kernel_spec(share: Path) -> None:
    """A kernel spec every account can run: the system's Python with this environment's
    packages (the test environment's interpreter may live under root's private home)."""
    python = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    assert python.exists(), f"{python} is needed (the python3-venv package installs it)"
    spec = share / "kernels" / SPEC
    spec.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    env = {"PYTHONPATH": sysconfig.get_paths()["purelib"]}
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Python", "language": "python", "env": env})
    )


@pytest.fixture
def reachable_packages() -> Iterator[None]:
    """Let every account traverse (never list) the folders above this environment's packages.

    The checkout may sit under a private home (root's is 0700 on Debian); the accounts'
    kernels import ipykernel from here, so the test opens the way and restores the modes.
    """
    changed: list[tuple[Path, int]] = []
    for folder in Path(sysconfig.get_paths()["purelib"]).resolve().parents:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            changed.append((folder, stat.S_IMODE(mode)))
            folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
    try:
        yield
    finally:
        for folder, mode in changed:
            folder.chmod(mode)


@pytest.fixture
def server(
    accounts: tuple[str, str], reachable_packages: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Path]]:
    # The root must be reachable by the accounts: pytest's tmp_path is root's alone.
    top = Path(tempfile.mkdtemp(prefix="junction-unix-"))
    top.chmod(0o755)
    root = top / "root"
    root.mkdir(mode=0o755)
    _shared_kernel_spec(top / "share")
    monkeypatch.setenv("JUPYTER_PATH", str(top / "share"))
    try:
        with serve_in_thread(
            root_dir=root,
            enable=["contents", "kernelspecs", "kernels", "terminals", "users"],
            database_url=f"sqlite+aiosqlite:///{top}/junction.db",
            plugin_settings={"users": {"unix_accounts": True}},
        ) as (url, _):
            yield url, root
    finally:
        shutil.rmtree(top, ignore_errors=True)


async def _run(url: str, headers: dict[str, str], kernel_id: str, code: str) -> str:
    """Run ``code`` in the kernel; its stdout, or the error's name when it raised."""
    ws = url.replace("http", "ws", 1) + f"api/kernels/{kernel_id}/channels"
    msg_id, request = execute_request(code)
    out = ""
    replied = idle = False
    async with websockets.connect(ws, additional_headers=headers) as sock:
        await sock.send(json.dumps(request))
        with anyio.fail_after(60):
            # The reply (shell) may overtake the output (iopub): wait for both it and idle.
            while not (replied and idle):
                message: dict[str, Any] = json.loads(await sock.recv())
                if message["parent_header"].get("msg_id") != msg_id:
                    continue
                kind = message["header"]["msg_type"]
                if kind == "stream":
                    out += message["content"]["text"]
                elif kind == "error":
                    out += message["content"]["ename"]
                elif kind == "execute_reply":
                    replied = True
                elif kind == "status":
                    idle = message["content"]["execution_state"] == "idle"
    return out


async def test_kernels_and_terminals_run_as_the_users_account(
    server: tuple[str, Path], accounts: tuple[str, str]
) -> None:
    url, root = server
    alice_name, bob_name = accounts
    async with httpx.AsyncClient(base_url=url, headers=ADMIN, timeout=60) as admin:
        alice = await user_headers(admin, alice_name)
        bob = await user_headers(admin, bob_name)

        started = await admin.post("/api/kernels", headers=alice, json={"name": SPEC})
        assert started.status_code == 201, started.text
        alice_uid = pwd.getpwnam(alice_name).pw_uid
        assert alice_uid != 0
        kernel = started.json()["id"]
        printed = await _run(url, alice, kernel, "import os; print(os.getuid(), os.getgid())")
        assert printed.split() == [str(alice_uid), str(pwd.getpwnam(alice_name).pw_gid)]
        printed = await _run(url, alice, kernel, "print(os.environ['HOME'], os.environ['USER'])")
        assert printed.split() == [pwd.getpwnam(alice_name).pw_dir, alice_name]

        # Bob's home belongs to Bob's account, mode 0700: Alice's kernel cannot read it.
        bobs_kernel = await admin.post("/api/kernels", headers=bob, json={"name": SPEC})
        assert bobs_kernel.status_code == 201, bobs_kernel.text
        bob_home = root / "home" / bob_name
        stat = bob_home.stat()
        assert (stat.st_uid, stat.st_mode & 0o777) == (pwd.getpwnam(bob_name).pw_uid, 0o700)
        (bob_home / "secret.txt").write_text("bob's")
        os.chown(bob_home / "secret.txt", stat.st_uid, stat.st_gid)
        code = f"print(open({str(bob_home / 'secret.txt')!r}).read())"
        assert await _run(url, alice, kernel, code) == "PermissionError"
        assert await _run(url, bob, bobs_kernel.json()["id"], code) == "bob's\n"

        # A restarted kernel keeps its account.
        restarted = await admin.post(f"/api/kernels/{kernel}/restart", headers=alice)
        assert restarted.status_code == 200, restarted.text
        assert (await _run(url, alice, kernel, "import os; print(os.getuid())")).strip() == str(
            alice_uid
        )

        # Terminals: the shell runs as the account too.
        made = await admin.post("/api/terminals", headers=alice, json={})
        assert made.status_code == 200, made.text
        name = made.json()["name"]
        ws = url.replace("http", "ws", 1) + f"terminals/websocket/{name}"
        async with websockets.connect(ws, additional_headers=alice) as sock:
            await sock.send(json.dumps(["stdin", "echo uid=$(id -u)=\r"]))
            seen = ""
            with anyio.fail_after(30):
                while f"uid={alice_uid}=" not in seen:
                    message = json.loads(await sock.recv())
                    if message[0] == "stdout":
                        seen += message[1]
            assert "uid=0=" not in seen

        # The server's own token still runs kernels as the server's account.
        own = await admin.post("/api/kernels", json={"name": SPEC})
        assert own.status_code == 201, own.text
        assert (
            await _run(url, ADMIN, own.json()["id"], "import os; print(os.getuid())")
        ).strip() == "0"


async def test_a_name_that_is_no_valid_account_is_refused(server: tuple[str, Path]) -> None:
    url, _ = server
    async with httpx.AsyncClient(base_url=url, headers=ADMIN, timeout=60) as admin:
        bad = await user_headers(admin, "Not.Valid")
        refused = await admin.post("/api/kernels", headers=bad, json={"name": SPEC})
        assert refused.status_code == 403, refused.text
        assert refused.json()["reason"] == "Invalid Unix account"
        assert "Not.Valid" in refused.json()["message"]
        refused = await admin.post("/api/terminals", headers=bad, json={})
        assert refused.status_code == 403, refused.text


def test_the_server_must_run_as_root() -> None:
    check_root(0)
    with pytest.raises(ConfigError, match=r"users\.unix_accounts"):
        check_root(1000)


def test_account_names_are_checked() -> None:
    from junction.plugins.users.unixaccounts import UnixAccounts

    accounts = UnixAccounts(
        UsersSettings(unix_account_template="u_{username}"),
        homes=None,  # type: ignore[arg-type]
        auth=None,  # type: ignore[arg-type]
    )
    assert accounts.account_name("ana") == "u_ana"
    for name in ("Ana", "a b", "x" * 40, "../etc"):
        with pytest.raises(Forbidden):
            accounts.account_name(name)
