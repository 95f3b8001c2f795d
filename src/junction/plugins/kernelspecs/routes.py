"""HTTP routes of the kernel specs API: validate, call :data:`KERNELSPECS`, return models."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import FileResponse

from junction.plugin import use
from junction.plugins.kernelspecs.models import KernelSpec, KernelSpecList
from junction.plugins.kernelspecs.service import KERNELSPECS, KernelSpecService

__all__ = ["router"]

router = APIRouter(tags=["kernelspecs"])

Specs = Annotated[KernelSpecService, use(KERNELSPECS)]


@router.get("/api/kernelspecs")
async def list_kernelspecs(specs: Specs) -> KernelSpecList:
    """Every installed kernel spec, with the name of the default one."""
    return await specs.list()


@router.get("/api/kernelspecs/{name}", responses={404: {"description": "No such kernel spec"}})
async def get_kernelspec(name: str, specs: Specs) -> KernelSpec:
    """One kernel spec with its resource URLs."""
    return await specs.get(name)


@router.api_route(
    "/kernelspecs/{name}/{path:path}",
    methods=["GET", "HEAD"],
    response_class=FileResponse,
    responses={404: {"description": "No such kernel spec or resource"}},
)
async def get_kernelspec_resource(name: str, path: str, specs: Specs) -> FileResponse:
    """A file from a kernel spec's directory: logos, ``kernel.js``, ``kernel.css``
    (``HEAD`` gives its headers only, as jupyter_server's resource handler does)."""
    return FileResponse(await specs.resource(name, path))
