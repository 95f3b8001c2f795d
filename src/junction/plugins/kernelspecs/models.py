"""Wire models of the kernel specs API, field for field as Jupyter clients expect them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = ["KernelSpec", "KernelSpecList"]


class KernelSpec(BaseModel):
    """One installed kernel spec as ``GET /api/kernelspecs/{name}`` reports it."""

    name: str
    spec: dict[str, Any] = Field(
        description="The kernel.json content: argv, display_name, language, env, "
        "interrupt_mode, metadata."
    )
    resources: dict[str, str] = Field(
        description="URL of each resource file by key: 'logo-64x64' (the file name without "
        "extension) for logos, 'kernel.js' and 'kernel.css' as they are."
    )


class KernelSpecList(BaseModel):
    """``GET /api/kernelspecs``: the default spec's name and every spec by name."""

    default: str
    kernelspecs: dict[str, KernelSpec]
