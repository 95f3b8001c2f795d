"""``junction-singleuser``: Junction started by JupyterHub (``c.Spawner.cmd``).

The Hub passes no command-line flags to a single-user server, only ``JUPYTERHUB_*``
variables. This command turns them into Junction's settings and runs ``junction``:

- ``JUPYTERHUB_SERVICE_URL`` (``http://127.0.0.1:PORT/user/ana/``): the address and port to
  listen on (``--ip``, ``--port``);
- ``JUPYTERHUB_SERVICE_PREFIX`` (``/user/ana/``): the base URL;
- ``JUPYTERHUB_ROOT_DIR`` (optional): the root dir, ``~`` expanded;
- ``JUPYTERHUB_DEFAULT_URL`` (optional, the Hub's ``Spawner.default_url``): where ``/`` goes;
- ``JUPYTERHUB_SSL_CERTFILE`` and ``JUPYTERHUB_SSL_KEYFILE`` (the Hub's internal SSL): serve
  HTTPS with them (``--certfile``, ``--keyfile``); the Hub's API is called with them too
  (``hub.ssl_*``);

and chooses the ``hub`` profile (``full`` plus the ``hub`` plugin). Arguments given to the command
(``c.Spawner.args``) come after these and win.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

__all__ = ["hub_arguments", "main"]


def hub_arguments(env: Mapping[str, str]) -> list[str]:
    """The ``junction`` arguments the Hub's environment stands for."""
    args = ["--profile", "hub", "--no-browser"]
    service_url = env.get("JUPYTERHUB_SERVICE_URL", "")
    if service_url:
        bind = urlsplit(service_url)
        if bind.hostname:
            args += ["--ip", bind.hostname]
        if bind.port is not None:
            args += ["--port", str(bind.port)]
    prefix = env.get("JUPYTERHUB_SERVICE_PREFIX", "")
    if prefix:
        args += ["--base-url", prefix]
    root = env.get("JUPYTERHUB_ROOT_DIR", "")
    if root:
        args += ["--root-dir", os.path.expanduser(root)]
    default_url = env.get("JUPYTERHUB_DEFAULT_URL", "")
    if default_url:
        args += ["--default-url", "/" + default_url.lstrip("/")]
    certfile = env.get("JUPYTERHUB_SSL_CERTFILE", "")
    keyfile = env.get("JUPYTERHUB_SSL_KEYFILE", "")
    if certfile and keyfile:
        args += ["--certfile", certfile, "--keyfile", keyfile]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``junction-singleuser``; returns the exit status."""
    from junction.cli import main as junction_main

    if not os.environ.get("JUPYTERHUB_API_TOKEN") and not os.environ.get("JPY_API_TOKEN"):
        print(
            "junction-singleuser: JUPYTERHUB_API_TOKEN is not set; this command is started "
            "by JupyterHub (c.Spawner.cmd = ['junction-singleuser']); run 'junction' instead",
            file=sys.stderr,
        )
        return 2
    extra = sys.argv[1:] if argv is None else list(argv)
    return junction_main([*hub_arguments(os.environ), *extra])


if __name__ == "__main__":  # pragma: no cover - python -m junction.plugins.hub.singleuser
    sys.exit(main())
