"""Points over HTTP: a broker's logins count, the city computes the month, the broker
sees every component and what would close the gap, appeals once, the district
decides; the public page and CSV carry masked names and nothing else personal."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.accounts.models import UserActivityDay
from marketplace.brokers.models import Broker
from marketplace.clock import local, utcnow
from marketplace.db import unit_of_work
from tests.conftest import WUXI, YUZHONG
from tests.web.test_pages import VILLAGE, _csrf, page_login

Client = AsyncTestClient[Litestar]
# Anything that looks like an ID number or a mobile number, standing on its own (a
# longer run of digits, such as a timestamp in a static file's URL, is neither).
PERSONAL = re.compile(r"(?<![\w.])(\d{17}[\dXx]|1[3-9]\d{9})(?![\w.])")


def _period() -> str:
    today = local(utcnow())
    return f"{today.year:04d}-{today.month:02d}"


async def test_a_month_of_points(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    make_account: Any,
    login: Any,
) -> None:
    city = await make_account("city_admin", "50")
    district = await make_account("district_admin", YUZHONG)
    broker = await make_account("broker", VILLAGE)
    rival = await make_account("broker", "500103001006")
    far = await make_account("broker", WUXI + "001001")
    async with unit_of_work(sessions) as session:
        for account, name in ((broker, "张三明"), (rival, "李四华"), (far, "王五")):
            row = (
                await session.execute(select(Broker).where(col(Broker.user_id) == account.id))
            ).scalar_one()
            row.name = name
            row.certified_at = utcnow() - timedelta(days=40)
            session.add(row)
    broker_h = await login(broker)
    # Logging in marks today as an active day for the broker.
    async with sessions() as session:
        days = (
            await session.execute(
                select(col(UserActivityDay.day)).where(col(UserActivityDay.user_id) == broker.id)
            )
        ).scalars()
        assert list(days) == [local(utcnow()).date()]

    city_h = await login(city)
    period = _period()
    run = await client.post("/api/v1/scores/runs", json={"period": period}, headers=city_h)
    assert run.status_code == 201, run.text
    assert run.json()["brokers"] == 3
    bad = await client.post("/api/v1/scores/runs", json={"period": "2026-13"}, headers=city_h)
    assert bad.status_code == 422
    assert "period" in bad.text
    future = await client.post("/api/v1/scores/runs", json={"period": "2099-01"}, headers=city_h)
    assert future.status_code == 422

    # The broker sees their score, every component with its explanation, and ranks.
    async with sessions() as session:
        broker_id = (
            await session.execute(select(col(Broker.id)).where(col(Broker.user_id) == broker.id))
        ).scalar_one()
    mine = await client.get(f"/api/v1/brokers/{broker_id}/scores", headers=broker_h)
    assert mine.status_code == 200
    [score] = mine.json()
    names = [c["name"] for c in score["components"]]
    assert names[:4] == ["login_activity", "register_update", "task_completion", "job_match"]
    assert all(c["explanation"] for c in score["components"])
    # The only broker of 渝中区 who logged in is not behind the one who did not.
    assert score["rank"] == 1
    assert score["district_count"] == 2
    assert score["city_count"] == 3
    detail = await client.get(f"/api/v1/scores/{score['id']}", headers=broker_h)
    assert detail.status_code == 200
    assert detail.json()["inputs"]["rates"]["login_activity"][0] == 1
    # Another broker's score is not theirs to read.
    rival_h = await login(rival)
    assert (await client.get(f"/api/v1/scores/{score['id']}", headers=rival_h)).status_code == 403

    # The rival appeals once; the district dismisses with a reason.
    rival_scores = (
        await client.get(
            f"/api/v1/scores?period={period}&region_code={YUZHONG}", headers=await login(district)
        )
    ).json()
    assert rival_scores["total"] == 2
    rival_score = next(s for s in rival_scores["items"] if s["id"] != score["id"])
    first = await client.post(
        f"/api/v1/scores/{rival_score['id']}/appeal",
        json={"reason": "本月在外培训"},
        headers=rival_h,
    )
    assert first.status_code == 201
    again = await client.post(
        f"/api/v1/scores/{rival_score['id']}/appeal", json={"reason": "再申诉"}, headers=rival_h
    )
    assert again.status_code == 409
    district_h = await login(district)
    queue = await client.get("/api/v1/scores/appeals", headers=district_h)
    assert [a["score_id"] for a in queue.json()] == [rival_score["id"]]
    empty = await client.post(
        f"/api/v1/scores/{rival_score['id']}/decision",
        json={"kind": "appeal", "decision": "dismiss", "reason": ""},
        headers=district_h,
    )
    assert empty.status_code == 422
    assert empty.json()["field"] == "reason" if "field" in empty.json() else "理由" in empty.text
    decided = await client.post(
        f"/api/v1/scores/{rival_score['id']}/decision",
        json={"kind": "appeal", "decision": "dismiss", "reason": "培训已在培训天数中计入"},
        headers=district_h,
    )
    assert decided.status_code == 200
    assert decided.json()["decision"] == "dismissed"

    # Public disclosure: no login, masked names, no ID or phone numbers.
    client.cookies.clear()
    page = await client.get(f"/public/rankings?district={YUZHONG}&period={period}")
    assert page.status_code == 200
    assert "张*明" in page.text
    assert "李*华" in page.text
    assert "张三明" not in page.text
    assert "李四华" not in page.text
    assert "<svg" in page.text
    assert not PERSONAL.search(page.text)
    csv_all = await client.get(f"/public/rankings.csv?period={period}")
    assert csv_all.status_code == 200
    assert "王*" in csv_all.text
    assert "王五" not in csv_all.text
    assert not PERSONAL.search(csv_all.text)
    unknown = await client.get("/public/rankings.csv?district=999999")
    assert unknown.status_code == 404


async def test_score_pages_render_charts(
    client: Client, sessions: async_sessionmaker[AsyncSession], make_account: Any, login: Any
) -> None:
    city = await make_account("city_admin", "50")
    broker = await make_account("broker", VILLAGE)
    await page_login(client, city)
    token = await _csrf(client, "/scores")
    done = await client.post(
        "/scores/compute", data={"period": _period(), "_csrf_token": token}, follow_redirects=False
    )
    assert done.status_code == 303
    ranking = await client.get(done.headers["location"])
    assert ranking.status_code == 200
    assert "积分分布" in ranking.text
    assert "<svg" in ranking.text
    await page_login(client, broker)
    mine = await client.get("/scores/me")
    assert mine.status_code == 200
    assert "每一分从哪里来" in mine.text
    assert "近 12 个月积分" in mine.text
    token = await _csrf(client, "/scores/me")
    score_id = re.search(r"/scores/(\d+)/appeal", mine.text)
    assert score_id
    blank = await client.post(
        f"/scores/{score_id.group(1)}/appeal", data={"reason": " ", "_csrf_token": token}
    )
    assert blank.status_code == 422
    assert "请填写理由" in blank.text
