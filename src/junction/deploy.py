"""Reverse-proxy configuration for running Junction as several processes.

The microservice layout splits one JupyterLab into two kinds of process that share a token
and a cookie secret: a *ui* process (profile ``ui``: contents, frontend, lab) and a *kernels*
process (profile ``kernels``: kernelspecs, kernels, sessions). nginx routes the kernel API and
its WebSockets to the kernels process and everything else to the ui process, so the browser
sees one origin. When the kernels process is down, its routes answer 503 with a Jupyter JSON
error body, so the UI reports kernels unavailable instead of failing on an HTML error page.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["KERNEL_ROUTES", "NginxLayout", "nginx_config"]

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


def nginx_config(layout: NginxLayout, *, standalone: Path | None = None) -> str:
    """The nginx configuration for ``layout``.

    Without ``standalone`` it is an ``http``-level snippet for ``conf.d/``. With a directory,
    it is a complete ``nginx.conf`` that keeps its pid, logs and temporary files there and
    runs in the foreground, for running nginx unprivileged (tests, development).
    """
    block = _server_block(layout)
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
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;

{indented}}}
"""
