"""The apps service: definitions in the database, processes on demand, access to app hosts.

:class:`SupervisedApps` keeps every stored app's record and, once started, its
:class:`~junction.plugins.apps.supervisor.AppProcess`. Access to an app's host goes through
a one-time code: Junction's ``/apps/{id}/`` (authenticated) makes a code bound to the app and
the viewer, valid once for :data:`CODE_SECONDS`; the app host exchanges it for a random
session id in its own host-only cookie (:data:`APP_COOKIE`), kept here in memory.
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.cookiejar import DefaultCookiePolicy
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
from anyio.abc import TaskGroup

from junction.auth.identity import Authenticator, User
from junction.childenv import child_environment
from junction.errors import BadRequest, Forbidden, NotFound
from junction.events import EventBus
from junction.eventschemas import APP_EVENTS
from junction.plugins.apps.models import App, AppCreate, AppStatus, Sharing
from junction.plugins.apps.presets import PRESETS, detect_frameworks
from junction.plugins.apps.service import AppNotFound
from junction.plugins.apps.settings import AppsSettings
from junction.plugins.apps.store import AppRecord, TableAppStore
from junction.plugins.apps.supervisor import ADDRESS, AppProcess, Launch
from junction.reaper import Reaper

if TYPE_CHECKING:
    import httpx

    from junction.plugins.apps.forwarder import Forwarder

__all__ = ["APP_COOKIE", "CODE_SECONDS", "Credentials", "SupervisedApps"]

log = logging.getLogger("junction.apps")

CODE_SECONDS = 30.0
SESSION_SECONDS = 12 * 3600.0
APP_COOKIE = "junction-app"
_FIELD = re.compile(r"\{(port|address|base_url|file|stem|public_host|public_origin|python|root)\}")


@dataclass(frozen=True)
class Credentials:
    """What proved a viewer's identity to Junction when a code was issued; the app host
    checks them again on every request, so a disabled account, a revoked session or token
    and a removed share take effect at once."""

    query_token: str | None = None
    header: str | None = None
    cookie: str | None = None


@dataclass
class _Grant:
    app_id: str
    username: str
    credentials: Credentials
    expires: float


class SupervisedApps:
    """The :class:`~junction.plugins.apps.service.AppService` of the apps plugin."""

    def __init__(
        self,
        settings: AppsSettings,
        *,
        root_dir: Path,
        store: TableAppStore,
        auth: Authenticator,
        reaper: Reaper,
        task_group: TaskGroup,
        junction_origin: str = "http://localhost",
        base_url: str = "/",
        server_port: int = 0,
    ) -> None:
        self.settings = settings
        self.root = root_dir.resolve()
        self.store = store
        self.auth = auth
        self.reaper = reaper
        self.task_group = task_group
        self.junction_origin = junction_origin
        self.apps_port = settings.port
        self.base_url = base_url
        self.server_port = server_port
        self.server_ports: set[int] = set()
        """Ports Junction was seen listening on (from the sockets requests came in on)."""
        self._client: Forwarder | None = None
        self._probe_client: httpx.AsyncClient | None = None
        self.records: dict[str, AppRecord] = {}
        self.closed = anyio.Event()
        """Set at server exit: log streams end."""
        self.processes: dict[str, AppProcess] = {}
        self.events: EventBus | None = None
        self._codes: dict[str, _Grant] = {}
        self._sessions: dict[str, _Grant] = {}
        host_template = urlsplit(settings.public_url).hostname if settings.public_url else None
        pattern = re.escape(host_template or settings.domain).replace(r"\{app\}", "([a-z0-9-]+)")
        self._host = re.compile(pattern, re.IGNORECASE)

    @property
    def junction_url(self) -> str | None:
        """Junction's URL for app links and app-host logins: ``apps.junction_url``, else
        built from the server's configured address and the port it listens on; never from a
        request's ``Host`` (anyone could name any host there). None while the port is
        unknown (``--port 0`` before the first request)."""
        if self.settings.junction_url:
            return self.settings.junction_url.rstrip("/") + "/"
        port = min(self.server_ports, default=self.server_port)
        if not port:
            return None
        return f"{self.junction_origin}:{port}{self.base_url}"

    def learn_server_port(self, port: int) -> None:
        """Note a port Junction listens on (refused by the port proxy; used in URLs when
        the configured one is 0)."""
        self.server_ports.add(port)

    @property
    def client(self) -> Forwarder:
        """The proxy's HTTP forwarder (pooled keep-alive connections to the apps, no
        cookies kept), made on first use."""
        if self._client is None:
            from junction.plugins.apps.forwarder import Forwarder

            self._client = Forwarder()
        return self._client

    @property
    def probe_client(self) -> httpx.AsyncClient:
        """The readiness probes' HTTP client, made on first use: importing httpx is startup
        time that only a server running apps needs."""
        if self._probe_client is None:
            self._probe_client = stateless_client()
        return self._probe_client

    # -- lifecycle -------------------------------------------------------------------------

    async def load(self) -> None:
        """Read stored apps and the operator's predefined ones (called at start)."""
        for record in await self.store.all():
            self.records[record.id] = record
        for raw in self.settings.predefined:
            values = dict(raw)
            app_id = str(values.pop("id", "")).lower()
            if not re.fullmatch(r"[a-z0-9-]{1,40}", app_id):
                raise BadRequest(f"apps.predefined: bad or missing id {app_id!r}")
            spec = self._spec(AppCreate.model_validate(values))
            sharing = Sharing(authenticated=True).model_dump()
            self.records[app_id] = AppRecord(app_id, self.auth.user.username, _now(), spec, sharing)

        for app_id, spec in serverproxy_entry_points():
            if app_id not in self.records:
                sharing = Sharing(authenticated=True).model_dump()
                self.records[app_id] = AppRecord(
                    app_id, self.auth.user.username, _now(), spec, sharing
                )

    async def aclose(self) -> None:
        """Stop every app (called at server exit)."""
        self.closed.set()
        async with anyio.create_task_group() as group:
            for process in self.processes.values():
                group.start_soon(process.stop, None)
        if self._client is not None:
            await self._client.aclose()
        if self._probe_client is not None:
            await self._probe_client.aclose()

    async def cull(self) -> None:
        """Stop apps idle for ``cull_idle_timeout`` seconds, forever (a background task)."""
        timeout = self.settings.cull_idle_timeout
        while timeout:
            await anyio.sleep(min(self.settings.cull_interval, timeout))
            now = time.time()
            for process in list(self.processes.values()):
                idle = now - process.last_activity
                if process.status == "ready" and not process.connections and idle > timeout:
                    try:
                        await process.stop(f"stopped after {idle:.0f} s without traffic")
                    except Exception:  # one app's trouble must not end the culling
                        log.exception("could not stop an idle app")

    # -- definitions -----------------------------------------------------------------------

    def _spec(self, body: AppCreate) -> dict[str, Any]:
        if body.framework is not None and body.command is not None:
            raise BadRequest("give either a framework and a path or a command, not both")
        path = None
        if body.path is not None:
            path = self._relative(body.path)
        if body.framework is not None:
            preset = PRESETS.get(body.framework)
            if preset is None:
                known = ", ".join(sorted(PRESETS))
                raise BadRequest(f"unknown framework {body.framework!r}; known: {known}")
            if path is None:
                raise BadRequest(f"framework {body.framework} needs a path")
            command = list(preset.command)
            env = {**preset.env, **body.env}
            ready_path = body.ready_path or preset.ready_path
        elif body.command is not None:
            command = list(body.command)
            env = dict(body.env)
            ready_path = body.ready_path or "/"
            if not any("{port}" in part for part in [*command, *env.values()]):
                raise BadRequest("the command must use '{port}' (the port it should listen on)")
        else:
            raise BadRequest("give a framework and a path, or a command")
        name = body.name or (Path(path).stem if path else Path(command[0]).name)
        return {
            "name": name,
            "framework": body.framework,
            "path": path,
            "command": command,
            "env": env,
            "ready_path": ready_path,
            "start_timeout": body.start_timeout,
        }

    def _relative(self, path: str) -> str:
        candidate = (self.root / path.lstrip("/")).resolve()
        if not candidate.is_relative_to(self.root):
            raise BadRequest(f"path outside the root: {path}")
        if not candidate.is_file():
            raise BadRequest(f"no such file: {path}")
        return candidate.relative_to(self.root).as_posix()

    async def detect(self, path: str) -> dict[str, str]:
        """The files of folder ``path`` a preset would run, by name (see
        :func:`~junction.plugins.apps.presets.detect_frameworks`)."""
        try:
            folder = (self.root / path.strip("/")).resolve()
            is_dir = folder.is_dir()
        except (OSError, ValueError):  # a NUL byte, a name too long
            raise BadRequest("bad path: not a name this system accepts") from None
        if not folder.is_relative_to(self.root):
            raise BadRequest(f"path outside the root: {path}")
        if not is_dir:
            raise NotFound(f"No such folder: {path}")
        return await anyio.to_thread.run_sync(detect_frameworks, folder)

    def app_origin(self, app_id: str) -> str:
        """The app's own origin, ending in ``/``."""
        if self.settings.public_url:
            return self.settings.public_url.replace("{app}", app_id).rstrip("/") + "/"
        return f"http://{self.settings.domain.replace('{app}', app_id)}:{self.apps_port}/"

    def app_for_host(self, host: str) -> str | None:
        """The id of the app a ``Host`` header names, or None."""
        match = self._host.fullmatch(host.rpartition(":")[0] if ":" in host else host)
        if match is None:
            return None
        return match.group(1) if match.group(1) in self.records else None

    def _launch(self, record: AppRecord) -> Any:
        spec = record.spec
        origin = self.app_origin(record.id)
        file = str(self.root / spec["path"]) if spec.get("path") else ""
        cwd = str(Path(file).parent) if file else str(self.root)

        def launch(port: int) -> Launch:
            values = {
                "port": str(port),
                "address": ADDRESS,
                "base_url": "/",
                "file": file,
                "stem": Path(file).stem if file else "",
                "public_host": urlsplit(origin).netloc,
                "public_origin": origin.rstrip("/"),
                "python": sys.executable,
                "root": str(self.root),
            }

            def fill(text: str) -> str:
                return _FIELD.sub(lambda m: values[m.group(1)], text)

            env = {**_base_env(), **{k: fill(v) for k, v in spec["env"].items()}}
            env.setdefault("PORT", str(port))
            return Launch(
                [fill(part) for part in spec["command"]], env, cwd, fill(spec["ready_path"])
            )

        return launch

    def process(self, app_id: str) -> AppProcess:
        """The app's process supervisor (made on first use)."""
        process = self.processes.get(app_id)
        if process is None:
            record = self.records[app_id]
            settings = self.settings
            process = self.processes[app_id] = AppProcess(
                self._launch(record),
                reaper=self.reaper,
                task_group=self.task_group,
                client=self.probe_client,
                log_limit=settings.log_limit,
                start_timeout=record.spec.get("start_timeout") or settings.start_timeout,
                stop_timeout=settings.stop_timeout,
                restart_limit=settings.restart_limit,
            )
            process.on_status = lambda status, reason: self._announce(record, status, reason)
        return process

    def _announce(self, record: AppRecord, status: AppStatus, reason: str | None) -> None:
        """Emit an apps event when an app's process starts, is ready, fails or stops; the
        event is its owner's."""
        action = {"starting": "start", "ready": "ready", "failed": "failed", "stopped": "stop"}
        if self.events is None or status not in action:
            return
        data = {"action": action[status], "app_id": record.id}
        if isinstance(record.spec.get("name"), str):
            data["name"] = record.spec["name"]
        if status == "failed" and reason:
            data["msg"] = reason
        try:
            self.events.emit(APP_EVENTS, data, username=record.owner)
        except Exception:
            log.exception("could not emit an apps event for %s", record.id)

    def model(self, record: AppRecord, user: User | None = None) -> App:
        """The wire model of an app; its command, environment and output (secrets, often)
        only for those who may manage it (``user`` None: the caller may)."""
        process = self.processes.get(record.id)
        spec = record.spec
        junction = self.junction_url or "/"
        manager = user is None or self.may_manage(user, record)
        return App(
            id=record.id,
            name=spec["name"],
            framework=spec.get("framework"),
            path=spec.get("path"),
            command=spec["command"] if manager else [],
            env=spec["env"] if manager else {},
            owner=record.owner,
            status=process.status if process else "stopped",
            reason=process.reason if process else None,
            last_log=(process.last_log if process else []) if manager else [],
            url=f"{junction}apps/{record.id}/",
            app_url=self.app_origin(record.id),
            sharing=Sharing.model_validate(record.sharing),
            restarts=process.restarts if process else 0,
            created=record.created,
            last_activity=_iso(process.last_activity) if process else None,
        )

    # -- access ----------------------------------------------------------------------------

    def may_manage(self, user: User, record: AppRecord) -> bool:
        """Owner (with the right to run code) or administrator."""
        return self.auth.authorizer.may_access(user, "execute", "kernels", record.owner)

    def may_view(self, user: User | None, record: AppRecord) -> bool:
        """Whether ``user`` (None: anonymous) may open the app."""
        sharing = Sharing.model_validate(record.sharing)
        if sharing.public:
            return True
        if user is None:
            return False
        if self.may_manage(user, record) or sharing.authenticated:
            return True
        return user.username in sharing.users or bool(set(user.groups) & set(sharing.groups))

    def _record(self, app_id: str, user: User, *, manage: bool) -> AppRecord:
        record = self.records.get(app_id)
        if record is None or not self.may_view(user, record):
            raise AppNotFound(app_id)
        if manage and not self.may_manage(user, record):
            raise Forbidden(f"only the owner of app {app_id} may manage it")
        return record

    def same_origin_cookie(self, name: str) -> bool:
        """Whether a cookie on Junction's own origin is Junction's (never forwarded)."""
        return name in (self.auth.cookie_name, "_xsrf") or name.startswith("junction-")

    def is_junction_token(self, token: str) -> bool:
        """Whether an ``Authorization`` credential is a Junction token (never forwarded)."""
        return self.auth.check_token(token) or token.startswith("jct_")

    def issue_code(self, app_id: str, user: User, credentials: Credentials) -> str:
        """A one-time code for the app host, bound to this app and viewer (and the
        credentials the viewer used, checked again on each app-host request)."""
        now = time.time()
        self._codes = {c: g for c, g in self._codes.items() if g.expires > now}
        code = secrets.token_urlsafe(32)
        self._codes[code] = _Grant(app_id, user.username, credentials, now + CODE_SECONDS)
        return code

    def redeem(self, code: str, app_id: str) -> str | None:
        """Exchange a code for an app-host session id; None if unknown, used, expired or
        made for another app."""
        grant = self._codes.pop(code, None)
        if grant is None or grant.app_id != app_id or grant.expires < time.time():
            return None
        session = secrets.token_urlsafe(32)
        now = time.time()
        self._sessions = {s: g for s, g in self._sessions.items() if g.expires > now}
        self._sessions[session] = _Grant(
            app_id, grant.username, grant.credentials, now + SESSION_SECONDS
        )
        return session

    async def session_user(self, session: str | None, app_id: str) -> User | None:
        """The viewer an app-host session id stands for, if valid for this app and the
        account still logs in with what it used (resolved now, as Junction's own auth does:
        a disabled user or a revoked session ends the app session too)."""
        key = session or ""
        grant = self._sessions.get(key)
        if grant is None or grant.app_id != app_id or grant.expires < time.time():
            return None
        found = grant.credentials
        user, _ = await self.auth.identify(
            query_token=found.query_token, header=found.header, cookie=found.cookie
        )
        if user is None or user.username != grant.username:
            self._sessions.pop(key, None)
            return None
        return user

    def _forget_sessions(self, app_id: str) -> None:
        self._sessions = {s: g for s, g in self._sessions.items() if g.app_id != app_id}

    # -- the service -----------------------------------------------------------------------

    async def create(self, body: AppCreate, owner: User) -> App:
        """See :meth:`AppService.create`."""
        if not self.auth.authorizer.is_authorized(owner, "execute", "kernels"):
            raise Forbidden("starting apps needs the right to run code (execute:kernels)")
        spec = self._spec(body)
        app_id = secrets.token_hex(4)
        record = AppRecord(app_id, owner.username, _now(), spec, Sharing().model_dump())
        await self.store.add(record)
        self.records[app_id] = record
        await self.process(app_id).start()
        return self.model(record, owner)

    async def list(self, user: User) -> list[App]:
        """See :meth:`AppService.list`."""
        return [self.model(r, user) for r in self.records.values() if self.may_view(user, r)]

    async def get(self, app_id: str, user: User, *, manage: bool = False) -> App:
        """See :meth:`AppService.get`."""
        return self.model(self._record(app_id, user, manage=manage), user)

    async def start(self, app_id: str, user: User) -> App:
        """See :meth:`AppService.start`."""
        record = self._record(app_id, user, manage=True)
        await self.process(app_id).start()
        return self.model(record)

    async def stop(self, app_id: str, user: User) -> App:
        """See :meth:`AppService.stop`."""
        record = self._record(app_id, user, manage=True)
        await self.process(app_id).stop("stopped")
        return self.model(record)

    async def restart(self, app_id: str, user: User) -> App:
        """See :meth:`AppService.restart`."""
        record = self._record(app_id, user, manage=True)
        process = self.process(app_id)
        await process.stop("restarting")
        await process.start()
        return self.model(record)

    async def delete(self, app_id: str, user: User) -> None:
        """See :meth:`AppService.delete`."""
        self._record(app_id, user, manage=True)
        process = self.processes.pop(app_id, None)
        if process is not None:
            await process.stop("deleted")
        self.records.pop(app_id, None)
        self._forget_sessions(app_id)
        await self.store.remove(app_id)

    async def share(self, app_id: str, sharing: Sharing, user: User) -> App:
        """See :meth:`AppService.share`."""
        record = self._record(app_id, user, manage=True)
        record.sharing = sharing.model_dump()
        await self.store.set_sharing(app_id, record.sharing)
        return self.model(record)

    async def ensure_ready(self, app_id: str) -> AppProcess:
        """Start the app if it is stopped, and wait while it starts (the app host's path)."""
        process = self.process(app_id)
        if process.status == "stopped":
            await process.start()
        await process.wait_settled()
        return process

    def iter_visible(self, user: User) -> Iterator[AppRecord]:
        """Records ``user`` may open."""
        return (r for r in self.records.values() if self.may_view(user, r))


def serverproxy_entry_points() -> list[tuple[str, dict[str, Any]]]:
    """Apps from packages' ``jupyter_serverproxy_servers`` entry points (jupyter-server-proxy's
    format: a callable returning ``command``, ``environment``, ``timeout``,
    ``launcher_entry``...). Entries that fail to load or use a callable command are logged
    and skipped, as jupyter-server-proxy does."""
    found: list[tuple[str, dict[str, Any]]] = []
    for point in entry_points(group="jupyter_serverproxy_servers"):
        app_id = re.sub(r"[^a-z0-9-]", "-", point.name.lower())[:40]
        try:
            options = point.load()()
            command = options.get("command")
            environment = options.get("environment") or {}
            if not isinstance(command, list) or not isinstance(environment, dict):
                raise TypeError("command must be a list and environment a dict")
            title = (options.get("launcher_entry") or {}).get("title") or point.name
            spec = {
                "name": str(title),
                "framework": None,
                "path": None,
                "command": [str(part) for part in command],
                "env": {str(k): str(v) for k, v in environment.items()},
                "ready_path": "/",
                "start_timeout": float(options.get("timeout") or 0) or None,
            }
        except Exception as exc:  # a broken package must not stop the server
            log.warning("skipping jupyter_serverproxy_servers entry %s: %s", point.name, exc)
            continue
        found.append((app_id, spec))
    return found


def stateless_client(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """An HTTP client that keeps no cookies, for the readiness probes.

    A cookie one app sets for one viewer must never ride along on another request: every app
    listens on 127.0.0.1, so a cookie jar would hand it to all of them.
    """
    import httpx

    client = httpx.AsyncClient(
        timeout=httpx.Timeout(30, read=None), trust_env=False, transport=transport
    )
    client.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return client


_SECRET_ENV = frozenset({"JUPYTER_TOKEN", "JPY_API_TOKEN", "JUPYTERHUB_API_TOKEN"})


def _base_env() -> Mapping[str, str]:
    """The server's environment without Junction's settings (its token among them)."""
    return {k: v for k, v in child_environment().items() if k not in _SECRET_ENV}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")
