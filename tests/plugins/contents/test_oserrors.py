"""Operating-system errors become contents errors: a clear 4xx naming API paths only.

``EINVAL`` and ``EIO`` come from special files (procfs, sysfs, devices) and failing disks:
a 400 that says why, not a 500. Read for real from ``/proc/self/mem``, whose first page is
never mapped (every read there is ``EIO``).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from junction.plugins.contents.oserrors import translate
from junction.plugins.contents.service import OperationRefused

from .conftest import contents_client

pytestmark = pytest.mark.anyio

PROC_SELF = Path("/proc/self")


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/api/contents/mem", {"type": "file"}),
        ("/api/contents/mem", {"type": "file", "format": "base64"}),
        ("/api/contents/mem", {"type": "file", "content": "0", "hash": "1"}),
        ("/files/mem", {}),
    ],
)
async def test_a_read_the_system_answers_with_eio_is_a_400(
    url: str, params: dict[str, str]
) -> None:
    async with contents_client(PROC_SELF) as client:
        response = await client.get(url, params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["message"] == f"cannot read 'mem': {os.strerror(errno.EIO)}"
    assert body["reason"] == "Bad Request"
    assert "/proc" not in response.text  # API paths only


@pytest.mark.parametrize("code", [errno.EINVAL, errno.EIO])
def test_einval_and_eio_translate_to_a_400_without_the_server_path(code: int) -> None:
    error = OSError(code, os.strerror(code), "/srv/secret/root/a.bin")
    translated = translate(error, "a.bin", "read")
    assert isinstance(translated, OperationRefused)
    assert translated.status_code == 400
    assert translated.message == f"cannot read 'a.bin': {os.strerror(code)}"
