"""nginx configuration for the microservice layout."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from junction.cli import main
from junction.deploy import NginxLayout, ReplicasLayout, layout_from_options, nginx_config

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


REPLICAS = ("127.0.0.1:8001", "127.0.0.1:8002", "[::1]:8003")


def _nginx_syntax_check(config: str, directory: Path) -> subprocess.CompletedProcess[str]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(nginx).exists(), "nginx is required (apt-get install nginx-light)"
    conf = directory / "nginx.conf"
    conf.write_text(config)
    return subprocess.run(
        [nginx, "-t", "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log")],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("kernel_affinity", [False, True])
def test_replicas_config_passes_nginx_syntax_check(tmp_path: Path, kernel_affinity: bool) -> None:
    layout = ReplicasLayout(
        listen="127.0.0.1:18081", replicas=REPLICAS, kernel_affinity=kernel_affinity
    )
    result = _nginx_syntax_check(nginx_config(layout, standalone=tmp_path), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


def test_replicas_are_balanced_round_robin_with_passive_health_checks() -> None:
    config = nginx_config(ReplicasLayout(listen="80", replicas=REPLICAS, fail_timeout="5s"))
    plain = config.split("upstream junction_replicas {\n", 1)[1].split("}", 1)[0]
    assert "hash" not in plain
    assert "least_conn" not in plain
    for replica in REPLICAS:
        assert f"    server {replica} max_fails=1 fail_timeout=5s;\n" in plain
    # Only connection errors and timeouts move a request on; nginx never resends a
    # non-idempotent request that reached a replica (no "non_idempotent").
    assert "proxy_next_upstream error timeout;" in config
    assert "non_idempotent" not in config
    assert "proxy_next_upstream_tries 3;" in config


def test_replicas_websockets_get_upgrade_and_long_timeouts() -> None:
    config = nginx_config(ReplicasLayout(listen="80", replicas=REPLICAS, base_url="/j/"))
    assert "proxy_set_header Upgrade $http_upgrade;" in config
    assert "proxy_set_header Connection $junction_connection;" in config
    for route in (
        "location ~ ^/j/api/kernels/[^/]+/channels$ {",
        "location = /j/api/events/subscribe {",
        "location ~ ^/j/(api/terminals|terminals/|proxy/|api/uploads) {",
        "location ~ ^/j/(api/collaboration/|api/apps|apps/) {",
        "location ~ ^/j/api/jobs/[^/]+/events$ {",
    ):
        body = config.split(route, 1)[1].split("}", 1)[0]
        assert "proxy_read_timeout 1d;" in body, route
        assert "proxy_buffering off;" in body, route


def test_replicas_edge_replaces_forwarded_headers_clients_send() -> None:
    config = nginx_config(ReplicasLayout(listen="80", replicas=REPLICAS))
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in config
    assert "$proxy_add_x_forwarded_for" not in config
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in config
    assert "proxy_set_header Host $http_host;" in config


def test_kernel_affinity_hashes_the_kernel_id() -> None:
    config = nginx_config(ReplicasLayout(listen="80", replicas=REPLICAS, kernel_affinity=True))
    assert "hash $junction_kernel_id consistent;" in config
    channels = config.split("location ~ ^/api/kernels/[^/]+/channels$ {", 1)[1]
    assert channels.split("}", 1)[0].strip().startswith("proxy_pass http://junction_kernel;")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"replicas": ()}, "at least one"),
        ({"replicas": ("a:1", "a:1")}, "must not repeat"),
        ({"replicas": ("a:1; evil",)}, "host:port"),
        ({"replicas": ("nohost",)}, "host:port"),
        ({"fail_timeout": "10s; x"}, "duration"),
        ({"max_fails": 0}, "at least 1"),
        ({"base_url": "/a b/"}, "plain path"),
    ],
)
def test_replicas_layout_refuses_bad_values(fields: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"listen": "80", "replicas": ("a:1", "b:2"), **fields}
    with pytest.raises(ValueError, match=message):
        ReplicasLayout(**values)  # type: ignore[arg-type]  # deliberately loose test input


def test_options_choose_one_layout() -> None:
    replicas = layout_from_options(listen="80", base_url="/", replicas="a:1, b:2,")
    assert replicas == ReplicasLayout(listen="80", replicas=("a:1", "b:2"))
    split = layout_from_options(listen="80", base_url="/", ui="a:1", kernels="b:2")
    assert split == NginxLayout(listen="80", ui="a:1", kernels="b:2")
    with pytest.raises(ValueError, match="not be combined"):
        layout_from_options(listen="80", base_url="/", ui="a:1", replicas="b:2")
    with pytest.raises(ValueError, match="--replicas, or both"):
        layout_from_options(listen="80", base_url="/", ui="a:1")


def test_cli_writes_the_replicas_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "nginx", "--listen", "9000", "--replicas", "h1:1,h2:2"]) == 0
    out = capsys.readouterr().out
    assert out == nginx_config(ReplicasLayout(listen="9000", replicas=("h1:1", "h2:2")))
