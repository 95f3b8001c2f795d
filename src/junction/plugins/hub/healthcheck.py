"""``python -m junction.plugins.hub.healthcheck``: the container's HEALTHCHECK.

Asks the server spawned by the Hub for ``{JUPYTERHUB_SERVICE_PREFIX}api/health/live`` on the
port of ``JUPYTERHUB_SERVICE_URL`` (loopback when it binds every address); exits 0 when it
answers 200, 1 otherwise. Standard library only, so it starts fast.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlsplit

__all__ = ["live_url", "main"]


def live_url(env: Mapping[str, str]) -> str:
    """The liveness URL of the server the environment describes."""
    bind = urlsplit(env.get("JUPYTERHUB_SERVICE_URL") or "http://127.0.0.1:8888/")
    host = bind.hostname or "127.0.0.1"
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a bind-all address, not a bind
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    prefix = env.get("JUPYTERHUB_SERVICE_PREFIX") or "/"
    prefix = prefix if prefix.endswith("/") else prefix + "/"
    return f"http://{host}:{bind.port or 8888}{prefix}api/health/live"


def main() -> int:
    """Exit status 0 when the server is live."""
    try:
        with urllib.request.urlopen(live_url(os.environ), timeout=5) as response:  # noqa: S310
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"not live: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
