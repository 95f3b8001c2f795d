"""Reverse-proxy configuration for running Junction as several processes.

Two layouts, one nginx configuration each:

- :class:`NginxLayout`, microservices: one JupyterLab split into two kinds of process that
  share a token and a cookie secret: a *ui* process (profile ``ui``: contents, frontend, lab)
  and a *kernels* process (profile ``kernels``: kernelspecs, kernels, sessions). nginx routes
  the kernel API and its WebSockets to the kernels process and everything else to the ui
  process, so the browser sees one origin. When the kernels process is down, its routes
  answer 503 with a Jupyter JSON error body, so the UI reports kernels unavailable instead of
  failing on an HTML error page.
- :class:`ReplicasLayout`, scale-out: several identical replicas sharing one PostgreSQL
  database, one root directory, one token and one cookie secret. nginx spreads requests round
  robin, takes a replica out for a while when connecting to it fails (passive health
  checks), retries idempotent requests on another replica, and sends what lives in one
  replica's memory (terminals, collaboration rooms, apps) to a replica chosen by a
  consistent hash. See ``docs/scale-out.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "KERNEL_ROUTES",
    "NginxLayout",
    "ReplicasLayout",
    "layout_from_options",
    "nginx_config",
]

KERNEL_ROUTES = ("api/kernels", "api/kernelspecs", "api/sessions", "kernelspecs/")
"""Paths, relative to the base URL, served by the kernels process."""

_UNAVAILABLE = (
    '{"message": "The kernels service is unavailable; try again shortly", '
    '"reason": "Service Unavailable"}'
)


@dataclass(frozen=True)
class NginxLayout:
    """Where nginx listens and where the two kinds of Junction process are."""

    listen: str
    ui: str
    kernels: str
    base_url: str = "/"
    server_name: str = "_"
    max_body_size: str = "1g"

    def __post_init__(self) -> None:
        for name in ("listen", "ui", "kernels"):
            value = getattr(self, name)
            if not value or any(ch in value for ch in " ;{}'\"\n"):
                raise ValueError(f"{name} must be host:port or a port, got {value!r}")
        if not self.base_url.startswith("/") or not self.base_url.endswith("/"):
            raise ValueError("base_url must start and end with '/'")


def _server_block(layout: NginxLayout) -> str:
    base = layout.base_url
    kernel_paths = "|".join(KERNEL_ROUTES)
    return f"""\
map $http_upgrade $junction_connection {{
    default upgrade;
    ''      '';
}}

upstream junction_ui {{
    server {layout.ui};
    keepalive 32;
}}

upstream junction_kernels {{
    server {layout.kernels};
    keepalive 32;
}}

server {{
    listen {layout.listen};
    server_name {layout.server_name};

    client_max_body_size {layout.max_body_size};
    proxy_http_version 1.1;
    # Junction checks Host (DNS rebinding) and WebSocket Origin against the Host the browser
    # used, so pass it through unchanged.
    proxy_set_header Host $http_host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $junction_connection;
    # Kernel output streams and uploads pass through as they come.
    proxy_buffering off;
    proxy_request_buffering off;
    proxy_read_timeout 1d;
    proxy_send_timeout 1d;

    location ~ ^{base}({kernel_paths}) {{
        proxy_pass http://junction_kernels;
        error_page 502 503 504 = @junction_kernels_unavailable;
    }}

    location @junction_kernels_unavailable {{
        default_type application/json;
        return 503 '{_UNAVAILABLE}';
    }}

    location / {{
        proxy_pass http://junction_ui;
    }}
}}
"""


_ADDRESS = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}")
_DURATION = re.compile(r"[0-9]+(ms|s|m|h|d)?")

_REPLICAS_UNAVAILABLE = (
    '{"message": "No Junction replica is reachable; try again shortly", '
    '"reason": "Service Unavailable"}'
)


@dataclass(frozen=True)
class ReplicasLayout:
    """Where nginx listens and the ``host:port`` of every Junction replica.

    ``max_fails`` failed attempts to reach a replica within ``fail_timeout`` take it out of
    the rotation for ``fail_timeout`` (nginx's passive health check). ``kernel_affinity``
    sends every request naming a kernel id to one replica chosen by a consistent hash of the
    id, instead of round robin, so one kernel's WebSockets meet on one replica.
    """

    listen: str
    replicas: tuple[str, ...]
    base_url: str = "/"
    server_name: str = "_"
    max_body_size: str = "1g"
    max_fails: int = 1
    fail_timeout: str = "10s"
    kernel_affinity: bool = False

    def __post_init__(self) -> None:
        if not self.listen or any(ch in self.listen for ch in " ;{}'\"\n"):
            raise ValueError(f"listen must be host:port or a port, got {self.listen!r}")
        if not self.replicas:
            raise ValueError("replicas must name at least one host:port")
        for replica in self.replicas:
            if not _ADDRESS.fullmatch(replica):
                raise ValueError(f"each replica must be host:port, got {replica!r}")
        if len(set(self.replicas)) != len(self.replicas):
            raise ValueError("replicas must not repeat an address")
        if self.max_fails < 1:
            raise ValueError("max_fails must be at least 1")
        if not _DURATION.fullmatch(self.fail_timeout):
            raise ValueError(f"fail_timeout must be an nginx duration, got {self.fail_timeout!r}")
        if not self.base_url.startswith("/") or not self.base_url.endswith("/"):
            raise ValueError("base_url must start and end with '/'")
        if any(ch in self.base_url for ch in " ;{}'\"\n()|$\\"):
            raise ValueError(f"base_url must be a plain path, got {self.base_url!r}")


def layout_from_options(
    *,
    listen: str,
    base_url: str,
    ui: str | None = None,
    kernels: str | None = None,
    replicas: str | None = None,
    kernel_affinity: bool = False,
) -> NginxLayout | ReplicasLayout:
    """The layout ``junction deploy nginx`` options describe; ValueError when they conflict.

    ``replicas`` is a comma-separated list of ``host:port``; it excludes ``ui`` and
    ``kernels``, which come together.
    """
    if replicas is not None:
        if ui is not None or kernels is not None:
            raise ValueError("--replicas must not be combined with --ui and --kernels")
        addresses = tuple(item.strip() for item in replicas.split(",") if item.strip())
        return ReplicasLayout(
            listen=listen, replicas=addresses, base_url=base_url, kernel_affinity=kernel_affinity
        )
    if ui is None or kernels is None:
        raise ValueError("deploy nginx must be given --replicas, or both --ui and --kernels")
    if kernel_affinity:
        raise ValueError("--kernel-affinity must be used with --replicas")
    return NginxLayout(listen=listen, ui=ui, kernels=kernels, base_url=base_url)


def _upstream(name: str, layout: ReplicasLayout, balance: str | None) -> str:
    servers = "".join(
        f"    server {replica} max_fails={layout.max_fails} fail_timeout={layout.fail_timeout};\n"
        for replica in layout.replicas
    )
    method = f"    {balance};\n" if balance else ""
    return f"upstream {name} {{\n{method}{servers}    keepalive 32;\n}}\n"


def _replicas_block(layout: ReplicasLayout) -> str:
    base = layout.base_url
    tries = len(layout.replicas)
    kernel_upstream = "junction_kernel" if layout.kernel_affinity else "junction_replicas"
    kernel_map = (
        f"""
map $uri $junction_kernel_id {{
    ~^{base}api/kernels/(?<id>[^/]+) $id;
    default "";
}}
"""
        if layout.kernel_affinity
        else ""
    )
    kernel_upstreams = (
        "\n" + _upstream("junction_kernel", layout, "hash $junction_kernel_id consistent")
        if layout.kernel_affinity
        else ""
    )
    return f"""\
map $http_upgrade $junction_connection {{
    default upgrade;
    ''      '';
}}

# Who is asking, for what lives in one replica's memory (terminals, the port proxy): the
# API credential, else the browser's affinity cookie, else this request's id, which becomes
# the browser's affinity cookie (so its next requests hash the same).
map $http_authorization $junction_client_credential {{
    ""      $arg_token;
    default $http_authorization;
}}

map $cookie_junction_affinity $junction_affinity {{
    ""      $request_id;
    default $cookie_junction_affinity;
}}

map $cookie_junction_affinity $junction_affinity_cookie {{
    ""      "junction_affinity=$request_id; Path={base}; HttpOnly; SameSite=Lax";
    default "";
}}

map $junction_client_credential $junction_client {{
    ""      $junction_affinity;
    default $junction_client_credential;
}}

# Keep a client's request id (ids chain across services), else nginx's own.
map $http_x_request_id $junction_request_id {{
    ""      $request_id;
    default $http_x_request_id;
}}
{kernel_map}
{_upstream("junction_replicas", layout, None)}
{_upstream("junction_client", layout, "hash $junction_client consistent")}
{_upstream("junction_owner", layout, "hash junction_owner consistent")}{kernel_upstreams}
server {{
    listen {layout.listen};
    server_name {layout.server_name};

    client_max_body_size {layout.max_body_size};
    proxy_http_version 1.1;
    # Junction checks Host (DNS rebinding) and WebSocket Origin against the Host the browser
    # used, so pass it through unchanged.
    proxy_set_header Host $http_host;
    # The edge proxy: what clients claim is replaced, never appended to. Junction (uvicorn)
    # believes these headers only from the addresses in FORWARDED_ALLOW_IPS (loopback by
    # default).
    proxy_set_header X-Forwarded-For $remote_addr;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Forwarded-Host $http_host;
    proxy_set_header Forwarded "";
    proxy_set_header X-Request-ID $junction_request_id;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $junction_connection;
    proxy_connect_timeout 5s;
    proxy_read_timeout 5m;
    proxy_send_timeout 5m;
    # A replica that refuses the connection or does not answer in time is skipped. nginx
    # never passes POST, LOCK or PATCH on once it has sent them to a replica, so a
    # non-idempotent request runs at most once.
    proxy_next_upstream error timeout;
    proxy_next_upstream_tries {tries};
    proxy_next_upstream_timeout 30s;
    # When no replica can be reached, a Jupyter JSON error instead of an HTML page.
    error_page 502 504 = @junction_unavailable;
    add_header Set-Cookie $junction_affinity_cookie always;

    # WebSockets: Junction pings every 20 s; a quiet socket stays open.
    location ~ ^{base}api/kernels/[^/]+/channels$ {{
        proxy_pass http://{kernel_upstream};
        proxy_read_timeout 1d;
        proxy_send_timeout 1d;
        proxy_buffering off;
    }}

    location = {base}api/events/subscribe {{
        proxy_pass http://junction_replicas;
        proxy_read_timeout 1d;
        proxy_send_timeout 1d;
        proxy_buffering off;
    }}

    # Terminals, the port proxy and resumable uploads (their partial files) belong to the
    # replica that started them: per client.
    location ~ ^{base}(api/terminals|terminals/|proxy/|api/uploads) {{
        proxy_pass http://junction_client;
        proxy_read_timeout 1d;
        proxy_send_timeout 1d;
        proxy_buffering off;
    }}

    # Collaboration rooms and apps have one owner each: one replica takes them all, the next
    # one on the ring when it fails.
    location ~ ^{base}(api/collaboration/|api/apps|apps/) {{
        proxy_pass http://junction_owner;
        proxy_read_timeout 1d;
        proxy_send_timeout 1d;
        proxy_buffering off;
    }}

    # Server-sent events.
    location ~ ^{base}api/jobs/[^/]+/events$ {{
        proxy_pass http://junction_replicas;
        proxy_read_timeout 1d;
        proxy_buffering off;
    }}

    location ~ ^{base}api/kernels/ {{
        proxy_pass http://{kernel_upstream};
        proxy_buffering off;
    }}

    location @junction_unavailable {{
        default_type application/json;
        return 503 '{_REPLICAS_UNAVAILABLE}';
    }}

    location / {{
        proxy_pass http://junction_replicas;
    }}
}}
"""


def nginx_config(layout: NginxLayout | ReplicasLayout, *, standalone: Path | None = None) -> str:
    """The nginx configuration for ``layout``.

    Without ``standalone`` it is an ``http``-level snippet for ``conf.d/``. With a directory,
    it is a complete ``nginx.conf`` that keeps its pid, logs and temporary files there and
    runs in the foreground, for running nginx unprivileged (tests, development); for
    replicas its access log names the replica that answered each request
    (``upstream=host:port``) and the request id the replica logged.
    """
    if isinstance(layout, ReplicasLayout):
        block = _replicas_block(layout)
        access = (
            '    log_format junction \'$remote_addr "$request" $status '
            "id=$junction_request_id upstream=$upstream_addr upstream_status=$upstream_status';\n"
            f"    access_log {standalone}/access.log junction;\n"
        )
    else:
        block = _server_block(layout)
        access = f"    access_log {standalone}/access.log;\n"
    if standalone is None:
        return block
    d = standalone
    indented = "".join(f"    {line}\n" if line else "\n" for line in block.splitlines())
    return f"""\
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;

events {{
    worker_connections 1024;
}}

http {{
{access}    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;

{indented}}}
"""
