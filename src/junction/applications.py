"""The client applications Junction serves, and the plugins each one needs.

This is data: :data:`APPLICATIONS` names each application, the plugins it cannot work
without, the plugins that add a feature to it, and the profiles meant to serve it.
``junction plugins`` reports, for the chosen profile, ``--enable`` and ``--disable``, which
applications are served and what each one is missing (:func:`coverage`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

__all__ = ["APPLICATIONS", "Application", "Coverage", "coverage"]


@dataclass(frozen=True)
class Application:
    """A client application: the plugins it needs, and those that add a feature to it.

    ``extras`` maps a plugin name to the feature it brings (shown when it is missing).
    ``profiles`` are the profiles meant to serve the application on their own.
    """

    description: str
    needs: tuple[str, ...]
    extras: Mapping[str, str] = field(default_factory=dict)
    profiles: tuple[str, ...] = ()


_UI = ("contents", "kernelspecs", "kernels", "sessions", "lab", "frontend")

APPLICATIONS: Mapping[str, Application] = {
    "jupyterlab": Application(
        "JupyterLab 4 (/lab)",
        needs=_UI,
        extras={"terminals": "the Terminal tile and terminal sessions"},
        profiles=("full",),
    ),
    "notebook": Application(
        "Jupyter Notebook 7 (/tree, /notebooks)",
        needs=_UI,
        extras={"terminals": "New > Terminal"},
        profiles=("full",),
    ),
    "gateway-client": Application(
        "jupyter_server's GatewayClient (--gateway-url) and other kernel gateway clients",
        needs=("kernelspecs", "kernels", "sessions"),
        profiles=("gateway", "kernels"),
    ),
    "jupyterlab-services": Application(
        "@jupyterlab/services in Node (kernels, sessions and files without the UI)",
        needs=("contents", "kernelspecs", "kernels", "sessions"),
        extras={"terminals": "TerminalManager"},
        profiles=("full",),
    ),
}
"""Every application Junction knows the needs of, by name."""


@dataclass(frozen=True)
class Coverage:
    """How well a set of enabled plugins serves one application."""

    name: str
    application: Application
    missing: tuple[str, ...]
    """Plugins the application needs that are not enabled: it will not work."""
    missing_extras: tuple[str, ...]
    """Plugins that would add a feature, not enabled."""
    intended: bool
    """Whether the chosen profile is meant to serve this application."""

    @property
    def served(self) -> bool:
        """Whether every plugin the application needs is enabled."""
        return not self.missing

    def describe(self) -> str:
        """One line for ``junction plugins``."""
        if self.missing:
            return f"{self.name}: missing {', '.join(self.missing)}"
        extras = [f"{name} ({self.application.extras[name]})" for name in self.missing_extras]
        return f"{self.name}: ready" + ("; without " + ", ".join(extras) if extras else "")


def coverage(profile: str, enabled: Collection[str]) -> list[Coverage]:
    """For each application, what ``enabled`` lacks to serve it (profile's ones first)."""
    result = []
    for name, app in APPLICATIONS.items():
        result.append(
            Coverage(
                name=name,
                application=app,
                missing=tuple(p for p in app.needs if p not in enabled),
                missing_extras=tuple(p for p in app.extras if p not in enabled),
                intended=profile in app.profiles,
            )
        )
    return sorted(result, key=lambda c: not c.intended)
