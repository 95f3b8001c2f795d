"""Settings of the kernelspecs plugin (section ``[kernelspecs]``)."""

from __future__ import annotations

from pydantic import Field

from junction.plugin import PluginSettings

__all__ = ["KernelSpecsSettings"]


class KernelSpecsSettings(PluginSettings):
    """How often the installed kernel specs are looked up again."""

    cache_ttl: float = Field(
        10.0,
        ge=0,
        description="Seconds a scan of the kernel spec directories is reused; a spec "
        "installed meanwhile shows in listings after at most this long (starting it by name "
        "works at once). 0 scans on every request.",
    )
