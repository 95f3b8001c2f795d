"""Multi-user Junction in a real chromium: people log in through a real OpenID provider.

``multiuser_login.mjs`` (playwright-core, Debian's chromium) logs ana, bob and root (an
administrator by the provider's ``lab-admins`` group) in through npm's oidc-provider
(``tests/oidc/provider.mjs``), each in their own browser context; each lands in JupyterLab
and starts a kernel from the page. Neither user sees nor reaches the other's kernel (404);
the administrator lists both, then revokes ana from the ``/users`` page, and ana's very next
request is refused.

Needs Debian's ``chromium``, Node.js, and ``npm ci`` in this directory and in ``tests/oidc``.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import ARTIFACTS, CHROMIUM, check_tools, node_summary

from junction.testing import ServerProcess, free_port

pytestmark = pytest.mark.browser

HERE = Path(__file__).parent
OIDC = HERE.parent / "oidc"
PROVIDER = OIDC / "node_modules" / "oidc-provider"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[str]:
    """A multiuser Junction logging in through a provider on loopback; yields its URL."""
    check_tools(
        modules=(),
        node=20,
        needs={PROVIDER: f"oidc-provider is missing: cd {OIDC} && npm ci"},
    )
    (tmp_path / "root").mkdir()
    port = free_port()
    users = {
        "oidc_issuer": f"http://127.0.0.1:{port}",
        "oidc_client_id": "junction",
        "oidc_client_secret": "junction-test-secret",
        "oidc_admin_groups": "lab-admins",
        "allowed_groups": "lab",
    }
    args = ["--port", "0", "--ip", "127.0.0.1", "--profile", "multiuser"]
    args += ["--root-dir", str(tmp_path / "root")]
    args += ["--set", f"database_url=sqlite+aiosqlite:///{tmp_path / 'junction.db'}"]
    for key, value in users.items():
        args += ["--set", f"users.{key}={value}"]
    with ServerProcess(args, log_path=tmp_path / "junction.log") as server:
        provider = subprocess.Popen(
            ["node", "provider.mjs", str(port), f"{server.url}oauth/callback", server.url],
            cwd=OIDC,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert provider.stdout is not None
            deadline = time.monotonic() + 30
            line = ""
            while time.monotonic() < deadline and not line.startswith("ready "):
                line = provider.stdout.readline()
                if not line:
                    pytest.fail("the OpenID provider exited before it was ready")
            assert line.startswith("ready "), "the OpenID provider did not start in time"
            yield server.url
        finally:
            provider.terminate()
            provider.wait(10)
            if provider.stdout is not None:
                provider.stdout.close()


def test_each_user_sees_only_their_kernels_and_the_admin_sees_all(servers: str) -> None:
    env = {
        **os.environ,
        "JUNCTION_URL": servers,
        "USERS": "ana,bob,root",
        "ARTIFACTS_DIR": str(ARTIFACTS),
        "CHROMIUM": str(CHROMIUM),
    }
    summary = node_summary("multiuser_login.mjs", env, timeout=150)
    assert summary["ok"], summary["error"]
    users = summary["users"]
    for login in ("ana", "bob", "root"):
        assert users[login]["landed"].endswith("/lab")
        assert users[login]["me"]["username"] == login
    assert users["root"]["me"]["admin"] is True
    assert users["ana"]["me"]["admin"] is False
    ana, bob, root = (users[name]["kernel"] for name in ("ana", "bob", "root"))
    assert users["ana"]["listed"] == [ana]
    assert users["bob"]["listed"] == [bob]
    assert sorted(users["root"]["listed"]) == sorted([ana, bob, root])
    assert users["ana"]["foreign"] == {bob: 404, root: 404}
    assert users["bob"]["foreign"] == {ana: 404, root: 404}
    assert users["root"]["foreign"] == {ana: 200, bob: 200}
    # Revoked from the admin page: refused at the very next request.
    assert summary["revoked"] == {"login": "ana", "status": 403}
