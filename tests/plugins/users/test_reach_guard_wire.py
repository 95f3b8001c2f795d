"""The reach guard on the wire: a link flipping in a loop never leaks another user's file.

A real uvicorn server in multi-user mode; a thread re-points ``home/ana/x`` between Ana's
own file and Bob's secret as fast as it can while Ana reads it over HTTP. Whatever the
interleaving of the route's check and the service's open, every answer is Ana's file or a
404, never Bob's secret (the deterministic cases are in ``test_reach_guard.py``).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from tests.plugins.users.linkswaps import point
from tests.plugins.users.test_reach_guard import SECRET

from junction.testing import TEST_TOKEN, serve_in_thread

RACE_SECONDS = 1.5
"""How long the link flips while Ana reads."""
GIVE_UP_SECONDS = 30.0
"""Reading stops here even if neither outcome was seen yet (a very loaded machine)."""


def _token(admin: httpx.Client, name: str) -> dict[str, str]:
    created = admin.post("/api/users", json={"name": name})
    assert created.status_code == 201, created.text
    token = admin.post(f"/api/users/{name}/tokens").json()["token"]
    return {"Authorization": f"token {token}"}


def test_a_link_flipping_while_read_never_leaks_another_home(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with serve_in_thread(
        root_dir=root,
        enable=["users", "contents"],
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'junction.db'}",
    ) as (url, _):
        admin_headers = {"Authorization": f"token {TEST_TOKEN}"}
        with httpx.Client(base_url=url, headers=admin_headers, timeout=30) as admin:
            ana = _token(admin, "ana")
            bob = _token(admin, "bob")
            for who in (ana, bob):  # first use makes the home
                assert admin.get("/api/contents/home", headers=who).status_code == 200
            (root / "home" / "bob" / "secret.txt").write_text(SECRET)
            (root / "home" / "ana" / "real.txt").write_text("ANA")
            link = root / "home" / "ana" / "x"
            point(link, "real.txt")

            stop = threading.Event()

            def flip() -> None:
                while not stop.is_set():
                    point(link, "../bob/secret.txt")
                    point(link, "real.txt")

            flipper = threading.Thread(target=flip, daemon=True)
            seen: Counter[int] = Counter()
            flipper.start()
            try:
                started = time.monotonic()
                while True:
                    elapsed = time.monotonic() - started
                    if elapsed > GIVE_UP_SECONDS or (
                        elapsed > RACE_SECONDS and seen[200] and seen[404]
                    ):
                        break
                    for path in ("api/contents/home/ana/x?type=file", "files/home/ana/x"):
                        answer = admin.get(path, headers=ana)
                        assert SECRET not in answer.text, (path, answer.status_code)
                        assert answer.status_code in (200, 404), answer.text
                        if answer.status_code == 200:
                            assert "ANA" in answer.text
                        seen[answer.status_code] += 1
            finally:
                stop.set()
                flipper.join(10)
            assert not flipper.is_alive()
            # Not vacuous: Ana read her own file through the link, and was refused Bob's.
            assert seen[200] > 0, seen
            assert seen[404] > 0, seen
