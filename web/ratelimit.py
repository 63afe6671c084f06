"""A small in-process sliding-window rate limit: the public broker application form
and its status lookup (``check``, called by those handlers), and, for every request,
logging in (per address and per account), the public rankings and the exports
(``before_request``, docs/operations.md).

In-process means per server process: behind several ``laowu serve`` processes each
keeps its own window, which still bounds a single client's rate by the process
count. The proxy in front should also limit (docs/brokers.md, docs/operations.md).
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from litestar import Request, Response
from litestar.exceptions import TooManyRequestsException
from litestar.response import Template

from web import proxies

# Bounds the memory a flood of distinct addresses can take.
MAX_KEYS = 50_000


@dataclass
class Window:
    limit: int
    seconds: float
    hits: dict[str, deque[float]] = field(default_factory=dict)

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if len(self.hits) > MAX_KEYS:
            self.hits.clear()
        recent = self.hits.setdefault(key, deque())
        while recent and recent[0] <= now - self.seconds:
            recent.popleft()
        if len(recent) >= self.limit:
            return False
        recent.append(now)
        return True

    def retry_after(self, key: str, now: float | None = None) -> int:
        """Whole seconds until the oldest hit in the window expires."""
        now = time.monotonic() if now is None else now
        recent = self.hits.get(key)
        if not recent:
            return 1
        return max(1, math.ceil(recent[0] + self.seconds - now))


# Submissions: a village office may send a handful from one address in an hour.
SUBMIT = ("broker_apply_submit", 20, 3600.0)
# Status lookups, including wrong guesses: enough for real use, far too few to guess.
TRACK = ("broker_apply_track", 30, 600.0)


def check(request: Request[Any, Any, Any], which: tuple[str, int, float]) -> None:
    name, limit, seconds = which
    state = request.app.state
    window = state.get(name)
    if window is None:
        window = Window(limit=limit, seconds=seconds)
        state[name] = window
    key = client_address(request)
    if not window.allow(key):
        retry_after = window.retry_after(key)
        raise TooManyRequestsException(
            f"请求过于频繁，请 {retry_after} 秒后再试",
            headers={"Retry-After": str(retry_after)},
        )


# --- limits applied to every request (before_request) ---------------------------------

# Logging in: per address (a village office's NAT serves several brokers of a morning)
# and per account (counts every attempt, right or wrong, on top of the lockout after
# five wrong passwords in marketplace/accounts).
LOGIN_PER_ADDRESS = ("login_address", 60, 300.0)
LOGIN_PER_ACCOUNT = ("login_account", 10, 300.0)
# The public rankings: a page and its CSV, no login, each a few aggregate queries.
PUBLIC = ("public_pages", 60, 60.0)
# Exports read whole registers or ledgers: per session (per address without one).
EXPORTS = ("exports", 10, 600.0)

LOGIN_ROUTES = {
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/totp/enrol"),
    ("POST", "/login"),
}
PUBLIC_ROUTES = {("GET", "/public/rankings"), ("GET", "/public/rankings.csv")}
EXPORT_ROUTES = {("GET", "/api/v1/workers/export")}
# Exported only in these formats; the JSON report is the screen's own view.
RECONCILIATION = ("GET", "/api/v1/reconciliation")
FILE_FORMATS = {"csv", "xlsx"}


def _window(request: Request[Any, Any, Any], which: tuple[str, int, float]) -> Window:
    name, limit, seconds = which
    state = request.app.state
    window = state.get(name)
    if window is None:
        window = Window(limit=limit, seconds=seconds)
        state[name] = window
    return window


def client_address(request: Request[Any, Any, Any]) -> str:
    """The caller's address: the peer, or behind a trusted proxy the address the proxy
    saw (web/proxies.py)."""
    return proxies.client_ip(request.scope) or "unknown"


def _session_key(request: Request[Any, Any, Any]) -> str:
    credential = request.headers.get("authorization") or request.cookies.get("laowu_session")
    return f"s:{credential}" if credential else f"a:{client_address(request)}"


async def _username(request: Request[Any, Any, Any]) -> str | None:
    try:
        if request.headers.get("content-type", "").startswith("application/json"):
            body = await request.json()
            value = body.get("username") if isinstance(body, dict) else None
        else:
            value = (await request.form()).get("username")
    except Exception:  # a malformed body is the handler's to refuse, with its message
        return None
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def too_many(request: Request[Any, Any, Any], retry_after: int) -> Response[Any]:
    detail = f"请求过于频繁，请 {retry_after} 秒后再试"
    headers = {"Retry-After": str(retry_after)}
    if request.url.path.startswith("/api/"):
        return Response({"detail": detail}, status_code=429, headers=headers)
    return Template(
        "error.html",
        context={"status": 429, "detail": detail, "field": None},
        status_code=429,
        headers=headers,
    )


def enabled() -> bool:
    """``LAOWU_RATE_LIMITS=0`` turns these limits off: for load tests only, where one
    address stands for thousands of phones."""
    return os.environ.get("LAOWU_RATE_LIMITS", "1").strip() != "0"


async def before_request(request: Request[Any, Any, Any]) -> Response[Any] | None:
    if not enabled():
        return None
    route = (request.method, request.scope.get("path_template", ""))
    checks: list[tuple[tuple[str, int, float], str]] = []
    if route in LOGIN_ROUTES:
        checks.append((LOGIN_PER_ADDRESS, client_address(request)))
        username = await _username(request)
        if username:
            checks.append((LOGIN_PER_ACCOUNT, username))
    elif route in PUBLIC_ROUTES:
        checks.append((PUBLIC, client_address(request)))
    elif route in EXPORT_ROUTES or (
        route == RECONCILIATION
        and parse_qs(request.url.query).get("format", ["json"])[0] in FILE_FORMATS
    ):
        checks.append((EXPORTS, _session_key(request)))
    for which, key in checks:
        window = _window(request, which)
        if not window.allow(key):
            return too_many(request, window.retry_after(key))
    return None
