"""Three ``multiuser`` Junction replicas on one PostgreSQL behind nginx: routing, shared
state (files, settings, workspaces, logins, accounts, tokens), failures.

Every test goes through the real wire: nginx with the configuration ``junction deploy nginx
--replicas`` writes, real ``junction`` processes, a real PostgreSQL. Which replica answered
a request is read from nginx's access log (``upstream=``) by the request's ``X-Request-ID``,
and checked against that replica's own log.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial

import httpx
import pytest
from websockets.sync.client import connect

from .replicas import FAIL_TIMEOUT_SECONDS, ReplicaSet, wait_until

pytestmark = pytest.mark.e2e


def _rid(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


def _get(client: httpx.Client, path: str, label: str = "probe") -> tuple[httpx.Response, str]:
    request_id = _rid(label)
    return client.get(path, headers={"X-Request-ID": request_id}), request_id


def test_requests_are_spread_over_every_replica(replica_set: ReplicaSet) -> None:
    # Each replica tells when it started; nginx's access log tells where it sent a request.
    started = {}
    for replica in replica_set.replicas:
        with replica_set.replica_client(replica) as direct:
            started[replica.address] = direct.get("api/status").json()["started"]
    seen: dict[str, list[str]] = {}
    with replica_set.client() as client:
        for _ in range(3 * len(replica_set.replicas)):
            response, request_id = _get(client, "api/status")
            assert response.status_code == 200
            assert response.headers["x-request-id"] == request_id
            upstream = replica_set.upstream_of(request_id)
            assert response.json()["started"] == started[upstream]
            seen.setdefault(upstream, []).append(request_id)
    # Round robin: every replica got its equal share.
    assert set(seen) == set(started)
    assert [len(ids) for ids in seen.values()] == [3] * len(replica_set.replicas)


def test_state_written_through_one_replica_is_seen_through_the_others(
    replica_set: ReplicaSet,
) -> None:
    first, *others = replica_set.replicas
    mark = uuid.uuid4().hex
    with replica_set.replica_client(first) as writer:
        saved = writer.put(
            f"api/contents/shared-{mark}.txt",
            json={"type": "file", "format": "text", "content": mark},
        )
        assert saved.status_code == 201
        theme = writer.put(
            "lab/api/settings/@jupyterlab/apputils-extension:themes",
            json={"raw": f'{{"theme": "JupyterLab Dark"}} // {mark}'},
        )
        assert theme.status_code == 204, theme.text
        workspace = writer.put(
            f"lab/api/workspaces/ws-{mark}",
            json={"data": {"mark": mark}, "metadata": {"id": f"ws-{mark}"}},
        )
        assert workspace.status_code == 204, workspace.text
        # A browser logs in on one replica (token exchange sets the signed cookie) ...
        login = httpx.get(
            f"{first.url}lab?token={replica_set.token}", headers={"Accept": "text/html"}
        )
        assert login.status_code == 302
        cookies = login.cookies
        assert any(name.startswith("junction-auth-") for name in cookies), cookies
    for replica in others:
        with replica_set.replica_client(replica) as reader:
            content = reader.get(f"api/contents/shared-{mark}.txt").json()
            assert content["content"] == mark
            raw = reader.get("lab/api/settings/@jupyterlab/apputils-extension:themes").json()
            assert raw["raw"].endswith(f"// {mark}")
            assert raw["settings"]["theme"] == "JupyterLab Dark"
            assert reader.get(f"lab/api/workspaces/ws-{mark}").json()["data"] == {"mark": mark}
        # ... and the cookie is accepted by every other replica.
        with httpx.Client(base_url=replica.url, cookies=cookies, timeout=30) as browser:
            assert browser.get("api/contents").status_code == 200
        with httpx.Client(base_url=replica.url, timeout=30) as stranger:
            assert stranger.get("api/contents").status_code == 403


def test_a_notebook_session_is_seen_and_ended_through_every_replica(
    replica_set: ReplicaSet,
) -> None:
    first, second, third = replica_set.replicas
    path = f"session-{uuid.uuid4().hex[:8]}.ipynb"
    body = {"path": path, "type": "notebook", "name": path, "kernel": {"name": "python3"}}
    with replica_set.replica_client(first) as client:
        created = client.post("api/sessions", json=body)
        assert created.status_code == 201, created.text
        session = created.json()
    with replica_set.replica_client(second) as client:
        listed = client.get("api/sessions").json()
        assert [s["id"] for s in listed if s["path"] == path] == [session["id"]]
        again = client.post("api/sessions", json=body)  # the same path: the same session
        assert again.json()["id"] == session["id"]
        assert again.json()["kernel"]["id"] == session["kernel"]["id"]
    with replica_set.replica_client(third) as client:
        assert client.delete(f"api/sessions/{session['id']}").status_code == 204
    for replica in replica_set.replicas:
        with replica_set.replica_client(replica) as client:
            assert client.get(f"api/sessions/{session['id']}").status_code == 404
            kernel = client.get(f"api/kernels/{session['kernel']['id']}")
            assert kernel.status_code == 404, kernel.text


def test_a_terminal_follows_its_client_to_the_replica_that_runs_it(
    replica_set: ReplicaSet,
) -> None:
    ws_url = replica_set.nginx_url.replace("http://", "ws://")
    with replica_set.client() as client:
        created = client.post("api/terminals", headers={"X-Request-ID": (rid := _rid("term"))})
        assert created.status_code == 200, created.text
        name = created.json()["name"]
        owner = replica_set.upstream_of(rid)
        try:
            # The same client (same credential) reaches the same replica every time.
            for _ in range(len(replica_set.replicas)):
                listed, request_id = _get(client, "api/terminals")
                assert name in [t["name"] for t in listed.json()]
                assert replica_set.upstream_of(request_id) == owner
            with connect(
                f"{ws_url}terminals/websocket/{name}",
                additional_headers={"Authorization": f"token {replica_set.token}"},
                open_timeout=20,
            ) as socket:
                socket.send(json.dumps(["stdin", "echo through-$((40+2))\r"]))
                output = ""
                while "through-42" not in output:
                    message = json.loads(socket.recv(timeout=20))
                    if message[0] == "stdout":
                        output += message[1]
        finally:
            assert client.delete(f"api/terminals/{name}").status_code == 204


@dataclass
class Load:
    """A client writing workspaces through nginx in a thread until told to stop."""

    replica_set: ReplicaSet
    statuses: list[int] = field(default_factory=list)
    saved: dict[str, str] = field(default_factory=dict)
    unavailable: list[dict[str, str]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """PUT a new workspace, over and over; record every answer."""
        with self.replica_set.client() as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                name = f"load-{n}"
                try:
                    response = client.put(
                        f"lab/api/workspaces/{name}",
                        json={"data": {"n": n}, "metadata": {"id": name}},
                        timeout=10,
                    )
                except httpx.HTTPError:
                    self.statuses.append(0)
                    continue
                self.statuses.append(response.status_code)
                if response.status_code == 204:
                    self.saved[name] = str(n)
                elif response.status_code == 503:
                    self.unavailable.append(response.json())
                else:
                    request_id = response.headers.get("x-request-id", "")
                    self.unexpected.append(f"{response.status_code} {request_id} {response.text}")
                self.stop.wait(0.02)


@pytest.fixture
def load(replica_set: ReplicaSet) -> Iterator[Load]:
    """Workspace writes through nginx in the background while the test runs."""
    running = Load(replica_set)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.stop.set()
        thread.join(30)
        assert not thread.is_alive()


def _writes(client: httpx.Client) -> bool:
    body = {"data": {}, "metadata": {"id": "after-restart"}}
    return client.put("lab/api/workspaces/after-restart", json=body).status_code == 204


def test_postgres_restart_under_load_gives_503_then_recovers(
    replica_set: ReplicaSet, load: Load
) -> None:
    wait_until(lambda: len(load.saved) >= 5, what="writes before the restart")
    replica_set.postgres.stop()
    try:
        seen = len(load.statuses)
        wait_until(
            lambda: load.statuses[seen:].count(503) >= 3, what="503s while PostgreSQL is down"
        )
    finally:
        replica_set.postgres.start()
    restarted_at = len(load.statuses)
    wait_until(lambda: 204 in load.statuses[restarted_at:], what="writes after the restart")
    # Each replica has reconnected by itself.
    for replica in replica_set.replicas:
        with replica_set.replica_client(replica) as client:
            wait_until(partial(_writes, client), what=f"replica {replica.index} to write again")
    load.stop.set()
    # Only successes and clean 503s with a Jupyter JSON body: never a 500 or a dropped reply.
    errors = "\n".join(
        line
        for replica in replica_set.replicas
        for line in replica.log().splitlines()
        if line.startswith(("[E", "[W", "Traceback", "  File", "sqlalchemy", "asyncpg"))
    )
    assert set(load.statuses) <= {204, 503}, f"{load.unexpected}\n{errors}"
    assert load.unavailable
    for body in load.unavailable:
        assert body["reason"] == "DatabaseUnavailable", body
        assert "unavailable" in body["message"]
    # Nothing acknowledged was lost, and every replica reads it.
    for replica in replica_set.replicas:
        with replica_set.replica_client(replica) as client:
            listed = client.get("lab/api/workspaces").json()["workspaces"]
            stored = {w["metadata"]["id"]: w["data"] for w in listed["values"]}
            for name, n in load.saved.items():
                assert stored[name] == {"n": int(n)}, name


def test_accounts_tokens_and_logins_are_shared_by_every_replica(
    replica_set: ReplicaSet,
) -> None:
    first, second, third = replica_set.replicas
    name = f"ana{uuid.uuid4().hex[:8]}"
    password = "a long shared passphrase"
    with replica_set.replica_client(first) as admin:
        created = admin.post("api/users", json={"name": name, "password": password})
        assert created.status_code == 201, created.text
    with replica_set.replica_client(second) as admin:
        issued = admin.post(f"api/users/{name}/tokens", json={"note": "scale-out"})
        assert issued.status_code == 201, issued.text
        token = issued.json()["token"]
    as_ana = {"Authorization": f"token {token}"}
    me = httpx.get(f"{third.url}api/me", headers=as_ana, timeout=30)
    assert me.status_code == 200
    assert me.json()["identity"]["username"] == name

    # A password login: the form's XSRF pair from one replica, the POST to another, the
    # server-side session used on a third.
    form = httpx.get(f"{second.url}login", timeout=30)
    xsrf = form.cookies["_xsrf"]
    login = httpx.post(
        f"{third.url}login",
        data={"username": name, "password": password, "_xsrf": xsrf},
        cookies={"_xsrf": xsrf},
        timeout=30,
    )
    assert login.status_code in (302, 303), login.text
    with httpx.Client(base_url=first.url, cookies=login.cookies, timeout=30) as browser:
        assert browser.get("api/me").json()["identity"]["username"] == name

        # Revoked through one replica: refused at once by the replicas that had not checked
        # the token, and by the one that had once it polled the credentials generation
        # (users.revocation_poll_seconds, 1 s; its cache would keep the token for 60 s).
        with replica_set.replica_client(second) as admin:
            assert admin.post(f"api/users/{name}/revoke").status_code == 200
        for replica in (first, second):
            refused = httpx.get(f"{replica.url}api/me", headers=as_ana, timeout=30)
            assert refused.status_code == 403, replica.index

        def refused_everywhere() -> bool:
            statuses = [
                httpx.get(f"{replica.url}api/me", headers=as_ana, timeout=30).status_code
                for replica in replica_set.replicas
            ]
            return statuses == [403, 403, 403]

        wait_until(refused_everywhere, timeout=15, what="the revoked token to be refused")
        wait_until(
            lambda: browser.get("api/contents").status_code == 403,
            timeout=15,
            what="the ended session to be refused",
        )


def test_killed_replica_is_taken_out_and_requests_still_succeed(
    replica_set: ReplicaSet,
) -> None:
    victim = replica_set.replicas[1]
    survivors = {r.address for r in replica_set.replicas if r is not victim}
    replica_set.kill(1)  # the next test that needs the whole set restarts it (conftest.py)
    answered_by: list[str] = []
    started = time.monotonic()
    with replica_set.client() as client:
        for n in range(4 * len(replica_set.replicas)):
            if n % 2:
                response, request_id = _get(client, "api/contents", "after-kill")
                assert response.status_code == 200
            else:
                # A POST whose connection was refused reached no replica: nginx retries it.
                request_id = _rid("post-after-kill")
                response = client.post(
                    "api/contents",
                    json={"type": "file", "ext": ".txt"},
                    headers={"X-Request-ID": request_id},
                )
                assert response.status_code == 201, response.text
            answered_by.append(replica_set.upstream_of(request_id))
    elapsed = time.monotonic() - started
    assert set(answered_by) == survivors
    # nginx tried the dead replica once, then left it out for fail_timeout (passive health
    # check); round robin alone would have sent it a third of the requests.
    tried_dead = [
        line
        for line in replica_set.access_log().splitlines()
        if "after-kill" in line and victim.address in line
    ]
    assert 1 <= len(tried_dead) <= 1 + int(elapsed / FAIL_TIMEOUT_SECONDS), tried_dead
    error_log = (replica_set.nginx_dir / "error.log").read_text()
    assert "connect() failed (111: Connection refused)" in error_log
