"""Security headers on every response.

Applied around the whole application (``wrap``), outside routing, so that 404s,
static files and Litestar's own errors carry them too, not only routed handlers.
"""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "geolocation=(), microphone=()",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
    ),
}
# Only where cookies are secure (production, behind TLS): a browser that saw it once
# refuses plain HTTP to this host for a year, which would lock out a development box.
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
# The interactive API docs load their own scripts and styles.
CSP_EXEMPT_PREFIX = "/schema"


def wrap(app: ASGIApp, *, hsts: bool) -> ASGIApp:
    async def with_headers(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        exempt = scope.get("path", "").startswith(CSP_EXEMPT_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                for name, value in HEADERS.items():
                    if exempt and name == "Content-Security-Policy":
                        continue
                    headers.setdefault(name, value)
                if hsts:
                    headers.setdefault(*HSTS)
            await send(message)

        await app(scope, receive, send_with_headers)

    return with_headers
