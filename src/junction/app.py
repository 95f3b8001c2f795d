"""The app factory: plugins in, one ASGI application out.

:func:`create_app` loads the enabled plugins, checks their composition and settings (nothing
runs if that fails), includes their routers under the base URL, wraps everything in the
security middleware, and builds a lifespan that starts the plugins in dependency order and
stops them in reverse, each within ``shutdown_timeout``.

Middleware, outermost first::

    RequestMetrics -> RequestId -> CORS (if configured) -> HostGuard (loopback only)
        -> SecurityHeaders -> Auth -> PlainTextJSON -> RouteCapture -> FastRoutes -> routes

FastRoutes answers the hottest requests through their routes' twins, sparing them FastAPI's
routing and dependency solving (see :mod:`junction.fastroutes`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from junction._version import __version__
from junction.auth.identity import Authenticator, load_cookie_secret
from junction.auth.middleware import AuthMiddleware
from junction.auth.routes import router as auth_router
from junction.config import merge
from junction.database import Database, url_secrets
from junction.database import upgrade as upgrade_database
from junction.errors import ConfigError, DatabaseUnavailable, HTTPError
from junction.eventlog import running_sinks
from junction.events import EVENTS, MemoryEventBus
from junction.fastroutes import FastRoutesMiddleware
from junction.health import HEALTH_PATHS, Health
from junction.health import router as health_router
from junction.logs import RequestIdMiddleware
from junction.metrics import (
    METRICS,
    METRICS_PATH,
    Metrics,
    RequestMetricsMiddleware,
    RouteCaptureMiddleware,
)
from junction.metrics import router as metrics_router
from junction.middleware import (
    HostGuardMiddleware,
    PlainTextJSONMiddleware,
    SecurityHeadersMiddleware,
)
from junction.plugin import Plugin, PluginContext, PluginSettings
from junction.reaper import Reaper
from junction.registry import PROFILES, Composition, compose, discover, enabled_names
from junction.server_routes import router as server_router
from junction.services import AUTH, DATABASE, REAPER, SERVER, ServerState, ServiceRegistry
from junction.settings import ServerSettings
from junction.spec.routes import router as spec_router

__all__ = ["create_app", "error_body"]

log = logging.getLogger("junction")

_PHRASES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    500: "Internal Server Error",
}


def error_body(message: str, reason: str | None) -> dict[str, Any]:
    """The Jupyter error body."""
    return {"message": message, "reason": reason}


def _install_error_handlers(app: FastAPI) -> None:
    async def on_junction_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPError)
        return JSONResponse(exc.body(), status_code=exc.status_code)

    async def on_http_exception(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        reason = _PHRASES.get(exc.status_code, "Error")
        message = exc.detail if isinstance(exc.detail, str) else reason
        return JSONResponse(
            error_body(message, reason), status_code=exc.status_code, headers=exc.headers
        )

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                reason = err.get("ctx", {}).get("error", "malformed")
                problems.append(f"the body is not valid JSON: {reason}")
                continue
            where = ".".join(str(part) for part in err.get("loc", ()) if part != "body")
            problems.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        message = "; ".join(problems) or "invalid request"
        return JSONResponse(error_body(message, "Bad Request"), status_code=400)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = error_body("Unhandled error", "Internal Server Error")
        body["traceback"] = ""
        return JSONResponse(body, status_code=500)

    app.add_exception_handler(HTTPError, on_junction_error)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)


@asynccontextmanager
async def _bounded_stop(
    plugin: Plugin, context: PluginContext[Any], grace: float
) -> AsyncIterator[None]:
    """Run a plugin's lifespan; give its shutdown ``grace`` seconds, shielded."""
    assert plugin.lifespan is not None
    manager = plugin.lifespan(context)
    await manager.__aenter__()
    log.debug("started plugin %s", plugin.name)
    try:
        yield
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(grace) as scope:
            try:
                await manager.__aexit__(None, None, None)
            except Exception:
                log.exception("plugin %s failed while stopping", plugin.name)
        if scope.cancelled_caught:
            log.warning("plugin %s did not stop within %.0f s", plugin.name, grace)
        else:
            log.debug("stopped plugin %s", plugin.name)


def create_app(
    settings: ServerSettings,
    *,
    plugins: Sequence[Plugin] = (),
    authenticator: Authenticator | None = None,
) -> FastAPI:
    """Build the server from ``settings``.

    ``plugins`` are ready-made plugins enabled in addition to those the settings select
    (tests define small plugins inline). Raises :class:`~junction.errors.ConfigError` when
    plugins do not compose or their settings are invalid.
    """
    names = enabled_names(settings.profile, settings.enable, settings.disable)
    composition = compose(names, extra=plugins)
    plugin_settings = _validate_plugin_settings(settings, composition)
    auth = authenticator or Authenticator(settings, cookie_secret=load_cookie_secret(settings))
    state = ServerState(settings=settings)
    services = ServiceRegistry()
    services.provide(SERVER, state)
    services.provide(AUTH, auth)
    database = Database(settings.database_url)
    services.provide(DATABASE, database)
    metrics = Metrics(state)
    services.provide(METRICS, metrics)
    events = MemoryEventBus()
    services.provide(EVENTS, events)
    health = Health(checks=[database.ping])
    reaper = Reaper()
    services.provide(REAPER, reaper)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            _opened(database, composition),
            anyio.create_task_group() as tg,
            AsyncExitStack() as stack,
        ):
            tg.start_soon(metrics.run_lag_probe)
            await stack.enter_async_context(running_sinks(events, settings))
            for plugin in composition.order:
                if plugin.lifespan is None:
                    continue
                context = PluginContext(
                    plugin, plugin_settings[plugin.name], settings, services, tg
                )
                await stack.enter_async_context(
                    _bounded_stop(plugin, context, settings.shutdown_timeout)
                )
            log.info("started plugins: %s", ", ".join(p.name for p in composition.order))
            health.started = True
            try:
                yield
            finally:
                health.started = False
                try:
                    await stack.aclose()
                finally:
                    reaper.close()
                tg.cancel_scope.cancel()

    base = settings.base_url.rstrip("/")
    app = FastAPI(
        title="Junction",
        version=__version__,
        lifespan=lifespan,
        openapi_url=f"{base}/api/openapi.json",
        docs_url=f"{base}/api/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.services = services
    app.state.composition = composition
    app.state.plugin_settings = plugin_settings
    app.state.request_shutdown = _no_shutdown_hook
    landing = settings.default_url.lstrip("/") or _landing_page(composition)
    app.state.landing_page = settings.base_url + landing
    app.state.health = health

    _install_error_handlers(app)
    app.include_router(server_router, prefix=base)
    app.include_router(auth_router, prefix=base)
    app.include_router(health_router, prefix=base)
    app.include_router(metrics_router, prefix=base)
    app.include_router(spec_router, prefix=base)
    for plugin in composition.order:
        for router in plugin.routers:
            app.include_router(router, prefix=base)

    public = [path for plugin in composition.order for path in plugin.public_paths]
    public += [*HEALTH_PATHS, METRICS_PATH]  # /metrics checks its own tokens
    app.add_middleware(FastRoutesMiddleware, routes_of=app)
    app.add_middleware(RouteCaptureMiddleware, base_url=settings.base_url)
    app.add_middleware(PlainTextJSONMiddleware, base_url=settings.base_url)
    app.add_middleware(AuthMiddleware, auth=auth, state=state, public_paths=public)
    app.add_middleware(SecurityHeadersMiddleware, base_url=settings.base_url)
    if settings.is_loopback and not settings.allow_remote_access:
        app.add_middleware(HostGuardMiddleware, local_hostnames=settings.local_hostnames)
    if settings.allow_origin or settings.allow_origin_pat:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=[settings.allow_origin] if settings.allow_origin else [],
            allow_origin_regex=settings.allow_origin_pat or None,
            allow_credentials=settings.allow_credentials,
            allow_headers=settings.allow_headers,
            allow_methods=settings.allow_methods,
            # Browser scripts may read the request id to quote it in bug reports.
            expose_headers=list(dict.fromkeys([*settings.expose_headers, "X-Request-ID"])),
            max_age=settings.max_age,
        )
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    if settings.no_auth:
        log.warning("AUTHENTICATION IS OFF: anyone who can reach this server can run code as you")
    return app


@asynccontextmanager
async def _opened(database: Database, composition: Composition) -> AsyncIterator[None]:
    """Bring every enabled plugin's tables up to date before any plugin starts; close the
    database after the last one stopped. An unreachable database stops the startup."""
    owners = [(p.name, p.tables) for p in composition.order if p.tables is not None]
    try:
        migrated = await upgrade_database(database, owners)
    except DatabaseUnavailable as exc:
        await database.close()
        message = f"cannot open the database {database.masked_url}: {_driver_reason(exc, database)}"
        raise DatabaseUnavailable(message) from exc
    if migrated:
        log.info("database %s: migrated %s", database.masked_url, ", ".join(migrated))
    try:
        yield
    finally:
        await database.close()


def _driver_reason(exc: DatabaseUnavailable, database: Database) -> str:
    """Why the driver could not open the database, in one line without the URL's password
    (``exc`` is the domain error; its cause is the driver's or the system's)."""
    cause = exc.__cause__ or exc
    if isinstance(cause, DBAPIError) and cause.orig is not None:
        cause = cause.orig  # without SQLAlchemy's SQL statement and help link
    lines = str(cause).strip().splitlines()
    reason = lines[0] if lines else type(cause).__name__
    for secret in url_secrets(database.url):
        reason = reason.replace(secret, "***")
    return reason


def _no_shutdown_hook() -> None:
    log.warning("shutdown requested, but this app is not run by 'junction'")


def _landing_page(composition: Composition) -> str:
    for plugin in composition.order:
        if plugin.landing_page is not None:
            return plugin.landing_page.lstrip("/")
    return "api"


def _validate_plugin_settings(
    settings: ServerSettings, composition: Composition
) -> dict[str, PluginSettings]:
    enabled = {plugin.name: plugin for plugin in composition.order}
    installed = set(discover())
    for section in settings.plugins:
        if section not in enabled and section not in installed:
            raise ConfigError(f"settings section [{section}] names no installed plugin")
    for name in settings.disable:  # a misspelt name would leave its plugin running
        if name not in installed:
            known = ", ".join(sorted(installed)) or "none"
            raise ConfigError(f"disable: unknown plugin {name!r}; installed plugins: {known}")
    defaults = PROFILES[settings.profile].defaults
    return {
        name: plugin.load_settings(
            merge(dict(defaults.get(name, {})), settings.plugins.get(name, {}))
        )
        for name, plugin in enabled.items()
    }
