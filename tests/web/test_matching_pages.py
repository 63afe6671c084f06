"""Matching pages with cookies: a broker finds jobs for a worker with reasons and
recommends (the second broker is refused with the window's end on the page); the
employer sees the worker named, shortlists and hires; the broker sees the next step."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.crypto import DataCipher
from marketplace.db import unit_of_work
from marketplace.dispatcher import drain
from marketplace.placements import service
from marketplace.placements.models import RecommendationCreate, StatusChange
from marketplace.workers import service as workers
from marketplace.workers.models import WageUnit, WorkerUpdate
from tests.marketplace import placements_scene
from tests.web.test_pages import _csrf, page_login

Client = AsyncTestClient[Litestar]
REC_FORM = re.compile(r'action="/matching/recommendations/(\d+)/status"')


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_broker_recommends_in_two_taps_and_the_employer_hires(
    client: Client,
    make_account: Any,
    sessions: async_sessionmaker[AsyncSession],
    cipher: DataCipher,
) -> None:
    s = await placements_scene.build(sessions, make_account, cipher)
    await drain(sessions, client.app.state.registry)
    await page_login(client, s.accounts["a"])

    home = await client.get("/matching")
    assert home.status_code == 200
    assert f'href="/matching/workers/{s.worker_id}"' in home.text  # consenting only
    assert f'href="/matching/workers/{s.silent_worker_id}"' not in home.text

    page = await client.get(f"/matching/workers/{s.worker_id}")
    assert page.status_code == 200
    assert "电焊工" in page.text
    assert "登记工种就是电焊工" in page.text  # the reason, in words
    assert "<summary" in page.text  # tap one opens the note
    token = await _csrf(client, f"/matching/workers/{s.worker_id}")
    sent = await client.post(
        "/matching/recommend",
        data={
            "job_id": str(s.job_id),
            "worker_id": str(s.worker_id),
            "note": "干过钢结构",
            "back": f"/matching/workers/{s.worker_id}",
            "_csrf_token": token,
        },
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert "ok=" in sent.headers["location"]
    after = await client.get(sent.headers["location"])
    assert "已推荐，等待用人单位处理" in after.text

    await page_login(client, s.accounts["b"])
    token = await _csrf(client, "/matching")
    refused = await client.post(
        "/matching/recommend",
        data={
            "job_id": str(s.job_id),
            "worker_id": str(s.worker_id),
            "back": "https://evil.example/",
            "_csrf_token": token,
        },
        follow_redirects=False,
    )
    location = unquote(refused.headers["location"])
    assert location.startswith("/matching?error=")  # never off-site
    assert "归属保留至" in location

    await page_login(client, s.accounts["employer"])
    employer_home = await client.get("/matching")
    assert "张一" in employer_home.text  # recommended: named
    assert "13800000001" in employer_home.text
    [rec_id] = set(REC_FORM.findall(employer_home.text))
    token = await _csrf(client, "/matching")
    outcomes = []
    for data in (
        {"status": "shortlisted"},
        {"status": "hired", "starts_on": "not-a-date"},
        {"status": "hired", "starts_on": str(date.today() + timedelta(days=2))},
    ):
        moved = await client.post(
            f"/matching/recommendations/{rec_id}/status",
            data={**data, "back": "/matching", "_csrf_token": token},
            follow_redirects=False,
        )
        assert moved.status_code == 303
        outcomes.append(unquote(moved.headers["location"]))
    assert "ok=已改为“已入围”" in outcomes[0]
    assert "error=开工日期格式" in outcomes[1]
    hired = await client.get("/matching")
    assert "已录用" in hired.text

    await page_login(client, s.accounts["a"])
    broker_home = await client.get("/matching")
    assert "开工后可确认到岗" in broker_home.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_broker_reports_an_unpaid_first_wage_on_the_page(
    client: Client,
    make_account: Any,
    sessions: async_sessionmaker[AsyncSession],
    cipher: DataCipher,
) -> None:
    s = await placements_scene.build(sessions, make_account, cipher)
    start = date.today() - timedelta(days=40)
    async with unit_of_work(sessions) as session:
        rec = await service.recommend(
            session=session,
            actor=s.broker_a,
            data=RecommendationCreate(job_id=s.job_id, worker_id=s.worker_id),
        )
    assert rec.id is not None
    for actor, status in (
        (s.employer, "shortlisted"),
        (s.employer, "hired"),
        (s.broker_a, "onboarded"),
    ):
        async with unit_of_work(sessions) as session:
            changed = await service.change_status(
                session=session,
                actor=actor,
                recommendation_id=rec.id,
                data=StatusChange(status=status, starts_on=start),  # type: ignore[arg-type]
                today=date.today(),
            )
    assert changed.placement is not None
    await page_login(client, s.accounts["a"])
    home = await client.get("/matching")
    assert "首月工资回访" in home.text
    action = f"/matching/placements/{changed.placement.id}/wage-report"
    assert action in home.text
    token = await _csrf(client, "/matching")
    bad = await client.post(
        action,
        data={"paid": "unpaid", "owed_yuan": "三千", "back": "/matching", "_csrf_token": token},
        follow_redirects=False,
    )
    assert "error=欠薪金额请填数字" in unquote(bad.headers["location"])
    good = await client.post(
        action,
        data={"paid": "unpaid", "owed_yuan": "3000", "back": "/matching", "_csrf_token": token},
        follow_redirects=False,
    )
    assert "ok=已登记欠薪" in unquote(good.headers["location"])
    assert "欠薪已登记" in (await client.get("/matching")).text


async def test_a_jobs_candidates_page_reads_the_register_as_it_is_now(
    client: Client,
    make_account: Any,
    sessions: async_sessionmaker[AsyncSession],
    cipher: DataCipher,
) -> None:
    """The broker's page names the job, its employer's standing and both village
    workers with reasons; a wage edit shows on the next view; the employer sees the
    consenting worker masked, another employer nothing."""
    s = await placements_scene.build(sessions, make_account, cipher)
    await drain(sessions, client.app.state.registry)
    await page_login(client, s.accounts["a"])
    url = f"/matching/jobs/{s.job_id}"
    page = await client.get(url)
    assert page.status_code == 200
    shown = ("电焊工", "渝中钢构有限公司", "渝中区", "尚无经平台上岗的劳动者", "2 人中前 2 位")
    shown += ("张一", "张二", "登记工种就是电焊工")
    shown += ("本人未同意推荐就业",)  # the silent worker: no recommend button
    assert [text for text in shown if text not in page.text] == []
    assert f'name="worker_id" value="{s.worker_id}"' in page.text
    assert f'name="worker_id" value="{s.silent_worker_id}"' not in page.text

    async with unit_of_work(sessions) as session:
        await workers.update_worker(
            session=session,
            actor=s.broker_a,
            cipher=cipher,
            worker_id=s.worker_id,
            data=WorkerUpdate(wage_min_fen=500_00, wage_unit=WageUnit.day),
        )
    assert "低于期望 500 元/天" in (await client.get(url)).text

    await page_login(client, s.accounts["employer"])
    seen = await client.get(url)
    assert seen.status_code == 200
    assert [t for t in ("张*", "经纪人推荐后显示姓名和电话") if t not in seen.text] == []
    assert [t for t in ("张一", "张二") if t in seen.text] == []
    await page_login(client, s.accounts["other_employer"])
    assert (await client.get(url)).status_code == 404
