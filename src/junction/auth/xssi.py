"""Cross-site script inclusion (XSSI): reads of raw user content that must come from our pages.

A page on another site may name ``/files/secret.js`` in a ``<script>`` (or ``<link>``,
``<img>``) tag; the browser fetches it with our login cookie and the page then runs or
measures what came back. JSON API answers are not valid scripts, but raw files and exports
can be, so routes that serve them call :func:`cross_site_read` before answering a ``GET`` or
``HEAD``, as jupyter_server's files and nbconvert handlers call ``check_xsrf_cookie``
(``jupyter_server/base/handlers.py``). A read passes when:

- it is token-authenticated (a script tag cannot send a token it does not know);
- it carries the ``_xsrf`` value, as ``?_xsrf=`` (JupyterLab adds it to download links and
  "Open in New Browser Tab", ``ContentsManager.getDownloadUrl``) or ``X-XSRFToken``, and it
  matches the ``_xsrf`` cookie;
- its ``Referer`` is a page of this host (browsers send it for same-origin requests under
  our ``Referrer-Policy: same-origin``), or of an origin ``allow_origin`` or
  ``allow_origin_pat`` admits; ``allow_origin = "*"`` lets every read pass.

A missing ``Referer`` is refused, as in jupyter_server: cross-site requests under a
``no-referrer`` policy carry none. Unlike jupyter_server, a server without authentication
(``no_auth``) checks reads too: it has no credential to protect them otherwise.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl, urlsplit

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import Scope

from junction.auth.identity import Authenticator
from junction.auth.middleware import XSRF_COOKIE, origin_allowed

__all__ = ["cross_site_read"]


def cross_site_read(scope: Scope, auth: Authenticator) -> str | None:
    """Why this read of raw content must be refused with 403, or None when it may be served.

    Called by routes that serve user files or their conversions, after the auth gate has
    let the request in (it records how the caller proved who they are).
    """
    if scope["state"].get("auth_method") == "token":
        return None
    settings = auth.settings
    if settings.allow_origin == "*":
        return None
    headers = Headers(scope=scope)
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    supplied = query.get("_xsrf") or headers.get("x-xsrftoken") or headers.get("x-csrftoken")
    if supplied:
        cookie = cookie_parser(headers.get("cookie", "")).get(XSRF_COOKIE, "")
        if (
            cookie
            and hmac.compare_digest(supplied.encode(), cookie.encode())
            and auth.valid_xsrf(cookie)
        ):
            return None
    referer = headers.get("referer")
    if not referer:
        return "Blocking request from unknown origin"
    parts = urlsplit(referer)
    host = headers.get("host")
    if host and parts.netloc == host:
        return None
    origin = f"{parts.scheme}://{parts.netloc}"
    if origin_allowed(origin, None, settings.allow_origin, settings.allow_origin_pat):
        return None
    return f"Blocking Cross Origin request from {referer}."
