"""The environment Junction hands to the processes it starts (kernels, terminals, apps).

Junction's own settings travel as ``JUNCTION_*`` variables, the server token and cookie
secret among them. A child never needs them, and a kernel or shell that could read them could
act as the server, so they are left out of every child's environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["SETTINGS_PREFIX", "child_environment"]

SETTINGS_PREFIX = "JUNCTION_"


def child_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``environ`` (the server's, by default) without Junction's own settings."""
    source = os.environ if environ is None else environ
    return {key: value for key, value in source.items() if not key.startswith(SETTINGS_PREFIX)}
