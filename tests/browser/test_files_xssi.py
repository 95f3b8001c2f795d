"""/files and /view in a real chromium: the server's own pages load files, another site's
``<script>`` tag does not (``files_xssi.mjs``).

The other site is a page served from another port of the same host: a different origin but
the same site, so the browser attaches Junction's ``SameSite=Lax`` login cookie to its
script request, which is exactly the cross-site script inclusion the check refuses.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from helpers import check_tools, flow_env, node_summary

from junction.testing import ServerProcess

pytestmark = pytest.mark.browser


def _foreign_site(junction_url: str) -> tuple[ThreadingHTTPServer, str]:
    """A page on another port that tries to read Junction's file through a script tag."""
    page = (
        "<!DOCTYPE html><html><head><title>loading</title></head><body>"
        f'<script src="{junction_url}files/secret.js"></script>'
        "<script>document.title = 'done';</script></body></html>"
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/attack.html"


@pytest.fixture
def junction(tmp_path: Path) -> Iterator[ServerProcess]:
    """A contents-only Junction over a root holding ``page.html`` and ``secret.js``."""
    check_tools()
    root = tmp_path / "root"
    root.mkdir()
    (root / "page.html").write_text("<p>framed</p>")
    (root / "secret.js").write_text("var secret = 'from the server';")
    args = ["--profile", "contents", "--ip", "127.0.0.1", "--port", "0"]
    with ServerProcess(
        [*args, "--root-dir", str(root)], log_path=tmp_path / "server.log"
    ) as server:
        yield server


def test_files_load_from_our_pages_and_not_from_another_site(junction: ServerProcess) -> None:
    foreign, foreign_url = _foreign_site(junction.url)
    try:
        env = flow_env(junction, FOREIGN_URL=foreign_url)
        summary = node_summary("files_xssi.mjs", env, timeout=120)
    finally:
        foreign.shutdown()
        foreign.server_close()
    assert summary["ok"], summary["error"]
    checks = summary["checks"]
    assert checks["viewStatus"] == 200
    assert checks["viewUrl"] == f"{junction.url}view/page.html"  # the token left the URL
    assert checks["framed"] == "framed"
    assert checks["newTab"] == "var secret = 'from the server';"
    assert len(checks["foreignScript"]) == 1, checks["foreignScript"]
    assert checks["foreignSawSecret"] is False
    assert checks["typedStatus"] == 403
    # The server refused the foreign page's request, naming its Referer.
    refused = [line for line in junction.log().splitlines() if "GET /files/secret.js" in line]
    assert any(line.rstrip().endswith("403") for line in refused), refused
