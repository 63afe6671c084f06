"""Security headers on every response.

Applied around the whole application (``wrap``), outside routing, so that 404s,
static files and Litestar's own errors carry them too, not only routed handlers.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

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
# The employer's fee page loads Stripe.js (docs/billing.md, "Paying by card").
STRIPE_PAGE_PREFIX = "/fees/"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def stripe_page_csp(*, js_url: str, api_base: str) -> str:
    """The site's policy plus Stripe.js: its script, its card frames and its calls to
    the API. Real Stripe.js also frames hooks.stripe.com for 3-D Secure."""
    js, api = _origin(js_url), _origin(api_base)
    frames = f"{js} https://hooks.stripe.com" if js == "https://js.stripe.com" else js
    base = HEADERS["Content-Security-Policy"].replace(
        "script-src 'self'", f"script-src 'self' {js}"
    )
    return f"{base}; frame-src {frames}; connect-src 'self' {' '.join(sorted({js, api}))}"


def wrap(app: ASGIApp, *, hsts: bool, page_csp: Mapping[str, str] | None = None) -> ASGIApp:
    """``page_csp`` replaces the policy under a path prefix (the fee page's Stripe.js)."""
    special = dict(page_csp or {})

    async def with_headers(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        path = scope.get("path", "")
        exempt = path.startswith(CSP_EXEMPT_PREFIX)
        policy = next((v for k, v in special.items() if path.startswith(k)), None)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                for name, value in HEADERS.items():
                    if name == "Content-Security-Policy":
                        if exempt:
                            continue
                        value = policy or value
                    headers.setdefault(name, value)
                if hsts:
                    headers.setdefault(*HSTS)
            await send(message)

        await app(scope, receive, send_with_headers)

    return with_headers
