"""nginx configuration for the microservice layout."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from junction.deploy import NginxLayout, nginx_config

DOCS = Path(__file__).parent.parent / "docs" / "deploy.md"


def test_docs_show_exactly_what_the_command_writes() -> None:
    documented = re.search(r"```nginx\n(.*?)```", DOCS.read_text(), re.DOTALL)
    assert documented is not None
    layout = NginxLayout(listen="8080", ui="127.0.0.1:8001", kernels="127.0.0.1:8002")
    generated = nginx_config(layout)
    comments = re.compile(r"^\s*#.*\n", re.MULTILINE)
    assert comments.sub("", generated) == documented.group(1)


def test_kernel_routes_go_to_the_kernels_upstream_under_the_base_url() -> None:
    config = nginx_config(NginxLayout(listen="80", ui="a:1", kernels="b:2", base_url="/jupyter/"))
    assert (
        "location ~ ^/jupyter/(api/kernels|api/kernelspecs|api/sessions|kernelspecs/) {" in config
    )
    assert "server b:2;" in config


@pytest.mark.parametrize(
    "fields",
    [{"ui": "a:1; evil"}, {"kernels": ""}, {"listen": "80 }"}, {"base_url": "no-slash"}],
)
def test_layout_refuses_values_that_would_inject_config(fields: dict[str, str]) -> None:
    values = {"listen": "80", "ui": "a:1", "kernels": "b:2", **fields}
    with pytest.raises(ValueError, match="must"):
        NginxLayout(**values)


def test_standalone_config_passes_nginx_syntax_check(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(nginx).exists(), "nginx is required (apt-get install nginx-light)"
    layout = NginxLayout(listen="127.0.0.1:18080", ui="127.0.0.1:1", kernels="127.0.0.1:2")
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_config(layout, standalone=tmp_path))
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr
