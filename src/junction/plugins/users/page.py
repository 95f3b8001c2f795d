"""``GET /users``: a small administration page over the ``/api/users`` API.

Server-rendered list of accounts; its buttons call the REST API from the page (with the
``_xsrf`` header, as JupyterLab does), then reload. Administrators only (403 otherwise).
"""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from starlette.requests import HTTPConnection

from junction.plugin import use
from junction.plugins.users.routes import require_admin
from junction.plugins.users.service import USERS, UsersService

__all__ = ["router"]

router = APIRouter(tags=["users"])

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Users · Junction</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;background:#fafafa}}
table{{border-collapse:collapse;background:#fff}} td,th{{padding:.4rem .8rem;border:1px solid #ddd}}
th{{text-align:left;background:#f0f0f0}} .disabled{{color:#999}} #status{{margin:1rem 0}}
</style></head><body>
<h1>Users</h1>
<p id="status" role="status"></p>
<table><thead><tr><th>name</th><th>display name</th><th>groups</th><th>roles</th>
<th>source</th><th>state</th><th></th></tr></thead><tbody>{rows}</tbody></table>
<script>
function xsrf() {{
  const found = document.cookie.split("; ").find((c) => c.startsWith("_xsrf="));
  return found ? found.slice(6) : "";
}}
async function act(button) {{
  const name = button.closest("tr").dataset.name;
  const [method, path, body] = {{
    disable: ["PATCH", "", {{enabled: false}}],
    enable: ["PATCH", "", {{enabled: true}}],
    revoke: ["POST", "/revoke", null],
  }}[button.dataset.action];
  const response = await fetch(`api/users/${{encodeURIComponent(name)}}${{path}}`, {{
    method,
    headers: {{"Content-Type": "application/json", "X-XSRFToken": xsrf()}},
    body: body === null ? null : JSON.stringify(body),
  }});
  const status = document.getElementById("status");
  if (!response.ok) {{
    status.textContent = `${{name}}: ${{(await response.json()).message}}`;
    return;
  }}
  status.textContent = `${{name}}: done (${{button.dataset.action}})`;
  if (button.dataset.action !== "revoke") location.reload();
}}
for (const button of document.querySelectorAll("button[data-action]")) {{
  button.addEventListener("click", () => act(button));
}}
</script></body></html>"""


@router.get("/users", include_in_schema=False, response_class=HTMLResponse)
async def users_page(conn: HTTPConnection, users: Annotated[UsersService, use(USERS)]) -> str:
    """The administration page: every account, with enable/disable and revoke buttons."""
    require_admin(conn)
    rows = []
    for account in await users.users():
        toggle = "disable" if account.enabled else "enable"
        rows.append(
            f'<tr data-name="{html.escape(account.name)}"'
            f"{'' if account.enabled else ' class=disabled'}>"
            f"<td>{html.escape(account.name)}</td>"
            f"<td>{html.escape(account.display_name or '')}</td>"
            f"<td>{html.escape(', '.join(account.groups))}</td>"
            f"<td>{html.escape(', '.join(account.roles))}{' (admin)' if account.admin else ''}"
            f"</td><td>{html.escape(account.source)}</td>"
            f"<td>{'enabled' if account.enabled else 'disabled'}</td>"
            f'<td><button data-action="{toggle}">{toggle}</button> '
            '<button data-action="revoke">revoke sessions and tokens</button></td></tr>'
        )
    return _PAGE.format(rows="".join(rows))
