"""The public rankings page under a crowd: each server process keeps the rendered ranking
for PUBLIC_CACHE_SECONDS, so visitors see the same ranking with their own CSRF token and
their own header, a recomputed month shows once that window has passed, and what is
kept stays within PUBLIC_CACHE_CHARS."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.brokers.models import Broker
from marketplace.clock import local, utcnow
from marketplace.db import unit_of_work
from tests.conftest import YUZHONG
from tests.web.test_pages import VILLAGE
from web.pages import scores as score_pages

Client = AsyncTestClient[Litestar]
TOKEN = re.compile(r'"x-csrftoken": "([^"]+)"')


async def _scored_broker(
    client: Client, sessions: async_sessionmaker[AsyncSession], make_account: Any, login: Any
) -> tuple[str, int, Any]:
    city = await make_account("city_admin", "50")
    broker = await make_account("broker", VILLAGE)
    async with unit_of_work(sessions) as session:
        row = (
            await session.execute(select(Broker).where(col(Broker.user_id) == broker.id))
        ).scalar_one()
        row.name, row.certified_at = "张三明", utcnow() - timedelta(days=40)
        session.add(row)
        broker_id = row.id
    today = local(utcnow())
    period = f"{today.year:04d}-{today.month:02d}"
    run = await client.post(
        "/api/v1/scores/runs", json={"period": period}, headers=await login(city)
    )
    assert run.status_code == 201, run.text
    assert broker_id is not None
    return period, broker_id, broker


async def test_visitors_share_the_ranking_but_not_their_tokens(
    client: Client, sessions: Any, make_account: Any, login: Any
) -> None:
    period, _, _ = await _scored_broker(client, sessions, make_account, login)
    url = f"/public/rankings?district={YUZHONG}&period={period}"
    client.cookies.clear()
    first = await client.get(url)
    assert first.status_code == 200
    assert "张*明" in first.text
    client.cookies.clear()  # another visitor
    second = await client.get(url)
    assert second.status_code == 200
    assert "张*明" in second.text
    # Each visitor's page carries the token of their own CSRF cookie.
    mine, theirs = TOKEN.search(first.text), TOKEN.search(second.text)
    assert mine is not None
    assert theirs is not None
    assert mine.group(1) != theirs.group(1)
    # A district that does not exist is still refused, and is not remembered.
    assert (
        await client.get(f"/public/rankings?district=999999&period={period}")
    ).status_code == 404
    assert (
        await client.get(f"/public/rankings?district=999999&period={period}")
    ).status_code == 404


async def test_a_change_shows_once_the_window_has_passed(
    client: Client,
    sessions: Any,
    make_account: Any,
    login: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    period, broker_id, _ = await _scored_broker(client, sessions, make_account, login)
    url = f"/public/rankings?district={YUZHONG}&period={period}"
    client.cookies.clear()
    assert "张*明" in (await client.get(url)).text
    async with unit_of_work(sessions) as session:
        await session.execute(
            update(Broker).where(col(Broker.id) == broker_id).values(name="欧阳小明")
        )
    # Within the window the process answers from what it read…
    assert "张*明" in (await client.get(url)).text
    # …and after it, from the database again.
    clock = score_pages.time.monotonic
    monkeypatch.setattr(
        score_pages.time,
        "monotonic",
        lambda: clock() + score_pages.PUBLIC_CACHE_SECONDS + 1,
    )
    page = (await client.get(url)).text
    assert "欧**明" in page
    assert "张*明" not in page


async def test_the_shared_ranking_keeps_each_visitors_header_and_token(
    client: Client, sessions: Any, make_account: Any, login: Any
) -> None:
    period, _, broker = await _scored_broker(client, sessions, make_account, login)
    url = f"/public/rankings?district={YUZHONG}&period={period}"
    client.cookies.clear()
    anonymous = await client.get(url)
    assert "张*明" in anonymous.text
    assert "退出" not in anonymous.text
    # The token on the kept page is this visitor's own: it signs them in (as the page's
    # HTMX requests send it).
    token = TOKEN.search(anonymous.text)
    assert token is not None
    signed_in = await client.post(
        "/login",
        data={"username": broker.username, "password": broker.password, "next": "/"},
        headers={"x-csrftoken": token.group(1)},
        follow_redirects=False,
    )
    assert signed_in.status_code == 302, signed_in.text
    # Signed in, the same kept ranking comes inside their own header…
    mine = (await client.get(url)).text
    assert "张*明" in mine
    assert broker.user.display_name in mine
    assert "退出" in mine
    # …and the next anonymous visitor does not see it.
    client.cookies.clear()
    theirs = (await client.get(url)).text
    assert "张*明" in theirs
    assert broker.user.display_name not in theirs
    assert "退出" not in theirs


async def test_what_is_kept_stays_within_its_size(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Visitors choose the query, so the pages kept for them are bounded by size: the
    oldest give way, and every visitor still gets the page they asked for."""
    client.cookies.clear()
    first = await client.get("/public/rankings?period=2020-01")
    assert first.status_code == 200
    cache = client.app.state["public_rankings_cache"]
    (_, kept), *_ = cache.values()
    monkeypatch.setattr(score_pages, "PUBLIC_CACHE_CHARS", len(kept) * 5 // 2)
    for month in range(2, 7):
        page = await client.get(f"/public/rankings?period=2020-{month:02d}")
        assert page.status_code == 200
        assert f"2020-{month:02d}" in page.text
        assert sum(len(body) for _, body in cache.values()) <= score_pages.PUBLIC_CACHE_CHARS
    assert list(cache) == [(None, "2020-05"), (None, "2020-06")]
