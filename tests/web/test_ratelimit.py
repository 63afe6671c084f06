"""Rate limits (docs/operations.md): logging in per address and per account, the public
rankings, the exports. 429 with a Chinese message and Retry-After."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import YUZHONG
from tests.tasks.support import VILLAGE
from web import ratelimit

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


def assert_limited(response: Any) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["Retry-After"]) > 0
    assert "请求过于频繁" in response.text


async def _api_login(client: AsyncTestClient[Litestar], username: str) -> Any:
    body = {"username": username, "password": "not-the-password-1"}
    return await client.post("/api/v1/auth/login", json=body)


@SQLITE
async def test_login_is_limited_per_account(client: AsyncTestClient[Litestar]) -> None:
    _, limit, _ = ratelimit.LOGIN_PER_ACCOUNT
    for _ in range(limit):
        assert (await _api_login(client, "zhang_san")).status_code != 429
    limited = await _api_login(client, "Zhang_San ")  # the same account, spelt otherwise
    assert_limited(limited)
    assert limited.json()["detail"].startswith("请求过于频繁，请 ")
    # Another account from the same address is not held up by this one.
    assert (await _api_login(client, "li_si")).status_code != 429


@SQLITE
async def test_login_is_limited_per_address(
    client: AsyncTestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ratelimit, "LOGIN_PER_ADDRESS", ("login_address", 3, 300.0))
    for n in range(3):
        assert (await _api_login(client, f"user_{n}")).status_code != 429
    assert_limited(await _api_login(client, "user_new"))


@SQLITE
async def test_the_login_page_answers_429_as_a_page(
    client: AsyncTestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ratelimit, "LOGIN_PER_ACCOUNT", ("login_account", 2, 300.0))
    form = await client.get("/login")
    match = CSRF.search(form.text)
    assert match
    data = {"username": "wang_wu", "password": "wrong-password-1", "_csrf_token": match.group(1)}
    statuses = [(await client.post("/login", data=data)).status_code for _ in range(2)]
    assert 429 not in statuses
    limited = await client.post("/login", data=data)
    assert_limited(limited)
    assert limited.headers["content-type"].startswith("text/html")
    assert "429 · 出错了" in limited.text


@SQLITE
async def test_public_rankings_are_limited_per_address(
    client: AsyncTestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ratelimit, "PUBLIC", ("public_pages", 2, 60.0))
    assert (await client.get("/public/rankings")).status_code == 200
    assert (await client.get("/public/rankings.csv")).status_code == 404  # nothing published
    assert_limited(await client.get("/public/rankings"))
    # Off for a load test, where one address stands for thousands of phones.
    monkeypatch.setenv("LAOWU_RATE_LIMITS", "0")
    assert (await client.get("/public/rankings")).status_code == 200


@SQLITE
async def test_exports_are_limited_per_session(
    client: AsyncTestClient[Litestar],
    make_account: Any,
    login: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ratelimit, "EXPORTS", ("exports", 2, 600.0))
    broker = await login(await make_account("broker", VILLAGE))
    other = await login(await make_account("broker", VILLAGE))
    auditor = await login(await make_account("auditor", YUZHONG))
    for _ in range(2):
        response = await client.get("/api/v1/workers/export?format=csv", headers=broker)
        assert response.status_code == 200, response.text
    assert_limited(await client.get("/api/v1/workers/export?format=csv", headers=broker))
    assert (await client.get("/api/v1/workers/export", headers=other)).status_code == 200

    period = date.today().strftime("%Y-%m")
    url = f"/api/v1/reconciliation?period={period}"
    for _ in range(3):  # the on-screen JSON report is not an export
        assert (await client.get(url, headers=auditor)).status_code == 200
    for _ in range(2):
        assert (await client.get(url + "&format=csv", headers=auditor)).status_code == 200
    assert_limited(await client.get(url + "&format=xlsx", headers=auditor))


@SQLITE
async def test_behind_the_proxy_each_caller_has_its_own_window(
    app: Litestar, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nginx on the same machine connects from loopback for everyone; the address it
    saw (the last X-Forwarded-For entry) is the key, and a forged first entry is not."""
    monkeypatch.setattr(ratelimit, "PUBLIC", ("public_pages", 1, 60.0))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as proxy:

        async def via(chain: str) -> int:
            response = await proxy.get("/public/rankings", headers={"X-Forwarded-For": chain})
            return response.status_code

        assert await via("203.0.113.1") == 200
        assert await via("203.0.113.2") == 200
        assert await via("203.0.113.1") == 429
        assert await via("198.51.100.7, 203.0.113.2") == 429  # forged first entry
    # A caller that is not the proxy cannot pick its key with the header.
    transport = httpx.ASGITransport(app=app, client=("203.0.113.50", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as direct:
        assert (await direct.get("/public/rankings")).status_code == 200
        forged = await direct.get("/public/rankings", headers={"X-Forwarded-For": "10.9.9.9"})
        assert forged.status_code == 429


def test_the_window_slides() -> None:
    window = ratelimit.Window(limit=2, seconds=10)
    assert window.allow("a", now=0.0)
    assert window.allow("a", now=1.0)
    assert not window.allow("a", now=2.0)
    assert window.retry_after("a", now=2.0) == 8
    assert window.allow("b", now=2.0)  # keys are separate
    assert window.allow("a", now=10.5)  # the first hit has left the window
    assert not window.allow("a", now=10.6)


@SQLITE
async def test_broker_application_and_exam_limits_say_when_to_retry(
    client: AsyncTestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The public application status lookup and the applicant's exam entry answer 429
    with Retry-After, like every other limit."""
    monkeypatch.setattr(ratelimit, "TRACK", ("broker_apply_track", 1, 600.0))
    params = {"code": "ABCDEFGHJK", "phone": "13700000001"}
    assert (await client.get("/api/v1/broker-applications/track", params=params)).status_code == 404
    limited = await client.get("/api/v1/broker-applications/track", params=params)
    assert_limited(limited)
    assert 590 <= int(limited.headers["Retry-After"]) <= 600

    from web.api import exams as exams_api

    monkeypatch.setattr(exams_api, "OPEN", ("exam_open", 1, 600.0))
    body = {"tracking_code": "ABCDEFGHJK", "phone": "13700000001"}
    assert (await client.post("/api/v1/exams", json=body)).status_code != 429
    assert_limited(await client.post("/api/v1/exams", json=body))


@SQLITE
async def test_the_application_page_limit_says_when_to_retry(
    client: AsyncTestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ratelimit, "TRACK", ("broker_apply_track", 0, 600.0))
    page = await client.get("/apply/status")
    token = CSRF.search(page.text)
    assert token, page.text[:500]
    limited = await client.post(
        "/apply/status",
        data={"tracking_code": "ABCDEFGHJK", "phone": "13700000001", "_csrf_token": token[1]},
    )
    assert_limited(limited)
