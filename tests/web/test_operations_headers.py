"""Security headers on every kind of response (web/security_headers.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from web import ratelimit
from web.app import create_app
from web.settings import Settings

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

# (what, method, path, expected status)
KINDS = [
    ("HTML page", "GET", "/login", 200),
    ("redirect to login", "GET", "/workers", 302),
    ("public page", "GET", "/apply", 200),
    ("page error", "GET", "/no/such/page", 404),
    ("API JSON", "GET", "/healthz", 200),
    ("API refusal", "GET", "/api/v1/me", 401),
    ("API not found", "GET", "/api/v1/nothing-here", 404),
    ("CSRF refusal", "POST", "/login", 403),
    ("static file", "GET", "/static/app.css", 200),
    ("metrics refusal", "GET", "/metrics", 403),
    ("API docs", "GET", "/schema/openapi.json", 200),
]


def assert_secure(response: Any, *, csp: bool = True) -> None:
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    if csp:
        policy = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy
        assert "default-src 'self'" in policy
        assert "script-src 'self'" in policy
    assert len(headers.get_list("X-Content-Type-Options")) == 1


async def test_every_kind_of_response_has_the_headers(client: AsyncTestClient[Litestar]) -> None:
    for what, method, path, status in KINDS:
        response = await client.request(method, path, follow_redirects=False)
        assert response.status_code == status, (what, response.status_code)
        # The interactive API docs load their own scripts: no CSP there, the rest holds.
        assert_secure(response, csp=not path.startswith("/schema"))
        # Development serves plain HTTP: no HSTS, or a laptop would refuse it for a year.
        assert "Strict-Transport-Security" not in response.headers, what


async def test_a_rate_limited_answer_has_them(
    client: AsyncTestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ratelimit, "PUBLIC", ("public_pages", 1, 60.0))
    await client.get("/public/rankings")
    response = await client.get("/public/rankings")
    assert response.status_code == 429
    assert_secure(response)


async def test_hsts_when_cookies_are_secure(settings: Settings) -> None:
    secure = dataclasses.replace(
        settings, security=dataclasses.replace(settings.security, secure_cookies=True)
    )
    app = create_app(secure)
    async with AsyncTestClient(app=app, base_url="https://testserver.local") as client:
        for _, method, path, _status in KINDS:
            response = await client.request(method, path, follow_redirects=False)
            assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
